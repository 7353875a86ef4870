// Every operation of DESIGN §2 on remoteable::Handle, through the C++ API over a real loopback
// connection: what each computes, how plain values behave at their edges, and that each one is
// pipelined (sent before any answer arrives).

#include <limits>
#include <map>
#include <string>

#include "binding_types.hpp"

using remoteable::Bytes;
using remoteable::ErrorKind;
using remoteable::Handle;
using remoteable::None;
using remoteable::Value;
using remoteable::ValueKind;

namespace {

constexpr std::int64_t max64 = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t min64 = std::numeric_limits<std::int64_t>::min();

std::int64_t as_int(bt::Connected& t, const Handle& h) { return t.run(h.as<std::int64_t>()); }
double as_double(bt::Connected& t, const Handle& h) { return t.run(h.as<double>()); }
bool as_bool(bt::Connected& t, const Handle& h) { return t.run(h.as<bool>()); }

/// Builds a chain with `build` after the connection is settled, evaluates it, and returns how
/// many calls the client had sent before the first return arrived, and how many in all.
template <class Build>
std::pair<std::size_t, std::size_t> calls_of(bt::Connected& t, Build build) {
  (void)t.run(t.client.browse());  // bootstrap answered
  t.client.clear_wire_trace();
  auto before = t.client.wire_stats().calls_sent;
  t.run(build());
  std::size_t until_return = 0;
  for (auto& e : t.client.wire_trace()) {
    if (!e.outgoing && e.kind == "return") break;
    if (e.outgoing && e.kind == "call") ++until_return;
  }
  return {until_return, t.client.wire_stats().calls_sent - before};
}

remoteable::ClientOptions traced() {
  remoteable::ClientOptions o;
  o.trace_wire = true;
  return o;
}

}  // namespace

// ---- attributes and calls ---------------------------------------------------------------------

TEST_CASE("attr reads, set writes, call calls by name, and calling a handle calls the object") {
  bt::Connected t;
  auto root = t.client.fetch("root");
  CHECK(as_int(t, root.attr("value")) == 1);
  t.run(root.set("value", 10));
  CHECK(as_int(t, root.attr("value")) == 10);
  CHECK(as_int(t, root.call("child", 0).attr("value")) == 2);
  CHECK(as_int(t, root.call("child_count")) == 1);
  // Calling the object itself: a class constructs, a function runs, a bound method calls.
  auto node = t.client.fetch("Node")(7);
  CHECK(as_int(t, node.attr("value")) == 7);
  t.run(root.call("add_child", node).get());
  CHECK(as_int(t, root.call("child_count")) == 2);
  CHECK(as_int(t, root.attr("child")(1).attr("value")) == 7);
  CHECK(as_double(t, t.client.fetch("hypot2")(1.0, 2.0)) == 5);
  // The argument list form.
  CHECK(as_int(t, root.call_list("child", {1}).attr("value")) == 7);
  CHECK(as_int(t, t.client.fetch("Node").invoke_list({3}).attr("value")) == 3);
}

TEST_CASE("attributes and calls on plain values are attribute and type errors") {
  bt::Connected t;
  auto five = t.client.fetch("five");
  CHECK(t.error_of(five.attr("x").get()) == ErrorKind::attribute);
  CHECK(t.error_of(five.set("x", 1)) == ErrorKind::attribute);
  CHECK(t.error_of(five.call("x").get()) == ErrorKind::attribute);
  CHECK(t.error_of(five().get()) == ErrorKind::type);
}

// ---- items ------------------------------------------------------------------------------------

TEST_CASE("item and len on plain lists, maps, text and bytes; plain values are immutable") {
  bt::Connected t;
  auto list = t.client.store(std::vector<Value>{1, "two", 3.0});
  CHECK(as_int(t, list.item(0)) == 1);
  CHECK(t.run(list.item(1).as<std::string>()) == "two");
  CHECK(as_double(t, list.item(-1)) == 3.0);
  CHECK(as_int(t, list.len()) == 3);
  CHECK(t.error_of(list.item(3).get()) == ErrorKind::index);
  CHECK(t.error_of(list.item("a").get()) == ErrorKind::type);
  CHECK(t.error_of(list.set_item(0, 5)) == ErrorKind::type);

  auto map = t.client.store(std::map<std::string, std::int64_t>{{"a", 1}, {"b", 2}});
  CHECK(as_int(t, map.item("b")) == 2);
  CHECK(as_int(t, map.len()) == 2);
  CHECK(t.error_of(map.item("z").get()) == ErrorKind::index);
  CHECK(t.error_of(map.item(0).get()) == ErrorKind::type);
  CHECK(t.error_of(map.set_item("c", 3)) == ErrorKind::type);

  auto text = t.client.store("hey");
  CHECK(t.run(text.item(1).as<std::string>()) == "e");
  CHECK(as_int(t, text.len()) == 3);
  auto bytes = t.client.store(Bytes{std::byte{7}, std::byte{200}});
  CHECK(as_int(t, bytes.item(1)) == 200);
  CHECK(as_int(t, bytes.len()) == 2);
  CHECK(t.error_of(bytes.item(2).get()) == ErrorKind::index);

  CHECK(t.error_of(t.client.fetch("five").len().get()) == ErrorKind::type);
  CHECK(t.error_of(t.client.fetch("five").item(0).get()) == ErrorKind::type);
}

TEST_CASE("item, set_item and len on registered objects go through operator[] and size()") {
  bt::Connected t;
  auto row = t.client.fetch("row");
  t.run(row.set_item(0, 5));
  CHECK(as_int(t, row.item(0)) == 5);
  CHECK(as_int(t, row.len()) == 3);
  CHECK(as_int(t, t.client.fetch("shape").attr("tags").item(-1)) == 3);
}

// ---- binary operators -------------------------------------------------------------------------

// Each operator, both orders, with a plain operand and with a handle operand.
#define CHECK_INT_OPERATOR(sym)                                                 \
  do {                                                                          \
    INFO("operator " #sym);                                                     \
    CHECK(as_int(t, five sym 3) == (5 sym 3));                                  \
    CHECK(as_int(t, 3 sym five) == (3 sym 5));                                  \
    CHECK(as_int(t, five sym three) == (5 sym 3));                              \
    CHECK(as_int(t, three sym five) == (3 sym 5));                              \
  } while (false)

TEST_CASE("binary operators on int64 in both orders, with values and with handles") {
  bt::Connected t;
  auto five = t.client.fetch("five");
  auto three = t.client.store(3);
  CHECK_INT_OPERATOR(+);
  CHECK_INT_OPERATOR(-);
  CHECK_INT_OPERATOR(*);
  CHECK_INT_OPERATOR(/);
  CHECK_INT_OPERATOR(%);
  CHECK_INT_OPERATOR(&);
  CHECK_INT_OPERATOR(|);
  CHECK_INT_OPERATOR(^);
  CHECK_INT_OPERATOR(<<);
  CHECK_INT_OPERATOR(>>);
  // C++ semantics: division truncates toward zero, % takes the sign of the left operand.
  CHECK(as_int(t, t.client.store(-7) / 2) == -3);
  CHECK(as_int(t, t.client.store(-7) % 2) == -1);
  CHECK(as_int(t, t.client.store(-8) >> 1) == -4);
}

#define CHECK_COMPARISON(sym)                                                   \
  do {                                                                          \
    INFO("comparison " #sym);                                                   \
    CHECK(as_bool(t, five sym 3) == (5 sym 3));                                 \
    CHECK(as_bool(t, 3 sym five) == (3 sym 5));                                 \
    CHECK(as_bool(t, five sym five) == (5 sym 5));                              \
    CHECK(as_bool(t, five sym 5.5) == (5 sym 5.5));                             \
    CHECK(as_bool(t, 5.5 sym five) == (5.5 sym 5));                             \
    CHECK(as_bool(t, three sym five) == (3 sym 5));                             \
    CHECK(as_bool(t, apple sym pear) == (std::string("apple") sym std::string("pear"))); \
  } while (false)

TEST_CASE("comparisons on numbers and text give bools, in both orders") {
  bt::Connected t;
  auto five = t.client.fetch("five");
  auto three = t.client.store(3);
  auto apple = t.client.store("apple");
  auto pear = t.client.store("pear");
  CHECK_COMPARISON(==);
  CHECK_COMPARISON(!=);
  CHECK_COMPARISON(<);
  CHECK_COMPARISON(<=);
  CHECK_COMPARISON(>);
  CHECK_COMPARISON(>=);
  CHECK(t.run((five == 5).truthy()));
  CHECK(t.run((five == 5).get()).kind() == ValueKind::boolean);
  // Values of different kinds are unequal, and do not order.
  CHECK_FALSE(as_bool(t, five == "5"));
  CHECK(as_bool(t, five != "5"));
  CHECK(t.error_of((five < "5").get()) == ErrorKind::type);
  CHECK(as_bool(t, t.client.store(None{}) == None{}));
  CHECK(as_bool(t, t.client.store(std::vector<std::int64_t>{1, 2}) == std::vector<std::int64_t>{1, 2}));
  CHECK(as_bool(t, t.client.store(std::map<std::string, std::int64_t>{{"a", 1}}) !=
                       std::map<std::string, std::int64_t>{{"a", 2}}));
}

TEST_CASE("text, bytes and lists concatenate with +") {
  bt::Connected t;
  CHECK(t.run((t.client.store("ab") + "cd").as<std::string>()) == "abcd");
  CHECK(t.run(("ab" + t.client.store("cd")).as<std::string>()) == "abcd");
  CHECK(t.run((t.client.store(Bytes{std::byte{1}}) + Bytes{std::byte{2}}).as<Bytes>()) ==
        Bytes{std::byte{1}, std::byte{2}});
  CHECK(t.run((t.client.store(std::vector<std::int64_t>{1}) + std::vector<std::int64_t>{2}).as<std::vector<std::int64_t>>()) ==
        std::vector<std::int64_t>{1, 2});
  CHECK(t.error_of((t.client.store("ab") - "a").get()) == ErrorKind::type);
  CHECK(t.error_of((t.client.store("ab") + 1).get()) == ErrorKind::type);
}

TEST_CASE("+ that doubles a value in turn stops at the join limit with a value error") {
  bt::Connected t;
  // 1 KiB doubled 16 times is 64 MiB, the limit; once more is over it. Nothing is evaluated on
  // the way: the values stay on the server.
  auto text = t.client.store(std::string(1024, 'x'));
  for (int i = 0; i < 16; ++i) text = text + text;
  CHECK(as_int(t, text.len()) == 64 << 20);
  auto over = text + "y";
  CHECK(t.error_of(over.len().get()) == ErrorKind::value);
  CHECK_THAT(t.message_of(over.len().get()), Catch::Contains("over the limit"));
  // The server is unharmed, and the value below the limit is still there.
  CHECK(as_int(t, t.client.fetch("five") + 1) == 6);
  CHECK(t.run((text.item(0)).as<std::string>()) == "x");
}

TEST_CASE("get and str of a value that expands past the limit are value errors") {
  bt::Connected t;
  // 40 references to one 4 MiB text: 4 MiB on the server, 160 MiB once converted.
  auto big = t.client.store(std::string(4 << 20, 'x'));
  std::vector<Value> refs(40, Value(big));
  auto list = t.client.store(Value(Value::List(refs.begin(), refs.end())));
  CHECK(as_int(t, list.len()) == 40);
  CHECK(t.error_of(list.get()) == ErrorKind::value);
  CHECK_THAT(t.message_of(list.get()), Catch::Contains("too large"));
  CHECK(t.error_of(list.str()) == ErrorKind::value);
  // A part of it converts, and the server is unharmed.
  auto part = t.client.store(Value(Value::List(refs.begin(), refs.begin() + 2)));
  CHECK(t.run(part.get()).as<Value::List>().size() == 2);
  CHECK(as_int(t, t.client.fetch("five") + 1) == 6);
}

TEST_CASE("int64 with float64 promotes to float64") {
  bt::Connected t;
  auto five = t.client.fetch("five");
  auto sum = t.run((five + 0.5).get());
  CHECK(sum.kind() == ValueKind::float64);
  CHECK(sum.as<double>() == 5.5);
  CHECK(t.run((0.5 + five).get()).kind() == ValueKind::float64);
  CHECK(t.run((five * 1.0).get()).kind() == ValueKind::float64);
  CHECK(as_double(t, five / 2.0) == 2.5);
  CHECK(as_double(t, 2.0 / five) == 0.4);
  CHECK(as_double(t, five % 1.5) == 0.5);
  CHECK(as_double(t, five - t.client.store(0.25)) == 4.75);
  // int64 stays int64.
  CHECK(t.run((five / 2).get()).kind() == ValueKind::int64);
  // A float64 result is not an int64.
  CHECK(t.error_of((five + 0.5).as<std::int64_t>()) == ErrorKind::type);
  // Bitwise operators take integers only.
  CHECK(t.error_of((five & 1.0).get()) == ErrorKind::type);
  CHECK(t.error_of((t.client.store(1.0) << 1).get()) == ErrorKind::type);
  // Floating-point division by zero follows IEEE, as in C++: no error.
  CHECK(as_double(t, five / 0.0) == std::numeric_limits<double>::infinity());
}

TEST_CASE("integer division by zero, overflow and bad shifts are value errors") {
  bt::Connected t;
  auto five = t.client.fetch("five");
  auto max = t.client.store(max64);
  auto min = t.client.store(min64);
  CHECK(t.error_of((five / 0).get()) == ErrorKind::value);
  CHECK(t.error_of((five % 0).get()) == ErrorKind::value);
  CHECK(t.error_of((5 / t.client.store(0)).get()) == ErrorKind::value);
  CHECK_THAT(t.message_of((five / 0).get()), Catch::Contains("division by zero"));
  CHECK(t.error_of((max + 1).get()) == ErrorKind::value);
  CHECK(t.error_of((1 + max).get()) == ErrorKind::value);
  CHECK(t.error_of((min - 1).get()) == ErrorKind::value);
  CHECK(t.error_of((max * 2).get()) == ErrorKind::value);
  CHECK(t.error_of((min / -1).get()) == ErrorKind::value);
  CHECK(t.error_of((min % -1).get()) == ErrorKind::value);
  CHECK(t.error_of((-min).get()) == ErrorKind::value);
  CHECK_THAT(t.message_of((max + 1).get()), Catch::Contains("overflow"));
  CHECK(t.error_of((five << 64).get()) == ErrorKind::value);
  CHECK(t.error_of((five << -1).get()) == ErrorKind::value);
  CHECK(t.error_of((five >> 64).get()) == ErrorKind::value);
  CHECK(t.error_of((max << 1).get()) == ErrorKind::value);
  // The edges themselves are fine.
  CHECK(as_int(t, max + 0) == max64);
  CHECK(as_int(t, min + 0) == min64);
  CHECK(as_int(t, t.client.store(-1) << 63) == min64);
  CHECK(as_int(t, -max) == -max64);
  // The server is unharmed.
  CHECK(as_int(t, five + 1) == 6);
}

// ---- unary operators --------------------------------------------------------------------------

TEST_CASE("unary - ~ ! on plain values") {
  bt::Connected t;
  auto five = t.client.fetch("five");
  CHECK(as_int(t, -five) == -5);
  CHECK(as_int(t, ~five) == ~5);
  CHECK_FALSE(as_bool(t, !five));
  CHECK(as_bool(t, !t.client.store(0)));
  CHECK(as_double(t, -t.client.store(2.5)) == -2.5);
  CHECK(t.error_of((~t.client.store(2.5)).get()) == ErrorKind::type);
  CHECK(as_bool(t, !t.client.store("")));
  CHECK_FALSE(as_bool(t, !t.client.store("x")));
  CHECK(as_bool(t, !t.client.store(None{})));
  CHECK(as_bool(t, !t.client.store(std::vector<std::int64_t>{})));
  CHECK(as_int(t, -t.client.store(true)) == -1);
  CHECK(t.error_of((-t.client.store("x")).get()) == ErrorKind::type);
  CHECK(as_int(t, -(-five)) == 5);
}

// ---- evaluation -------------------------------------------------------------------------------

TEST_CASE("as<T> copies every value kind") {
  bt::Connected t;
  auto& c = t.client;
  CHECK(t.run(c.store(std::int64_t{-42}).as<std::int64_t>()) == -42);
  CHECK(t.run(c.store(42).as<int>()) == 42);
  CHECK(t.run(c.store(42).as<std::uint8_t>()) == 42);
  CHECK(t.run(c.store(1.25).as<double>()) == 1.25);
  CHECK(t.run(c.store(1.25f).as<float>()) == 1.25f);
  CHECK(t.run(c.store(3).as<double>()) == 3.0);  // int64 widens to float64 on request
  CHECK(t.run(c.store(true).as<bool>()));
  CHECK(t.run(c.store("text").as<std::string>()) == "text");
  CHECK(t.run(c.store(Bytes{std::byte{0}, std::byte{255}}).as<Bytes>()) == Bytes{std::byte{0}, std::byte{255}});
  CHECK(t.run(c.store(std::vector<std::int64_t>{1, 2}).as<std::vector<std::int64_t>>()) == std::vector<std::int64_t>{1, 2});
  CHECK(t.run(c.store(std::vector<std::string>{"a"}).as<std::vector<std::string>>()) == std::vector<std::string>{"a"});
  using Nested = std::vector<std::vector<double>>;
  CHECK(t.run(c.store(Nested{{1.0}, {}, {2.0, 3.0}}).as<Nested>()) == Nested{{1.0}, {}, {2.0, 3.0}});
  using Map = std::map<std::string, std::int64_t>;
  CHECK(t.run(c.store(Map{{"a", 1}, {"b", 2}}).as<Map>()) == Map{{"a", 1}, {"b", 2}});
  using MapOfLists = std::map<std::string, std::vector<bool>>;
  CHECK(t.run(c.store(MapOfLists{{"x", {true, false}}}).as<MapOfLists>()) == MapOfLists{{"x", {true, false}}});
  CHECK(t.run(c.store(7).as<std::optional<std::int64_t>>()) == 7);
  CHECK(t.run(c.store(None{}).as<std::optional<std::int64_t>>()) == std::nullopt);
  CHECK(t.run(c.store(std::optional<std::string>{}).as<std::optional<std::string>>()) == std::nullopt);
  CHECK(t.run(c.store(std::vector<std::optional<std::int64_t>>{1, std::nullopt}).as<std::vector<std::optional<std::int64_t>>>()) ==
        std::vector<std::optional<std::int64_t>>{1, std::nullopt});
  t.run(c.store(None{}).as<None>());
  CHECK(t.run(c.store(std::vector<std::int64_t>{}).as<std::vector<std::int64_t>>()).empty());
}

TEST_CASE("as<T> of the wrong kind is a type error, out of range a value error") {
  bt::Connected t;
  auto& c = t.client;
  CHECK(t.error_of(c.store("x").as<std::int64_t>()) == ErrorKind::type);
  CHECK(t.error_of(c.store(1).as<std::string>()) == ErrorKind::type);
  CHECK(t.error_of(c.store(1).as<bool>()) == ErrorKind::type);
  CHECK(t.error_of(c.store(1.5).as<std::int64_t>()) == ErrorKind::type);
  CHECK(t.error_of(c.store(std::vector<std::int64_t>{1}).as<Bytes>()) == ErrorKind::type);
  CHECK(t.error_of(c.store(std::vector<Value>{1, "x"}).as<std::vector<std::int64_t>>()) == ErrorKind::type);
  CHECK(t.error_of(c.store(1).as<std::map<std::string, std::int64_t>>()) == ErrorKind::type);
  CHECK(t.error_of(c.store("x").as<std::optional<std::int64_t>>()) == ErrorKind::type);
  CHECK(t.error_of(c.store(300).as<std::uint8_t>()) == ErrorKind::value);
  CHECK(t.error_of(c.store(-1).as<unsigned>()) == ErrorKind::value);
}

TEST_CASE("str and truthy of plain values") {
  bt::Connected t;
  auto& c = t.client;
  CHECK(t.run(c.store(-3).str()) == "-3");
  CHECK(t.run(c.store(5.0).str()) == "5.0");
  CHECK(t.run(c.store(0.25).str()) == "0.25");
  CHECK(t.run(c.store(true).str()) == "true");
  CHECK(t.run(c.store("raw 'text'").str()) == "raw 'text'");
  CHECK(t.run(c.store(None{}).str()) == "none");
  CHECK(t.run(c.store(std::vector<Value>{1, "a", 2.5}).str()) == "[1, 'a', 2.5]");
  CHECK(t.run(c.store(std::map<std::string, std::int64_t>{{"a", 1}, {"b", 2}}).str()) == "{'a': 1, 'b': 2}");
  CHECK(t.run(c.store(Bytes{std::byte{'h'}, std::byte{1}}).str()) == "b'h\\x01'");
  CHECK(t.run((c.fetch("five") / 0.0).str()) == "inf");

  CHECK(t.run(c.store(1).truthy()));
  CHECK_FALSE(t.run(c.store(0).truthy()));
  CHECK_FALSE(t.run(c.store(0.0).truthy()));
  CHECK_FALSE(t.run(c.store(false).truthy()));
  CHECK_FALSE(t.run(c.store("").truthy()));
  CHECK_FALSE(t.run(c.store(std::vector<std::int64_t>{}).truthy()));
  CHECK_FALSE(t.run(c.store(std::map<std::string, std::int64_t>{}).truthy()));
  CHECK_FALSE(t.run(c.store(None{}).truthy()));
  CHECK(t.run(c.store(std::vector<std::int64_t>{0}).truthy()));
  CHECK(t.run(c.fetch("root").truthy()));
}

TEST_CASE("empty bytes travel both ways") {
  bt::Connected t;
  CHECK_FALSE(t.run(t.client.store(Bytes{}).truthy()));
  CHECK(t.run(t.client.store(Bytes{}).as<Bytes>()).empty());
}

TEST_CASE("get returns a dynamic Value, with handles for objects inside") {
  bt::Connected t;
  auto& c = t.client;
  CHECK(t.run(c.fetch("five").get()).as<std::int64_t>() == 5);
  // A registered object comes back as a handle.
  auto v = t.run(c.fetch("root").get());
  REQUIRE(v.kind() == ValueKind::handle);
  CHECK(as_int(t, v.as<Handle>().attr("value")) == 1);
  // Handles nested in lists and maps, sent and received.
  auto stored = c.store(std::vector<Value>{1, c.fetch("root"), std::map<std::string, Value>{{"k", c.fetch("child")}}});
  auto got = t.run(stored.get());
  REQUIRE(got.kind() == ValueKind::list);
  auto& items = std::get<Value::List>(got.storage());
  REQUIRE(items.size() == 3);
  CHECK(items[0].as<std::int64_t>() == 1);
  CHECK(as_int(t, items[1].as<Handle>().attr("value")) == 1);
  auto inner = items[2].as<std::map<std::string, Handle>>();
  CHECK(as_int(t, inner.at("k").attr("value")) == 2);
  // The handle that came back is the same object.
  CHECK(as_bool(t, items[1].as<Handle>() == c.fetch("root")));
}

TEST_CASE("describe names the type and its members") {
  bt::Connected t;
  auto d = t.run(t.client.fetch("root").describe());
  CHECK(d.type_name == "Node");
  std::vector<std::string> names;
  for (auto& m : d.members) names.push_back(m.name + ":" + m.kind);
  CHECK(names == std::vector<std::string>{"add_child:method", "child:method", "child_count:method",
                                          "remove_child:method", "value:field"});
  CHECK(t.run(t.client.fetch("five").describe()).type_name == "int64");
  CHECK(t.run(t.client.fetch("five").describe()).members.empty());
  CHECK(t.run(t.client.fetch("Node").describe()).type_name == "class Node");
  CHECK(t.run(t.client.fetch("hypot2").describe()).type_name == "function");
  // Signatures: a method returning void returns none; a function's own overloads.
  CHECK(d.members[0].signatures == std::vector<std::string>{"(Node) -> none"});
  CHECK(t.run(t.client.fetch("hypot2").describe()).signatures == std::vector<std::string>{"(float64, float64) -> float64"});
  CHECK(t.error_of(t.client.fetch("missing").describe()) == ErrorKind::name);
}

// ---- the registry -----------------------------------------------------------------------------

TEST_CASE("registry: fetch, browse, store, attach and detach") {
  bt::Connected t;
  auto& c = t.client;
  auto names = t.run(c.browse());
  CHECK(std::is_sorted(names.begin(), names.end()));
  CHECK(std::count(names.begin(), names.end(), "shape") == 1);
  CHECK(std::count(names.begin(), names.end(), "root") == 1);

  CHECK(t.error_of(c.fetch("nothing").get()) == ErrorKind::name);

  auto stored = c.store(std::vector<std::int64_t>{1, 2});
  t.run(c.attach(stored, "mine"));
  auto after = t.run(c.browse());
  CHECK(std::count(after.begin(), after.end(), "mine") == 1);
  CHECK(t.run(c.fetch("mine").as<std::vector<std::int64_t>>()) == std::vector<std::int64_t>{1, 2});
  // An attached object is the object itself, not a copy.
  t.run(c.attach(c.fetch("root").call("child", 0), "first_child"));
  t.run(c.fetch("first_child").set("value", 22));
  CHECK(as_int(t, c.fetch("root").call("child", 0).attr("value")) == 22);

  CHECK(t.error_of(c.attach(stored, "mine")) == ErrorKind::name);
  CHECK(t.error_of(c.attach(stored, "root")) == ErrorKind::name);
  CHECK(t.error_of(c.attach(stored, "")) == ErrorKind::value);
  CHECK(t.error_of(c.detach("root")) == ErrorKind::name);  // exported by the server
  t.run(c.detach("mine"));
  CHECK(t.error_of(c.fetch("mine").get()) == ErrorKind::name);
  CHECK(t.error_of(c.detach("mine")) == ErrorKind::name);
  // The handle from store is still good: detach only removes the name.
  CHECK(as_int(t, stored.len()) == 2);
}

TEST_CASE("a stored value lives on the server and takes part in operations") {
  bt::Connected t;
  auto& c = t.client;
  auto ref = c.store(5);
  t.run(c.fetch("root").set("value", ref));
  CHECK(as_int(t, c.fetch("root").attr("value")) == 5);
  CHECK(as_int(t, ref * c.fetch("five")) == 25);
  // Storing a handle stores the object it refers to.
  auto again = c.store(c.fetch("root"));
  CHECK(as_bool(t, again == c.fetch("root")));
}

// ---- the wire trace -----------------------------------------------------------------------------

TEST_CASE("the wire trace names each message's kind, as the messages' own readers do") {
  bt::Connected t(traced());
  auto& c = t.client;
  {
    auto root = c.fetch("root");
    CHECK(as_int(t, root.attr("value")) == 1);
  }
  // The handles are gone: their capabilities are released, and the server has answered a call
  // made after that (messages go out in order).
  CHECK(as_int(t, c.fetch("five")) == 5);
  std::map<std::string, int> sent, received;
  for (auto& e : c.wire_trace()) ++(e.outgoing ? sent : received)[e.kind];
  CHECK(sent["bootstrap"] == 1);
  CHECK(sent["call"] >= 2);
  CHECK(received["return"] == sent["bootstrap"] + sent["call"]);  // every one awaited, so answered
  CHECK(sent["finish"] >= 1);
  CHECK(sent["release"] >= 1);
  CHECK(received["call"] == 0);
  CHECK(sent["other"] == 0);
  CHECK(received["other"] == 0);
  CHECK(c.wire_stats().calls_sent == static_cast<std::uint64_t>(sent["call"]));
  CHECK(c.wire_stats().returns_received == static_cast<std::uint64_t>(received["return"]));
}

// ---- pipelining -------------------------------------------------------------------------------

TEST_CASE("a step whose answer carried its value stays a working handle") {
  bt::Connected t(traced());
  auto& c = t.client;
  auto sum = c.fetch("five") + 1;
  CHECK(as_int(t, sum) == 6);        // rode in the + step
  CHECK(as_int(t, sum) == 6);        // evaluated again: an ordinary get on the same handle
  CHECK(t.run(sum.str()) == "6");
  CHECK(t.run(sum.truthy()));
  // str and truthy right behind their step ride in it, with the same answers as their own calls.
  CHECK(t.run((c.fetch("five") + 1).str()) == "6");
  CHECK(t.run((c.fetch("five") - 5).truthy()) == false);
  CHECK(t.run(c.fetch("shape").attr("name").str()) == t.run(c.fetch("shape").attr("name").as<std::string>()));
  CHECK(as_int(t, sum * 2) == 12);   // and usable in further steps
  using Calls = std::pair<std::size_t, std::size_t>;
  // A handle made earlier, with another step made after it, is evaluated with its own get.
  auto five = c.fetch("five");
  CHECK(calls_of(t, [&] {
          auto a = five + 1;
          auto b = five + 2;
          (void)b;
          return a.get();
        }) == Calls{3, 3});  // +1, +2, get on the first
}

TEST_CASE("steps nobody holds in between travel as one chain, with the answers of separate calls") {
  bt::Connected t(traced());
  auto& c = t.client;
  using Calls = std::pair<std::size_t, std::size_t>;
  // Every step kind: call, item, attr, binary, unary; invoke; len.
  auto chained = t.run((-(c.fetch("shape").call("corners").item(1).attr("x") * 2)).get());
  auto shape = c.fetch("shape");
  auto corners = shape.call("corners");
  auto corner = corners.item(1);
  auto x = corner.attr("x");
  auto doubled = x * 2;
  auto negated = -doubled;
  auto separate = t.run(negated.get());
  CHECK(chained.as<double>() == separate.as<double>());
  CHECK(t.run(c.fetch("shape").attr("kind")(1).as<std::string>()) == "int64");
  CHECK(as_int(t, c.fetch("shape").attr("tags").len() + 0) == 3);
  // A constructed object in the middle: the steps after it run on its new actor.
  CHECK(as_double(t, c.fetch("Vec2")(1.0, 2.0).attr("y") * 2) == 4.0);
  // A step that fails fails the chain with its own error.
  CHECK(t.error_of((c.fetch("shape").attr("missing").attr("x") + 1).get()) == ErrorKind::attribute);
  CHECK(t.error_of((c.fetch("five") / 0 + 1).get()) == ErrorKind::value);
  // The kept handles still work, and so does the server.
  CHECK(as_int(t, c.fetch("five") + 1) == 6);
  CHECK(as_double(t, -doubled) == separate.as<double>());
  // Longer than one chain may be (1024 steps): the first steps go as calls of their own.
  CHECK(calls_of(t, [&] {
          auto h = c.fetch("five");
          for (int i = 0; i < 1100; ++i) h = std::move(h) + 1;
          return std::move(h).as<std::int64_t>();
        }) == Calls{78, 78});  // fetch, 76 single steps, one chain of 1024
  auto h = c.fetch("five");
  for (int i = 0; i < 1100; ++i) h = h + 1;
  CHECK(t.run(std::move(h).as<std::int64_t>()) == 1105);
}

TEST_CASE("a handle someone holds keeps its capability, in a chain or evaluated") {
  bt::Connected t(traced());
  auto& c = t.client;
  using Calls = std::pair<std::size_t, std::size_t>;
  // Evaluated while held: the answer carries a capability, and the handle goes on working.
  auto sum = c.fetch("five") + 1;
  CHECK(as_int(t, sum) == 6);
  CHECK(as_int(t, sum * 2) == 12);
  // Held in the middle: the chain stops at it; it is pipelined on, and has its capability.
  auto middle = c.fetch("five") + 10;
  // (fetch and +10 went out before the count began: calls_of starts with a round trip)
  CHECK(calls_of(t, [&] { return ((middle + 1) * 2).get(); }) == Calls{1, 1});  // the chain, on middle
  CHECK(as_int(t, middle) == 15);
  // Held at the end of a chain: the chain brings its capability back too.
  auto before = c.wire_stats().calls_sent;
  auto x = c.fetch("shape").attr("origin").attr("x");
  auto v = t.run(x.get()).as<double>();
  CHECK(c.wire_stats().calls_sent - before == 2);  // fetch, chain (attr, attr, the value)
  CHECK(as_double(t, x * 2) == 2 * v);
  // Copies count as holders too.
  auto first = c.fetch("five") + 100;
  auto copy = first;
  CHECK(as_int(t, std::move(first) + 0) == 105);
  CHECK(as_int(t, copy) == 105);
}

TEST_CASE("every operation is pipelined: a chain is sent whole before any answer") {
  bt::Connected t(traced());
  auto& c = t.client;
  using Calls = std::pair<std::size_t, std::size_t>;
  // An evaluation right behind the step that made its handle rides in that step: its answer
  // carries the value, so `get` costs no call of its own there. Steps whose handles nobody
  // holds in between (temporaries, as here) travel together as one chain call.
  // fetch, chain (attr, attr, the value)
  CHECK(calls_of(t, [&] { return c.fetch("shape").attr("origin").attr("x").get(); }) == Calls{2, 2});
  // fetch, attr, setAttr
  CHECK(calls_of(t, [&] { return c.fetch("shape").attr("origin").set("x", 1.0); }) == Calls{3, 3});
  // fetch, chain (call, call, the value)
  CHECK(calls_of(t, [&] { return c.fetch("shape").call("center").call("norm2").get(); }) == Calls{2, 2});
  // fetch, chain (invoke, attr, the value)
  CHECK(calls_of(t, [&] { return c.fetch("Vec2")(1.0, 2.0).attr("y").get(); }) == Calls{2, 2});
  // fetch, chain (attr: a bound method, invoke, the value)
  CHECK(calls_of(t, [&] { return c.fetch("shape").attr("kind")(1).get(); }) == Calls{2, 2});
  // fetch, chain (attr, item, the value)
  CHECK(calls_of(t, [&] { return c.fetch("shape").attr("tags").item(0).get(); }) == Calls{2, 2});
  // fetch, attr, setItem
  CHECK(calls_of(t, [&] { return c.fetch("shape").attr("row").set_item(0, 5); }) == Calls{3, 3});
  // fetch, chain (attr, len, the value)
  CHECK(calls_of(t, [&] { return c.fetch("shape").attr("tags").len().get(); }) == Calls{2, 2});
  // fetch, binary with the value; reflected the same
  CHECK(calls_of(t, [&] { return (c.fetch("five") + 1).get(); }) == Calls{2, 2});
  CHECK(calls_of(t, [&] { return (1 - c.fetch("five")).get(); }) == Calls{2, 2});
  // fetch, fetch, binary with a pipelined handle operand with the value
  CHECK(calls_of(t, [&] { return (c.fetch("five") * c.fetch("five")).get(); }) == Calls{3, 3});
  // fetch, binary (comparison) with the value
  CHECK(calls_of(t, [&] { return (c.fetch("five") <= 6).get(); }) == Calls{2, 2});
  // fetch, unary with the value
  CHECK(calls_of(t, [&] { return (~c.fetch("five")).get(); }) == Calls{2, 2});
  // fetch, attr with str / truthy (they ride in the step too); fetch, call, describe
  CHECK(calls_of(t, [&] { return c.fetch("shape").attr("name").str(); }) == Calls{2, 2});
  CHECK(calls_of(t, [&] { return c.fetch("shape").attr("name").truthy(); }) == Calls{2, 2});
  CHECK(calls_of(t, [&] { return c.fetch("shape").call("center").describe(); }) == Calls{3, 3});
  // store, binary with the value
  CHECK(calls_of(t, [&] { return (c.store(2) + 1).get(); }) == Calls{2, 2});
  // fetch, attr, attach
  CHECK(calls_of(t, [&] { return c.attach(c.fetch("shape").attr("origin"), "origin"); }) == Calls{3, 3});
  // A long mixed chain: fetch, fetch, chain (call, item, attr, +, *, ==, the value).
  CHECK(calls_of(t, [&] {
          auto five = c.fetch("five");  // first: a fetch sends the steps made before it
          return (((c.fetch("shape").call("corners").item(1).attr("x") + five) * 2) == 14).get();
        }) == Calls{3, 3});
  // The same with a fetch in the middle: the steps before it go first, each its own call.
  CHECK(calls_of(t, [&] {
          auto x = c.fetch("shape").call("corners").item(1).attr("x");
          auto five = c.fetch("five");
          return (((std::move(x) + five) * 2) == 14).get();
        }) == Calls{6, 6});
  CHECK(as_bool(t, ((c.fetch("shape").call("corners").item(1).attr("x") + c.fetch("five")) * 2) == 14));
}
