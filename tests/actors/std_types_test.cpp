// The standard types the binding converts (std::pair, std::tuple, std::array, std::set,
// std::unordered_set, std::unordered_map, maps with integer or enum keys, std::chrono
// durations, const char*), bound enums, overload<Sig>, and the Server's check that a registry
// names only registered types: each through a server method over a real loopback connection.

#include <array>
#include <chrono>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "support.hpp"

using remoteable::ErrorKind;
using remoteable::Value;
using List = remoteable::Value::List;
using namespace std::chrono_literals;

namespace {

enum class Color { red, green = 5, blue };
enum Plain { zero, one };  // an unscoped enum, never bound: the construction check names it

struct Unregistered {
  int n = 0;
};

struct Kit {
  std::set<std::int64_t> tags{3, 1, 2};
  std::unordered_map<std::string, double> weights{{"a", 0.5}};
  std::map<std::int64_t, std::string> names{{2, "two"}, {1, "one"}};
  std::chrono::milliseconds timeout{1500};
  Color color = Color::green;

  std::pair<std::int64_t, std::string> swap(std::pair<std::string, std::int64_t> p) const { return {p.second, p.first}; }
  std::tuple<bool, double, std::string> triple(std::tuple<std::string, double, bool> t) const {
    return {std::get<2>(t), std::get<1>(t) * 2, std::get<0>(t)};
  }
  std::array<std::int64_t, 3> reversed(const std::array<std::int64_t, 3>& a) const { return {a[2], a[1], a[0]}; }
  std::set<std::int64_t> sorted(std::set<std::int64_t> s) const { return s; }
  std::size_t distinct(const std::unordered_set<std::int64_t>& s) const { return s.size(); }
  std::unordered_map<std::string, std::int64_t> lengths(const std::unordered_map<std::string, std::string>& m) const {
    std::unordered_map<std::string, std::int64_t> out;
    for (auto& [k, v] : m) out.emplace(k, static_cast<std::int64_t>(v.size()));
    return out;
  }
  std::map<std::int64_t, std::string> by_number(std::map<std::int64_t, std::string> m) const { return m; }
  std::size_t hashed(const std::unordered_map<std::int64_t, std::int64_t>& m) const { return m.size(); }
  std::map<Color, std::int64_t> by_color(const std::map<Color, std::int64_t>& m) const { return m; }
  std::chrono::seconds longer(std::chrono::milliseconds d) const {
    return std::chrono::duration_cast<std::chrono::seconds>(d) + 1s;
  }
  std::chrono::duration<double> half(std::chrono::duration<double> d) const { return d / 2; }
  std::size_t length(const char* s) const { return std::string_view(s).size(); }
  const char* label(bool null) const { return null ? nullptr : "label"; }
  Color next(Color c) const { return c == Color::red ? Color::green : c == Color::green ? Color::blue : Color::red; }
  Color broken() const { return static_cast<Color>(42); }
  std::vector<bool> flags() const { return {true, false, true}; }

  std::string kind(std::int64_t) const { return "int64"; }
  std::string kind(const std::string&) const { return "text"; }
  std::string kind(std::int64_t) { return "non-const int64"; }
};

std::string twice(const std::string& s) { return s + s; }
std::int64_t twice(std::int64_t x) { return 2 * x; }

void register_kit(remoteable::Registry& types) {
  types.enum_<Color>("Color").value("red", Color::red).value("green", Color::green).value("blue", Color::blue);
  types.class_<Kit>("Kit")
      .field("tags", &Kit::tags)
      .field("weights", &Kit::weights)
      .field("names", &Kit::names)
      .field("timeout", &Kit::timeout)
      .field("color", &Kit::color)
      .method("swap", &Kit::swap)
      .method("triple", &Kit::triple)
      .method("reversed", &Kit::reversed)
      .method("sorted", &Kit::sorted)
      .method("distinct", &Kit::distinct)
      .method("lengths", &Kit::lengths)
      .method("by_number", &Kit::by_number)
      .method("hashed", &Kit::hashed)
      .method("by_color", &Kit::by_color)
      .method("longer", &Kit::longer)
      .method("half", &Kit::half)
      .method("length", &Kit::length)
      .method("label", &Kit::label)
      .method("next", &Kit::next)
      .method("broken", &Kit::broken)
      .method("flags", &Kit::flags)
      .method("kind", remoteable::overload<std::string(std::int64_t) const>(&Kit::kind))
      .method("kind", remoteable::overload<std::string(const std::string&) const>(&Kit::kind))
      .method("kind_mutable", remoteable::overload<std::string(std::int64_t)>(&Kit::kind));
}

struct KitServer {
  KitServer() {
    register_kit(types);
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types);
    server->server().export_object(std::make_shared<Kit>(), "kit");
    server->server().export_function("twice", remoteable::overloads(remoteable::overload<std::int64_t(std::int64_t)>(&twice),
                                                                    remoteable::overload<std::string(const std::string&)>(&twice)));
  }
  remoteable::Registry types;
  std::optional<remoteable::ThreadedServer> server;
};

struct Connected : KitServer {
  Connected() : client(test::connect(context, {"127.0.0.1", server->port()})) {}
  ~Connected() {
    client.close();
    context.restart();
    context.poll();
  }
  template <class T> T run(asio::awaitable<T> aw) { return test::await(context, std::move(aw)); }
  void run(asio::awaitable<void> aw) { test::await(context, std::move(aw)); }
  template <class T> ErrorKind error_of(asio::awaitable<T> aw) { return test::error_of(context, std::move(aw)); }
  template <class T> std::string message_of(asio::awaitable<T> aw) { return test::message_of(context, std::move(aw)); }
  Value get(const remoteable::Handle& h) { return run(h.get()); }
  std::vector<std::int64_t> ints(const remoteable::Handle& h) { return run(h.as<std::vector<std::int64_t>>()); }

  asio::io_context context;
  remoteable::Client client;
  remoteable::Handle kit = client.fetch("kit");
};

Value list(List l) { return Value(std::move(l)); }

}  // namespace

TEST_CASE("pairs and tuples travel as lists of their size, element by element") {
  Connected t;
  auto r = t.get(t.kit.call("swap", list({"x", 7})));
  CHECK(r.as<List>().size() == 2);
  CHECK(r.as<List>()[0].as<std::int64_t>() == 7);
  CHECK(r.as<List>()[1].as<std::string>() == "x");
  auto tr = t.get(t.kit.call("triple", list({"s", 1.25, true}))).as<List>();
  CHECK(tr[0].as<bool>());
  CHECK(tr[1].as<double>() == 2.5);
  CHECK(tr[2].as<std::string>() == "s");
  // An int64 converts to the tuple's double, as for any float64 parameter.
  CHECK(t.get(t.kit.call("triple", list({"s", 2, false}))).as<List>()[1].as<double>() == 4);
  // The wrong length or element kinds are type errors naming what it takes.
  CHECK(t.error_of(t.kit.call("swap", list({"x"})).get()) == ErrorKind::type);
  CHECK_THAT(t.message_of(t.kit.call("swap", list({"x", 7, 8})).get()),
             Catch::Contains("expects ([text, int64])") && Catch::Contains("got (list of text and int64)"));
  CHECK_THAT(t.message_of(t.kit.call("swap", list({7, "x"})).get()), Catch::Contains("expects ([text, int64])"));
}

TEST_CASE("std::array takes a list of exactly its length") {
  Connected t;
  CHECK(t.ints(t.kit.call("reversed", list({1, 2, 3}))) == std::vector<std::int64_t>{3, 2, 1});
  CHECK_THAT(t.message_of(t.kit.call("reversed", list({1, 2})).get()),
             Catch::Contains("expects (list of 3 int64)") && Catch::Contains("got (list of int64)"));
  CHECK(t.error_of(t.kit.call("reversed", list({1, 2, 3, 4})).get()) == ErrorKind::type);
  CHECK_THAT(t.message_of(t.kit.call("reversed", list({1, "2", 3})).get()), Catch::Contains("got (list of int64 and text)"));
}

TEST_CASE("sets travel as lists of distinct elements; a repeated element is a type error") {
  Connected t;
  CHECK(t.ints(t.kit.attr("tags")) == std::vector<std::int64_t>{1, 2, 3});
  CHECK(t.ints(t.kit.call("sorted", list({5, 4, 6}))) == std::vector<std::int64_t>{4, 5, 6});
  CHECK(t.run(t.kit.call("distinct", list({9, 8, 7, 6})).as<std::int64_t>()) == 4);
  CHECK(t.error_of(t.kit.call("sorted", list({1, 2, 1})).get()) == ErrorKind::type);
  CHECK_THAT(t.message_of(t.kit.call("sorted", list({1, 2, 1})).get()),
             Catch::Contains("list of distinct int64") && Catch::Contains("element 2 repeats an earlier one"));
  CHECK(t.error_of(t.kit.call("distinct", list({1, 1})).get()) == ErrorKind::type);
  // Fields too.
  t.run(t.kit.set("tags", list({8, 7})));
  CHECK(t.ints(t.kit.attr("tags")) == std::vector<std::int64_t>{7, 8});
  CHECK_THAT(t.message_of(t.kit.set("tags", list({"a"}))), Catch::Contains("'Kit.tags' expects list of distinct int64, got list of text"));
}

TEST_CASE("unordered maps with text keys travel as maps") {
  Connected t;
  using M = std::map<std::string, double>;
  CHECK(t.run(t.kit.attr("weights").as<M>()) == M{{"a", 0.5}});
  auto r = t.run(t.kit.call("lengths", Value::Map{{"ab", Value("xyz")}, {"c", Value("")}}).as<std::map<std::string, std::int64_t>>());
  CHECK(r == std::map<std::string, std::int64_t>{{"ab", 3}, {"c", 0}});
  CHECK_THAT(t.message_of(t.kit.call("lengths", Value::Map{{"ab", Value(1)}}).get()),
             Catch::Contains("expects (map of text)") && Catch::Contains("got (map of int64)"));
}

TEST_CASE("maps with integer or enum keys travel as lists of [key, value] pairs with distinct keys") {
  Connected t;
  auto names = t.get(t.kit.attr("names")).as<List>();
  REQUIRE(names.size() == 2);
  CHECK(names[0].as<List>()[0].as<std::int64_t>() == 1);  // in the map's order
  CHECK(names[0].as<List>()[1].as<std::string>() == "one");
  auto r = t.get(t.kit.call("by_number", list({list({10, "ten"}), list({-1, "minus one"})}))).as<List>();
  REQUIRE(r.size() == 2);
  CHECK(r[0].as<List>()[0].as<std::int64_t>() == -1);
  CHECK(t.error_of(t.kit.call("by_number", list({list({1, "a"}), list({1, "b"})})).get()) == ErrorKind::type);
  CHECK_THAT(t.message_of(t.kit.call("by_number", list({list({1, "a"}), list({1, "b"})})).get()),
             Catch::Contains("element 1 repeats the key of an earlier one"));
  CHECK_THAT(t.message_of(t.kit.call("by_number", list({list({1})})).get()),
             Catch::Contains("expects (list of [int64, text] with distinct keys)"));
  CHECK(t.error_of(t.kit.call("by_number", Value::Map{{"1", Value("a")}}).get()) == ErrorKind::type);
  // Enum keys are the enum's names.
  auto c = t.get(t.kit.call("by_color", list({list({"blue", 3}), list({"red", 1})}))).as<List>();
  REQUIRE(c.size() == 2);
  CHECK(c[0].as<List>()[0].as<std::string>() == "red");
  CHECK(c[1].as<List>()[0].as<std::string>() == "blue");
}

TEST_CASE("a hash map refuses keys that pile into one bucket") {
  Connected t;
  // std::hash of an integer is the integer: multiples of the bucket count share a bucket. A
  // client that knows this could make each insertion walk all the others.
  // The server reserves room for the whole list, as this probe does.
  std::unordered_map<std::int64_t, std::int64_t> probe;
  probe.reserve(100);
  const auto buckets = static_cast<std::int64_t>(probe.bucket_count());
  List colliding, spread;
  for (std::int64_t i = 0; i < 100; ++i) colliding.push_back(list({i * buckets, i}));
  for (std::int64_t i = 0; i < 100; ++i) spread.push_back(list({i, i}));
  CHECK(t.run(t.kit.call("hashed", Value(spread)).as<std::int64_t>()) == 100);
  auto message = t.message_of(t.kit.call("hashed", Value(colliding)).get());
  CHECK_THAT(message, Catch::Contains("share one hash bucket"));
  CHECK(t.error_of(t.kit.call("hashed", Value(colliding)).get()) == ErrorKind::value);
}

TEST_CASE("durations travel as the count of their own unit") {
  Connected t;
  CHECK(t.run(t.kit.attr("timeout").as<std::int64_t>()) == 1500);
  CHECK(t.run(t.kit.call("longer", 2500).as<std::int64_t>()) == 3);  // 2500 ms -> 2 s, + 1 s
  CHECK(t.run(t.kit.call("half", 3).as<double>()) == 1.5);
  CHECK(t.run(t.kit.call("half", 0.5).as<double>()) == 0.25);
  CHECK(t.error_of(t.kit.call("longer", 1.5).get()) == ErrorKind::type);  // no fractions of a millisecond
  t.run(t.kit.set("timeout", 20));
  CHECK(t.run(t.kit.attr("timeout").as<std::int64_t>()) == 20);
}

TEST_CASE("const char* parameters take text; const char* results are text, or none for null") {
  Connected t;
  CHECK(t.run(t.kit.call("length", "hello").as<std::int64_t>()) == 5);
  CHECK(t.error_of(t.kit.call("length", 5).get()) == ErrorKind::type);
  CHECK(t.error_of(t.kit.call("length", remoteable::None{}).get()) == ErrorKind::type);
  CHECK(t.error_of(t.kit.call("length", std::string("a\0b", 3)).get()) == ErrorKind::value);
  CHECK(t.run(t.kit.call("label", false).as<std::string>()) == "label");
  CHECK(t.get(t.kit.call("label", true)).kind() == remoteable::ValueKind::none);
}

TEST_CASE("bound enums travel as their names") {
  Connected t;
  CHECK(t.run(t.kit.attr("color").as<std::string>()) == "green");
  CHECK(t.run(t.kit.call("next", "green").as<std::string>()) == "blue");
  t.run(t.kit.set("color", "red"));
  CHECK(t.run(t.kit.attr("color").as<std::string>()) == "red");
  CHECK(t.error_of(t.kit.call("next", "purple").get()) == ErrorKind::value);
  CHECK_THAT(t.message_of(t.kit.call("next", "purple").get()),
             Catch::Contains("'purple' is not a name of Color {red, green, blue}"));
  CHECK(t.error_of(t.kit.call("next", 0).get()) == ErrorKind::type);  // names, not numbers
  CHECK_THAT(t.message_of(t.kit.call("broken").get()), Catch::Contains("result 42 has no name in Color"));
  CHECK_THAT(t.message_of(t.kit.call("next", std::string(1000, 'x')).get()), Catch::Contains("..."));
}

TEST_CASE("a vector<bool> result is a list of bools") {
  Connected t;
  auto r = t.get(t.kit.call("flags")).as<List>();
  REQUIRE(r.size() == 3);
  CHECK(r[0].as<bool>());
  CHECK_FALSE(r[1].as<bool>());
}

TEST_CASE("overload<Sig> picks a member or free function of an overload set by its signature") {
  Connected t;
  CHECK(t.run(t.kit.call("kind", 1).as<std::string>()) == "int64");
  CHECK(t.run(t.kit.call("kind", "x").as<std::string>()) == "text");
  CHECK(t.run(t.kit.call("kind_mutable", 1).as<std::string>()) == "non-const int64");
  CHECK(t.run(t.client.fetch("twice")(21).as<std::int64_t>()) == 42);
  CHECK(t.run(t.client.fetch("twice")("ab").as<std::string>()) == "abab");
}

TEST_CASE("describe names the kinds of the standard types and enums") {
  Connected t;
  auto d = t.run(t.kit.describe());
  auto member = [&](const std::string& name) {
    for (auto& m : d.members)
      if (m.name == name) return m;
    FAIL("no member " << name);
    return remoteable::MemberInfo{};
  };
  CHECK(member("tags").type == "list of distinct int64");
  CHECK(member("weights").type == "map of float64");
  CHECK(member("names").type == "list of [int64, text] with distinct keys");
  CHECK(member("timeout").type == "int64 milliseconds");
  CHECK(member("color").type == "Color {red, green, blue}");
  CHECK(member("swap").signatures == std::vector<std::string>{"([text, int64]) -> [int64, text]"});
  CHECK(member("triple").signatures == std::vector<std::string>{"([text, float64, bool]) -> [bool, float64, text]"});
  CHECK(member("reversed").signatures == std::vector<std::string>{"(list of 3 int64) -> list of 3 int64"});
  CHECK(member("distinct").signatures == std::vector<std::string>{"(list of distinct int64) -> int64"});
  CHECK(member("lengths").signatures == std::vector<std::string>{"(map of text) -> map of int64"});
  CHECK(member("by_color").signatures ==
        std::vector<std::string>{"(list of [Color {red, green, blue}, int64] with distinct keys) -> list of [Color {red, green, blue}, int64] with distinct keys"});
  CHECK(member("longer").signatures == std::vector<std::string>{"(int64 milliseconds) -> int64 seconds"});
  CHECK(member("half").signatures == std::vector<std::string>{"(float64 seconds) -> float64 seconds"});
  CHECK(member("length").signatures == std::vector<std::string>{"(text) -> int64"});
  CHECK(member("label").signatures == std::vector<std::string>{"(bool) -> text or none"});
  CHECK(member("flags").signatures == std::vector<std::string>{"() -> list of bool"});
}

TEST_CASE("a Server refuses a registry whose members name unregistered classes or enums, saying which") {
  struct Holder {
    Holder() = default;
    explicit Holder(const Unregistered&) {}
    std::vector<Unregistered> items;
    std::int64_t count(const std::shared_ptr<Unregistered>&) const { return 0; }
    Plain plain() const { return zero; }
  };
  auto refused = [](remoteable::Registry& types) -> std::string {
    try {
      remoteable::Server server({"127.0.0.1", 0}, types);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "accepted";
  };
  {
    remoteable::Registry types;
    types.class_<Holder>("Holder").field("items", &Holder::items);
    CHECK_THAT(refused(types), Catch::Contains("'Holder.items' uses class") && Catch::Contains("Unregistered") &&
                                   Catch::Contains("not registered") && Catch::Contains("Registry::class_"));
  }
  {
    remoteable::Registry types;
    types.class_<Holder>("Holder").method("count", &Holder::count);
    CHECK_THAT(refused(types), Catch::Contains("'Holder.count' uses class") && Catch::Contains("Unregistered"));
  }
  {
    remoteable::Registry types;
    types.class_<Holder>("Holder").method("plain", &Holder::plain);
    CHECK_THAT(refused(types), Catch::Contains("'Holder.plain' uses enum") && Catch::Contains("Plain") &&
                                   Catch::Contains("Registry::enum_"));
  }
  {
    remoteable::Registry types;
    types.class_<Holder>("Holder").constructor<Unregistered>();
    CHECK_THAT(refused(types), Catch::Contains("a constructor of 'Holder' uses class"));
  }
  {
    // Registered, even after the class that names it: accepted.
    remoteable::Registry types;
    types.class_<Holder>("Holder").field("items", &Holder::items).method("plain", &Holder::plain);
    types.class_<Unregistered>("Unregistered");
    types.enum_<Plain>("Plain").value("zero", zero).value("one", one);
    CHECK(refused(types) == "accepted");
    // A function exported later is checked when it is exported.
    remoteable::Registry other;
    remoteable::Server server({"127.0.0.1", 0}, other);
    CHECK_THROWS_WITH(server.export_function("f", [](const Unregistered&) { return 1; }),
                      Catch::Contains("the function 'f' uses class") && Catch::Contains("Unregistered"));
    CHECK(server.browse().empty());
  }
}

TEST_CASE("enum_ refuses a repeated name or value") {
  remoteable::Registry types;
  auto e = types.enum_<Color>("Color");
  e.value("red", Color::red);
  CHECK_THROWS_AS(e.value("red", Color::blue), std::invalid_argument);
  CHECK_THROWS_WITH(e.value("crimson", Color::red), Catch::Contains("already named 'red'"));
  CHECK_THROWS_AS(e.value("", Color::blue), std::invalid_argument);
}
