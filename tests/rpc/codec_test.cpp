// The one codec of both sides (rpc/codec.hpp), without a connection: every value kind and every
// step kind through a Cap'n Proto message and back, the operator lists against the schema, and
// what the decoder refuses.

#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/capability.h>

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "rpc/codec.hpp"

using namespace remoteable;
using namespace remoteable::detail;

namespace {

/// A handle of the test: a number. It goes on the wire as a broken capability and comes back
/// as the position of that capability among those decoded.
struct Token {
  int n;
  friend bool operator==(Token, Token) = default;
};
using TestValue = BasicValue<Token>;

wire::Handle::Client token_cap(const Token&) { return wire::Handle::Client(capnp::newBrokenCap("a test token")); }

/// Decodes into TestValue: capabilities become Tokens numbered in the order they are met.
struct TestSink {
  using Out = TestValue;
  using List = TestValue::List;
  using Map = TestValue::Map;
  int limit = 64;
  int handles = 0;
  int max_depth() const { return limit; }
  [[noreturn]] void too_deep() const { throw to_kj(detail::too_deep(limit, "is refused")); }
  template <class S> void set(Out& slot, S&& s) { slot = Out(std::forward<S>(s)); }
  void set_list(Out& slot, List&& l) { slot = Out(std::move(l)); }
  void set_map(Out& slot, Map&& m) { slot = Out(std::move(m)); }
  Out& map_slot(Map& m, std::string key) { return m[std::move(key)]; }
  void handle(Out& slot, wire::Handle::Client) { slot = Out(Token{handles++}); }
};

bool same(const TestValue& a, const TestValue& b) {
  if (a.kind() != b.kind()) return false;
  if (a.holds<double>()) {
    double x = a.as<double>(), y = b.as<double>();
    return (std::isnan(x) && std::isnan(y)) || x == y;
  }
  if (a.holds<TestValue::List>()) {
    auto& x = std::get<TestValue::List>(a.storage());
    auto& y = std::get<TestValue::List>(b.storage());
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i)
      if (!same(x[i], y[i])) return false;
    return true;
  }
  if (a.holds<TestValue::Map>()) {
    auto& x = std::get<TestValue::Map>(a.storage());
    auto& y = std::get<TestValue::Map>(b.storage());
    if (x.size() != y.size()) return false;
    for (auto& [k, v] : x) {
      auto it = y.find(k);
      if (it == y.end() || !same(v, it->second)) return false;
    }
    return true;
  }
  if (a.holds<None>()) return true;
  if (a.holds<bool>()) return a.as<bool>() == b.as<bool>();
  if (a.holds<std::int64_t>()) return a.as<std::int64_t>() == b.as<std::int64_t>();
  if (a.holds<std::string>()) return a.as<std::string>() == b.as<std::string>();
  if (a.holds<Bytes>()) return a.as<Bytes>() == b.as<Bytes>();
  return a.as<Token>() == b.as<Token>();
}

TestValue round_trip(const TestValue& v, int max_depth = 64) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<wire::Value>();
  auto cap = [](const Token& t) { return token_cap(t); };
  encode_value(root, v, cap, max_depth);
  TestValue out;
  TestSink sink;
  sink.limit = max_depth;
  decode_value(root.asReader(), out, sink);
  return out;
}

TestValue nested(int levels) {
  TestValue v = std::int64_t{1};
  for (int i = 0; i < levels; ++i) v = TestValue(TestValue::List{std::move(v)});
  return v;
}

ErrorKind kind_of_kj(const std::function<void()>& f) {
  try {
    f();
  } catch (const kj::Exception& e) {
    return from_kj(e).kind();
  } catch (const RemoteError& e) {
    return e.kind();
  }
  FAIL("expected an error");
  return ErrorKind::user;
}

}  // namespace

TEST_CASE("every value kind survives the codec") {
  Bytes bytes{std::byte{0}, std::byte{0xff}, std::byte{7}};
  std::vector<TestValue> values = {
      None{}, true, false, std::int64_t{0}, std::numeric_limits<std::int64_t>::min(),
      std::numeric_limits<std::int64_t>::max(), 0.5, -0.0, std::nan(""), std::string(""),
      std::string("text with 'quotes' and \0 inside", 31), bytes, Bytes{}, TestValue::List{},
      TestValue::Map{}, Token{0},
      TestValue::List{std::int64_t{1}, std::string("two"), TestValue::List{None{}}, TestValue::Map{{"k", 3.0}}},
      TestValue::Map{{"", None{}}, {"a", TestValue::List{true}}, {"b", TestValue::Map{{"c", bytes}}}},
  };
  for (auto& v : values) {
    INFO("kind " << to_string(v.kind()));
    CHECK(same(round_trip(v), v));
  }
}

TEST_CASE("handles in a value become capabilities, in order") {
  TestValue v = TestValue::List{Token{7}, TestValue::Map{{"x", Token{8}}}, Token{9}};
  auto out = round_trip(v);
  auto& list = std::get<TestValue::List>(out.storage());
  CHECK(list[0].as<Token>() == Token{0});
  CHECK(std::get<TestValue::Map>(list[1].storage()).at("x").as<Token>() == Token{1});
  CHECK(list[2].as<Token>() == Token{2});
}

TEST_CASE("max_nesting counts value levels, the same both ways") {
  CHECK(same(round_trip(nested(5), 5), nested(5)));
  // One level more: refused when encoded, before anything is written.
  CHECK(kind_of_kj([] { round_trip(nested(6), 5); }) == ErrorKind::value);
  // And when decoded: a message written with a larger limit.
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<wire::Value>();
  auto cap = [](const Token& t) { return token_cap(t); };
  encode_value(root, nested(6), cap, 64);
  TestValue out;
  TestSink sink;
  sink.limit = 5;
  CHECK(kind_of_kj([&] { decode_value(root.asReader(), out, sink); }) == ErrorKind::value);
  sink.limit = 6;
  decode_value(root.asReader(), out, sink);
  CHECK(same(out, nested(6)));
}

TEST_CASE("a list claiming zero-sized elements is refused") {
  capnp::MallocMessageBuilder message;
  auto v = message.initRoot<wire::Value>();
  v.initList(0);  // the union tag: list
  // Then the list itself: 1000 structs of no size, which no encoder of the schema writes.
  auto pointers = capnp::AnyStruct::Builder(wire::Value::Builder(v)).getPointerSection();
  REQUIRE(pointers.size() >= 1);
  pointers[0].initAsListOfAnyStruct(0, 0, 1000);
  REQUIRE(v.asReader().getList().size() == 1000);
  TestValue out;
  TestSink sink;
  CHECK(kind_of_kj([&] { decode_value(v.asReader(), out, sink); }) == ErrorKind::value);
}

TEST_CASE("the operator lists match the schema's enums") {
  // Each listed operator is its wire enumerant (static_asserts in rpc/codec.hpp); here, none of
  // the schema's is missing from the lists.
  CHECK(capnp::Schema::from<wire::BinaryOp>().getEnumerants().size() == binary_op_count);
  CHECK(capnp::Schema::from<wire::UnaryOp>().getEnumerants().size() == unary_op_count);
  CHECK(capnp::Schema::from<wire::Handle::Step>().getUnionFields().size() == 8);
  for (std::size_t i = 0; i < binary_op_count; ++i) {
    auto op = static_cast<BinaryOp>(i);
    CHECK(from_wire(to_wire(op)) == op);
    CHECK(binary_op(spelling(op)) == op);
  }
  for (std::size_t i = 0; i < unary_op_count; ++i) CHECK(from_wire(to_wire(static_cast<UnaryOp>(i))) == static_cast<UnaryOp>(i));
  CHECK(kind_of_kj([] { from_wire(static_cast<wire::BinaryOp>(binary_op_count)); }) == ErrorKind::value);
  CHECK(kind_of_kj([] { from_wire(static_cast<wire::UnaryOp>(unary_op_count)); }) == ErrorKind::value);
  CHECK(spelling(BinaryOp::shl) == "<<");
  CHECK(spelling(UnaryOp::logical_not) == "!");
  CHECK_FALSE(binary_op("**").has_value());
}

namespace {

using TestStep = BasicStep<TestValue>;

std::vector<TestStep> every_step() {
  std::vector<TestStep> steps;
  steps.push_back({StepKind::attr, "name"});
  steps.push_back({StepKind::call, "method", {std::int64_t{1}, std::string("two")}});
  steps.push_back({StepKind::call, "no_args"});
  steps.push_back({StepKind::invoke, "", {TestValue::List{true}}});
  steps.push_back({StepKind::item, "", {std::string("key")}});
  steps.push_back({StepKind::len});
  for (std::size_t i = 0; i < binary_op_count; ++i)
    steps.push_back({StepKind::binary, "", {2.5}, static_cast<BinaryOp>(i), UnaryOp::neg, i % 2 == 1});
  for (std::size_t i = 0; i < unary_op_count; ++i)
    steps.push_back({StepKind::unary, "", {}, BinaryOp::add, static_cast<UnaryOp>(i)});
  TestStep slice{StepKind::slice};
  slice.start = -3;
  slice.stop = std::numeric_limits<std::int64_t>::max();
  steps.push_back(slice);
  return steps;
}

/// Decodes the operands a read step left as readers.
TestStep with_operands(ReadStep<TestValue> read) {
  TestSink sink;
  KJ_IF_MAYBE(args, read.args) {
    for (auto a : *args) {
      TestValue v;
      decode_value(a, v, sink);
      read.step.operands.push_back(std::move(v));
    }
  }
  KJ_IF_MAYBE(operand, read.operand) {
    TestValue v;
    decode_value(*operand, v, sink);
    read.step.operands.push_back(std::move(v));
  }
  return std::move(read.step);
}

void check_same(const TestStep& a, const TestStep& b) {
  INFO("step " << to_string(a.kind));
  CHECK(a.kind == b.kind);
  CHECK(a.name == b.name);
  REQUIRE(a.operands.size() == b.operands.size());
  for (std::size_t i = 0; i < a.operands.size(); ++i) CHECK(same(a.operands[i], b.operands[i]));
  if (a.kind == StepKind::binary) {
    CHECK(a.binary_op == b.binary_op);
    CHECK(a.reflected == b.reflected);
  }
  if (a.kind == StepKind::unary) CHECK(a.unary_op == b.unary_op);
  if (a.kind == StepKind::slice) {
    CHECK(a.start == b.start);
    CHECK(a.stop == b.stop);
  }
}

auto operand_writer() {
  return [](wire::Value::Builder out, const TestValue& v) {
    auto cap = [](const Token& t) { return token_cap(t); };
    encode_value(out, v, cap, 64);
  };
}

}  // namespace

TEST_CASE("every step kind survives the codec as a chain step") {
  auto steps = every_step();
  capnp::MallocMessageBuilder message;
  auto list = message.initRoot<capnp::List<wire::Handle::Step>>(static_cast<unsigned>(steps.size()));
  auto operand = operand_writer();
  for (unsigned i = 0; i < list.size(); ++i) encode_step(list[i], steps[i], operand);
  auto reader = list.asReader();
  for (unsigned i = 0; i < reader.size(); ++i) check_same(with_operands(read_step<TestValue>(reader[i])), steps[i]);
}

TEST_CASE("every step kind survives the codec as the parameters of its own method") {
  capnp::MallocMessageBuilder message;
  auto operand = operand_writer();
  // Each method's parameters, written and read with the same generic code the sides use.
  auto check_params = [&]<class Params>(const TestStep& step) {
    auto p = message.initRoot<Params>();
    encode_fields(p, step, operand);
    check_same(with_operands(read_fields<TestValue>(step.kind, p.asReader())), step);
  };
  for (auto& step : every_step()) {
    switch (step.kind) {
      case StepKind::attr: check_params.template operator()<wire::Handle::AttrParams>(step); break;
      case StepKind::call: check_params.template operator()<wire::Handle::CallParams>(step); break;
      case StepKind::invoke: check_params.template operator()<wire::Handle::InvokeParams>(step); break;
      case StepKind::item: check_params.template operator()<wire::Handle::ItemParams>(step); break;
      case StepKind::len: check_params.template operator()<wire::Handle::LenParams>(step); break;
      case StepKind::binary: check_params.template operator()<wire::Handle::BinaryParams>(step); break;
      case StepKind::unary: check_params.template operator()<wire::Handle::UnaryParams>(step); break;
      case StepKind::slice: check_params.template operator()<wire::Handle::SliceParams>(step); break;
    }
  }
}

TEST_CASE("a chain step of a kind this schema does not know is refused with a value error") {
  capnp::MallocMessageBuilder message;
  auto step = message.initRoot<wire::Handle::Step>();
  step.setLen();
  // The union tag is the first 16 bits of the data section.
  auto data = capnp::AnyStruct::Builder(wire::Handle::Step::Builder(step)).getDataSection();
  REQUIRE(data.size() >= 2);
  data[0] = 99;
  CHECK(kind_of_kj([&] { read_step<TestValue>(step.asReader()); }) == ErrorKind::value);
}
