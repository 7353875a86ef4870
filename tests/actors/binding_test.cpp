// The binding API (Registry / ClassBuilder): every registration form, seen from a client over a
// real loopback connection.

#include <set>

#include "binding_types.hpp"

using remoteable::Bytes;
using remoteable::ErrorKind;
using remoteable::Handle;
using remoteable::Value;

namespace {

std::int64_t as_int(bt::Connected& t, const Handle& h) { return t.run(h.as<std::int64_t>()); }
double as_double(bt::Connected& t, const Handle& h) { return t.run(h.as<double>()); }
std::string as_text(bt::Connected& t, const Handle& h) { return t.run(h.as<std::string>()); }
bool is_true(bt::Connected& t, const Handle& h) { return t.run(h.as<bool>()); }

}  // namespace

// ---- fields -----------------------------------------------------------------------------------

TEST_CASE("fields of every plain kind can be read and written") {
  bt::Connected t;
  auto s = t.client.fetch("shape");
  CHECK(as_text(t, s.attr("name")) == "shape");
  t.run(s.set("name", "box"));
  CHECK(as_text(t, s.attr("name")) == "box");

  CHECK(t.run(s.attr("tags").as<std::vector<std::int64_t>>()) == std::vector<std::int64_t>{1, 2, 3});
  t.run(s.set("tags", std::vector<std::int64_t>{4, 5}));
  CHECK(t.run(s.attr("tags").as<std::vector<std::int64_t>>()) == std::vector<std::int64_t>{4, 5});

  using Weights = std::map<std::string, double>;
  CHECK(t.run(s.attr("weights").as<Weights>()) == Weights{{"a", 0.5}, {"b", 1.5}});
  t.run(s.set("weights", Weights{{"z", 2.0}}));
  CHECK(t.run(s.attr("weights").as<Weights>()) == Weights{{"z", 2.0}});

  CHECK(t.run(s.attr("maybe").as<std::optional<std::int64_t>>()) == std::nullopt);
  t.run(s.set("maybe", 7));
  CHECK(t.run(s.attr("maybe").as<std::optional<std::int64_t>>()) == 7);
  t.run(s.set("maybe", remoteable::None{}));
  CHECK(t.run(s.attr("maybe").get()).kind() == remoteable::ValueKind::none);

  CHECK(t.run(s.attr("blob").as<Bytes>()) == Bytes{std::byte{1}, std::byte{2}, std::byte{255}});
  t.run(s.set("blob", Bytes{std::byte{9}}));
  CHECK(t.run(s.attr("blob").as<Bytes>()) == Bytes{std::byte{9}});

  CHECK(is_true(t, s.attr("visible")));
  t.run(s.set("visible", false));
  CHECK_FALSE(is_true(t, s.attr("visible")));
}

TEST_CASE("a field holding a registered class is a reference into its owner") {
  bt::Connected t;
  auto s = t.client.fetch("shape");
  auto origin = s.attr("origin");
  t.run(origin.set("x", 9.5));
  CHECK(as_double(t, s.attr("origin").attr("x")) == 9.5);
  // Writing the whole field copies the argument into it.
  t.run(s.set("origin", t.client.fetch("vec")));
  CHECK(as_double(t, s.attr("origin").attr("y")) == 4);
  t.run(t.client.fetch("vec").set("y", 40.0));
  CHECK(as_double(t, s.attr("origin").attr("y")) == 4);
  // A shared_ptr field can be replaced by another object, but not by none (issue 8: nulls only
  // where the binding allows them, T* and std::optional).
  t.run(s.set("shared", t.client.fetch("vec")));
  CHECK(as_double(t, s.attr("shared").attr("y")) == 40);
  CHECK(t.error_of(s.set("shared", remoteable::None{})) == ErrorKind::type);
  CHECK(as_double(t, s.attr("shared").attr("y")) == 40);
}

TEST_CASE("a const field can be read but setting it is an attribute error") {
  bt::Connected t;
  auto s = t.client.fetch("shape");
  CHECK(as_int(t, s.attr("id")) == 3);
  CHECK(t.error_of(s.set("id", 4)) == ErrorKind::attribute);
  CHECK_THAT(t.message_of(s.set("id", 4)), Catch::Contains("Shape.id") && Catch::Contains("readonly field"));
  // A const registered object is read as a copy: writing to the copy leaves the field alone.
  CHECK(t.error_of(s.set("anchor", t.client.fetch("vec"))) == ErrorKind::attribute);
  auto copy = s.attr("anchor");
  t.run(copy.set("x", 0.0));
  CHECK(as_double(t, copy.attr("x")) == 0);
  CHECK(as_double(t, s.attr("anchor").attr("x")) == 5);
}

TEST_CASE("setting a field with the wrong kind is a type error naming the field and its kind") {
  bt::Connected t;
  auto s = t.client.fetch("shape");
  CHECK(t.error_of(s.set("name", 5)) == ErrorKind::type);
  CHECK_THAT(t.message_of(s.set("name", 5)),
             Catch::Contains("Shape.name") && Catch::Contains("expects text") && Catch::Contains("got int64"));
  CHECK_THAT(t.message_of(s.set("tags", std::vector<std::string>{"x"})), Catch::Contains("list of int64"));
  // What a list or map held, not only that it was one.
  CHECK_THAT(t.message_of(s.set("tags", std::vector<std::string>{"x", "y"})),
             Catch::Contains("expects list of int64, got list of text"));
  CHECK_THAT(t.message_of(s.set("tags", remoteable::Value(remoteable::Value::List{remoteable::Value("x"), remoteable::Value(std::int64_t{1})}))),
             Catch::Contains("got list of text and int64"));
  CHECK_THAT(t.message_of(s.set("tags", std::map<std::string, std::string>{{"k", "v"}})), Catch::Contains("got map of text"));
  CHECK_THAT(t.message_of(s.set("name", std::vector<std::int64_t>{})), Catch::Contains("got empty list"));
  CHECK_THAT(t.message_of(t.client.fetch("twice")(std::vector<std::int64_t>{1}).get()), Catch::Contains("got (list of int64)"));
  // C++ type names in messages are demangled.
  CHECK(remoteable::detail::demangle(typeid(std::set<int>).name()) == "std::set<int, std::less<int>, std::allocator<int> >");
  CHECK(remoteable::detail::demangle("not a mangled name") == "not a mangled name");
  CHECK_THAT(t.message_of(s.set("origin", 1)), Catch::Contains("Vec2"));
  CHECK(t.error_of(s.set("no_such_member", 1)) == ErrorKind::attribute);
}

// ---- properties -------------------------------------------------------------------------------

TEST_CASE("properties read through their getter and write through their setter") {
  bt::Connected t;
  auto s = t.client.fetch("shape");
  CHECK(as_double(t, s.attr("width")) == 2);
  t.run(s.set("width", 4.0));
  CHECK(as_double(t, s.attr("width")) == 4);
  t.run(s.set("width", 5));  // an int64 converts to the setter's double
  CHECK(as_double(t, s.attr("area")) == 15);
  // A setter that returns something (here Shape&) is fine.
  t.run(s.set("height", 10));
  CHECK(as_double(t, s.attr("height")) == 10);
  // Getter and setter given as lambdas.
  CHECK(as_double(t, s.attr("perimeter")) == 30);
  t.run(s.set("title", "called"));
  CHECK(as_text(t, s.attr("title")) == "called");
  CHECK(as_text(t, s.attr("name")) == "called");
}

TEST_CASE("a getter-only property cannot be set, and a setter's exception maps to its kind") {
  bt::Connected t;
  auto s = t.client.fetch("shape");
  CHECK(t.error_of(s.set("area", 1.0)) == ErrorKind::attribute);
  CHECK(t.error_of(s.set("perimeter", 1.0)) == ErrorKind::attribute);
  CHECK_THAT(t.message_of(s.set("area", 1.0)), Catch::Contains("readonly property"));
  CHECK(t.error_of(s.set("width", -1.0)) == ErrorKind::value);  // std::invalid_argument
  CHECK(t.error_of(s.set("width", "wide")) == ErrorKind::type);
  CHECK_THAT(t.message_of(s.set("width", "wide")), Catch::Contains("Shape.width") && Catch::Contains("float64"));
}

// ---- methods, constructors, functions ---------------------------------------------------------

TEST_CASE("overloaded constructors are chosen by arity and argument kinds") {
  bt::Connected t;
  auto cls = t.client.fetch("Shape");
  CHECK(as_text(t, cls().attr("name")) == "shape");
  auto square = cls(4);
  CHECK(as_text(t, square.attr("name")) == "square");
  CHECK(as_double(t, square.attr("area")) == 16);
  auto rect = cls(2.0, 3.5);
  CHECK(as_text(t, rect.attr("name")) == "rect");
  CHECK(as_double(t, rect.attr("area")) == 7);
  CHECK(as_text(t, cls("named", 3).attr("name")) == "named");
  // (int64, int64) fits only (float64, float64), through a conversion.
  CHECK(as_text(t, cls(2, 3).attr("name")) == "rect");
  CHECK(t.error_of(cls("x").get()) == ErrorKind::type);
  CHECK_THAT(t.message_of(cls("x").get()),
             Catch::Contains("constructor of 'Shape'") && Catch::Contains("(text, int64)") &&
                 Catch::Contains("(float64, float64)") && Catch::Contains("got (text)"));
  // Each construction is a new object.
  CHECK_FALSE(is_true(t, cls() == cls()));
}

TEST_CASE("overloaded methods are chosen by arity and kinds, exact kinds before conversions") {
  bt::Connected t;
  auto s = t.client.fetch("shape");
  CHECK(as_text(t, s.call("kind", 1)) == "int64");  // registered after kind(float64)
  CHECK(as_text(t, s.call("kind", 1.5)) == "float64");
  CHECK(as_text(t, s.call("kind", "a")) == "text");
  CHECK(as_text(t, s.call("kind", 1, 2)) == "two");
  CHECK(as_text(t, s.call("kind")) == "none");
  CHECK(t.error_of(s.call("kind", true).get()) == ErrorKind::type);
  CHECK(t.error_of(s.call("kind", 1, 2, 3).get()) == ErrorKind::type);
  // A method taken as an attribute is bound to its object, overloads and all.
  auto bound = s.attr("kind");
  CHECK(as_text(t, bound("a")) == "text");
  CHECK(as_text(t, bound()) == "none");
}

TEST_CASE("const methods and methods given as lambdas taking the object first are callable") {
  bt::Connected t;
  auto s = t.client.fetch("shape");
  CHECK(as_double(t, s.call("center").attr("x")) == 1);  // center() const
  CHECK(as_text(t, s.call("describe_self", 7)) == "shape#7");
}

TEST_CASE("free functions are exported by name, with overloads and as lambdas") {
  bt::Connected t;
  CHECK(as_double(t, t.client.fetch("hypot2")(3, 4)) == 25);
  CHECK(as_int(t, t.client.fetch("twice")(21)) == 42);
  CHECK(as_text(t, t.client.fetch("twice")("ab")) == "abab");
  CHECK(as_text(t, t.client.fetch("join")(std::vector<std::string>{"a", "b", "c"}, "-")) == "a-b-c");
  CHECK(t.error_of(t.client.fetch("twice")(1.5).get()) == ErrorKind::type);
  CHECK_THAT(t.message_of(t.client.fetch("twice")(1.5).get()),
             Catch::Contains("(int64) or (text)") && Catch::Contains("got (float64)"));
}

TEST_CASE("an exported function knows its own name") {
  bt::Connected t;
  CHECK(t.run(t.client.fetch("twice").str()) == "<function twice>");
  CHECK_THAT(t.message_of(t.client.fetch("twice")(1.5).get()), Catch::Contains("'twice' expects"));
  // Registry::function itself keeps the name.
  CHECK(remoteable::detail::ops::str(t.types.function("named", &bt::twice)) == "<function named>");
}

TEST_CASE("a wrong argument count or kind is a type error naming the member and what it expected") {
  bt::Connected t;
  auto s = t.client.fetch("shape");
  CHECK(t.error_of(s.call("sum_x", 1).get()) == ErrorKind::type);
  CHECK_THAT(t.message_of(s.call("sum_x", 1).get()),
             Catch::Contains("'Shape.sum_x'") && Catch::Contains("(Vec2, Vec2, Vec2 or none, Vec2)") &&
                 Catch::Contains("got (int64)"));
  CHECK_THAT(t.message_of(s.call("total", std::vector<std::string>{"a"}).get()),
             Catch::Contains("'Shape.total'") && Catch::Contains("(list of int64)") && Catch::Contains("got (list of text)"));
  CHECK_THAT(t.message_of(s.call("or_default", "x").get()), Catch::Contains("(int64 or none)"));
  // Path was registered after Shape; its name still shows.
  CHECK_THAT(t.message_of(s.call("path_length", 1).get()), Catch::Contains("(Path)"));
  CHECK_THAT(t.message_of(t.client.fetch("Vec2")("a").get()), Catch::Contains("constructor of 'Vec2'"));
  // An integer that does not fit the parameter is a value error.
  CHECK(as_int(t, s.call("small", 5)) == 5);
  CHECK(t.error_of(s.call("small", std::int64_t{1} << 40).get()) == ErrorKind::value);
}

// ---- results ----------------------------------------------------------------------------------

TEST_CASE("a registered class returned by value becomes a new object") {
  bt::Connected t;
  auto s = t.client.fetch("shape");
  auto center = s.call("center");
  t.run(center.set("x", 100.0));
  CHECK(as_double(t, center.attr("x")) == 100);
  CHECK(as_double(t, s.call("center").attr("x")) == 1);  // the shape is untouched
}

TEST_CASE("a registered class returned by reference, pointer or shared_ptr is the live object") {
  bt::Connected t;
  auto s = t.client.fetch("shape");
  t.run(s.call("origin_ref").set("x", 11.0));
  CHECK(as_double(t, s.attr("origin").attr("x")) == 11);
  t.run(s.call("origin_ptr").set("x", 12.0));
  CHECK(as_double(t, s.attr("origin").attr("x")) == 12);
  CHECK(as_double(t, s.call("origin_cref").attr("x")) == 12);
  t.run(s.call("shared_vec").set("y", 13.0));
  CHECK(as_double(t, s.attr("shared").attr("y")) == 13);
  // A null pointer is none.
  CHECK(t.run(s.call("nothing").get()).kind() == remoteable::ValueKind::none);
  CHECK_FALSE(t.run(s.call("nothing").truthy()));
  // The same object reached two ways is identical (Vec2's == compares values, so write through one).
  auto a = s.call("origin_ref");
  auto b = s.attr("origin");
  t.run(a.set("y", -1.0));
  CHECK(as_double(t, b.attr("y")) == -1);
}

TEST_CASE("vectors and maps of registered objects become lists and maps of handles") {
  bt::Connected t;
  auto s = t.client.fetch("shape");
  CHECK(as_int(t, s.call("corners").len()) == 4);
  CHECK(as_double(t, s.call("corners").item(2).attr("y")) == 3);
  auto corners = t.run(s.call("corners").get());
  REQUIRE(corners.kind() == remoteable::ValueKind::list);
  auto handles = corners.as<std::vector<Handle>>();
  REQUIRE(handles.size() == 4);
  CHECK(as_double(t, handles[1].attr("x")) == 2);

  // Pointers in a vector are references: writing through one changes the shape.
  t.run(s.call("corner_refs").item(0).set("x", 77.0));
  CHECK(as_double(t, s.attr("origin").attr("x")) == 77);

  CHECK(as_double(t, s.call("named").item("center").attr("y")) == 1.5);
  auto named = t.run(s.call("named").get()).as<std::map<std::string, Handle>>();
  CHECK(named.size() == 2);
  t.run(s.call("named_shared").item("shared").set("x", 5.5));
  CHECK(as_double(t, s.attr("shared").attr("x")) == 5.5);
}

TEST_CASE("std::optional results are the value or none") {
  bt::Connected t;
  auto s = t.client.fetch("shape");
  CHECK(as_double(t, s.call("maybe_center", true).attr("x")) == 1);
  CHECK(t.run(s.call("maybe_center", false).get()).kind() == remoteable::ValueKind::none);
  CHECK(t.run(s.call("find_tag", 2).as<std::optional<std::int64_t>>()) == 2);
  CHECK(t.run(s.call("find_tag", 9).as<std::optional<std::int64_t>>()) == std::nullopt);
  CHECK(as_text(t, s.call("label")) == "label");
  CHECK(t.run(s.call("bytes").as<Bytes>()).size() == 3);
  CHECK(t.run(s.call("clear_tags").get()).kind() == remoteable::ValueKind::none);  // void
}

TEST_CASE("arguments of every shape: objects by reference, value, pointer and shared_ptr, containers, optional") {
  bt::Connected t;
  auto s = t.client.fetch("shape");
  auto vec = t.client.fetch("vec");  // (3, 4)
  auto none = remoteable::None{};
  CHECK(as_double(t, s.call("sum_x", vec, vec, none, vec)) == 3 + 3 + 100 + 3);
  CHECK(t.error_of(s.call("sum_x", vec, vec, none, none).get()) == ErrorKind::type);
  CHECK(as_double(t, s.call("sum_x", vec, vec, vec, vec)) == 12);
  // A non-const reference parameter writes to the object itself.
  t.run(s.call("move_to", vec, 8.0).get());
  CHECK(as_double(t, vec.attr("x")) == 8);
  CHECK(as_int(t, s.call("total", std::vector<std::int64_t>{1, 2, 3})) == 6);
  CHECK(as_double(t, s.call("weigh", std::map<std::string, double>{{"a", 1}, {"b", 2.5}})) == 3.5);
  CHECK(as_double(t, s.call("weigh", std::map<std::string, std::int64_t>{{"a", 1}})) == 1);
  CHECK(as_int(t, s.call("or_default", none)) == -1);
  CHECK(as_int(t, s.call("or_default", 4)) == 4);
  CHECK(as_int(t, s.call("count_points", std::vector<Value>{vec, t.client.fetch("Vec2")(1.0, 1.0)})) == 2);
  CHECK(as_int(t, s.call("path_length", t.client.fetch("path"))) == 2);
  CHECK(t.error_of(s.call("count_points", std::vector<Value>{vec, 1}).get()) == ErrorKind::type);
}

// ---- operators --------------------------------------------------------------------------------

TEST_CASE("user operators T op T, T op double and the reflected double op T") {
  bt::Connected t;
  auto vec = t.client.fetch("vec");  // (3, 4)
  auto one = t.client.fetch("Vec2")(1.0, 1.0);
  CHECK(as_double(t, (vec + one).attr("x")) == 4);
  CHECK(as_double(t, (vec - one).attr("y")) == 3);
  CHECK(as_double(t, (vec * 2.0).attr("x")) == 6);
  CHECK(as_double(t, (2.0 * vec).attr("y")) == 8);
  CHECK(as_double(t, (vec * 3).attr("x")) == 9);  // int64 operand, converted as in C++
  CHECK(as_double(t, (vec / 2.0).attr("y")) == 2);
  CHECK(as_double(t, (-vec).attr("x")) == -3);
  CHECK(is_true(t, vec == t.client.fetch("Vec2")(3.0, 4.0)));
  CHECK(is_true(t, vec != one));
  CHECK(t.error_of((vec < one).get()) == ErrorKind::type);
  CHECK(t.error_of((vec + 1).get()) == ErrorKind::type);
  CHECK(t.error_of((1 - vec).get()) == ErrorKind::type);
  CHECK_THAT(t.message_of((vec + 1).get()), Catch::Contains("'Vec2' and 'int64'"));
}

TEST_CASE("user operators T op int64 and int64 op T keep their operand order") {
  bt::Connected t;
  auto money = t.client.fetch("money");  // 123 cents
  CHECK(as_int(t, (money + 7).attr("cents")) == 130);
  CHECK(as_int(t, (7 + money).attr("cents")) == 130);
  CHECK(as_int(t, (money - 3).attr("cents")) == 120);
  CHECK(as_int(t, (2 - money).attr("cents")) == 77);  // the reflected operator means something else
  CHECK(as_int(t, (money + money).attr("cents")) == 246);
  CHECK(as_int(t, (money % 100).attr("cents")) == 23);
  CHECK(t.error_of((money * 2).get()) == ErrorKind::type);
}

TEST_CASE("user comparisons, including through operator<=>") {
  bt::Connected t;
  auto money = t.client.fetch("money");  // 123
  auto cls = t.client.fetch("Money");
  CHECK(is_true(t, money < cls(200)));
  CHECK(is_true(t, money <= cls(123)));
  CHECK_FALSE(is_true(t, money > cls(200)));
  CHECK(is_true(t, money >= cls(100)));
  CHECK(is_true(t, money == cls(123)));
  CHECK(is_true(t, money != cls(1)));
  CHECK(is_true(t, money == 123));
  CHECK(is_true(t, 123 == money));  // reflected, through the rewritten candidate
  CHECK(is_true(t, money != 5));
  CHECK(t.error_of((money < 5).get()) == ErrorKind::type);
}

TEST_CASE("user unary operators, and ! from operator bool when there is no operator!") {
  bt::Connected t;
  auto money = t.client.fetch("money");
  CHECK(as_int(t, (~money).attr("cents")) == -123);
  CHECK_FALSE(is_true(t, !money));
  CHECK(is_true(t, !t.client.fetch("Money")(0)));
  CHECK(t.error_of((-money).get()) == ErrorKind::type);
  auto bits = t.client.fetch("bits");
  CHECK(as_int(t, (~bits).call("value")) == 0xFFFFFFF3);
  CHECK_FALSE(is_true(t, !bits));  // no operator!, no operator bool, no size(): truthy
  auto opaque = t.client.fetch("opaque");
  CHECK_FALSE(is_true(t, !opaque));
  CHECK(t.error_of((-opaque).get()) == ErrorKind::type);
  CHECK(t.error_of((~opaque).get()) == ErrorKind::type);
}

TEST_CASE("user bitwise and shift operators with T and with int64") {
  bt::Connected t;
  auto bits = t.client.fetch("bits");  // 0b1100
  auto cls = t.client.fetch("Bits");
  CHECK(as_int(t, (bits & cls(0b0100)).call("value")) == 0b0100);
  CHECK(as_int(t, (bits | cls(1)).call("value")) == 0b1101);
  CHECK(as_int(t, (bits ^ bits).call("value")) == 0);
  CHECK(as_int(t, (bits & 0b1000).call("value")) == 0b1000);
  CHECK(as_int(t, (bits | 2).call("value")) == 0b1110);
  CHECK(as_int(t, (bits ^ 0b0100).call("value")) == 0b1000);
  CHECK(as_int(t, (bits << 2).call("value")) == 0b110000);
  CHECK(as_int(t, (bits >> 2).call("value")) == 0b11);
  CHECK(as_int(t, 0b1010 & bits) == 0b1000);  // int64 & Bits is a plain int64
  CHECK(t.error_of((1 << bits).get()) == ErrorKind::type);
}

TEST_CASE("a class without operators: + is a type error, == is identity") {
  bt::Connected t;
  auto opaque = t.client.fetch("opaque");
  CHECK(t.error_of((opaque + opaque).get()) == ErrorKind::type);
  CHECK(is_true(t, opaque == t.client.fetch("opaque")));
  CHECK_FALSE(is_true(t, opaque != t.client.fetch("opaque")));
  auto cls = t.client.fetch("Opaque");
  CHECK_FALSE(is_true(t, cls() == cls()));
  CHECK_FALSE(is_true(t, opaque == 1));
}

// ---- str, truthy, items -----------------------------------------------------------------------

TEST_CASE("str comes from an fmt formatter or from operator<<, else a generic form") {
  bt::Connected t;
  CHECK(t.run(t.client.fetch("vec").str()) == "Vec2(3, 4)");
  CHECK(t.run(t.client.fetch("money").str()) == "$1.23");
  CHECK_THAT(t.run(t.client.fetch("opaque").str()), Catch::StartsWith("<Opaque object at "));
  CHECK(t.run(t.client.fetch("Shape").str()) == "<class Shape>");
}

TEST_CASE("truthy follows explicit operator bool, then size(), else true") {
  bt::Connected t;
  CHECK(t.run(t.client.fetch("money").truthy()));
  CHECK_FALSE(t.run(t.client.fetch("Money")(0).truthy()));
  CHECK(t.run(t.client.fetch("row").truthy()));
  CHECK_FALSE(t.run(t.client.fetch("table").truthy()));  // empty
  CHECK(t.run(t.client.fetch("opaque").truthy()));
}

TEST_CASE("item, set_item and len on a sequence with operator[] and size()") {
  bt::Connected t;
  auto row = t.client.fetch("row");  // 1 2 3
  CHECK(as_int(t, row.len()) == 3);
  CHECK(as_int(t, row.item(0)) == 1);
  CHECK(as_int(t, row.item(-1)) == 3);
  CHECK(t.error_of(row.item(3).get()) == ErrorKind::index);
  CHECK(t.error_of(row.item(-4).get()) == ErrorKind::index);
  CHECK_THAT(t.message_of(row.item(3).get()), Catch::Contains("'Row' index 3 out of range for size 3"));
  CHECK(t.error_of(row.item("x").get()) == ErrorKind::type);
  CHECK_THAT(t.message_of(row.item("x").get()), Catch::Contains("must be int64"));
  t.run(row.set_item(1, 20));
  t.run(row.set_item(-1, 30));
  CHECK(t.run(row.attr("cells").as<std::vector<std::int64_t>>()) == std::vector<std::int64_t>{1, 20, 30});
  CHECK(t.error_of(row.set_item(3, 1)) == ErrorKind::index);
  CHECK(t.error_of(row.set_item(0, "x")) == ErrorKind::type);
  CHECK_THAT(t.message_of(row.set_item(0, "x")), Catch::Contains("items of 'Row' expect int64, got text"));
  // The same through a field: the row inside the shape changes.
  auto inner = t.client.fetch("shape").attr("row");
  t.run(inner.set_item(0, 99));
  CHECK(t.run(t.client.fetch("shape").attr("row").attr("cells").as<std::vector<std::int64_t>>()) ==
        std::vector<std::int64_t>{99, 20, 30});
}

TEST_CASE("a const operator[] gives items but no item assignment") {
  bt::Connected t;
  auto frozen = t.client.fetch("frozen");
  CHECK(as_text(t, frozen.item(1)) == "beta");
  CHECK(as_int(t, frozen.len()) == 2);
  CHECK(t.error_of(frozen.set_item(0, "gamma")) == ErrorKind::type);
  CHECK(t.error_of(t.client.fetch("opaque").item(0).get()) == ErrorKind::type);
  CHECK(t.error_of(t.client.fetch("opaque").len().get()) == ErrorKind::type);
}

TEST_CASE("an associative operator[] by text key: missing keys are index errors, set_item inserts") {
  bt::Connected t;
  auto table = t.client.fetch("table");
  CHECK(t.error_of(table.item("a").get()) == ErrorKind::index);
  t.run(table.set_item("a", 1.5));
  t.run(table.set_item("b", 2));
  CHECK(as_double(t, table.item("a")) == 1.5);
  CHECK(as_double(t, table.item("b")) == 2);
  CHECK(as_int(t, table.len()) == 2);
  CHECK(t.error_of(table.item(0).get()) == ErrorKind::type);
  CHECK_THAT(t.message_of(table.item(0).get()), Catch::Contains("must be text"));
  // Reading a missing key did not insert it.
  CHECK(t.error_of(table.item("zz").get()) == ErrorKind::index);
  CHECK(as_int(t, table.len()) == 2);
}

TEST_CASE("items that are registered objects are references into the container") {
  bt::Connected t;
  auto path = t.client.fetch("path");
  t.run(path.item(0).set("x", 10.0));
  CHECK(as_double(t, path.item(0).attr("x")) == 10);
  t.run(path.set_item(1, t.client.fetch("vec")));  // copies the vec into the path
  CHECK(as_double(t, path.item(1).attr("y")) == 4);
  CHECK(t.error_of(path.set_item(1, 5)) == ErrorKind::type);
  // A vector field of registered objects reads as a list of references into it.
  t.run(path.attr("points").item(0).set("y", 6.0));
  CHECK(as_double(t, path.item(0).attr("y")) == 6);
  CHECK(as_int(t, path.attr("points").len()) == 2);
}

TEST_CASE("an object with a registered call operator can be called") {
  bt::Connected t;
  auto counter = t.client.fetch("counter");
  CHECK(as_int(t, counter(5)) == 5);
  CHECK(as_int(t, counter()) == 6);
  CHECK(as_int(t, counter.attr("total")) == 6);
  CHECK(t.error_of(counter("x").get()) == ErrorKind::type);
  CHECK(t.error_of(t.client.fetch("opaque")().get()) == ErrorKind::type);
  CHECK_THAT(t.message_of(t.client.fetch("opaque")().get()), Catch::Contains("not callable"));
}

TEST_CASE("describe lists the members with their kinds, for objects and for classes") {
  bt::Connected t;
  auto d = t.run(t.client.fetch("shape").describe());
  CHECK(d.type_name == "Shape");
  auto kind_of = [&](const std::string& name) {
    for (auto& m : d.members)
      if (m.name == name) return m.kind;
    return std::string("absent");
  };
  CHECK(kind_of("name") == "field");
  CHECK(kind_of("id") == "readonly field");
  CHECK(kind_of("width") == "property");
  CHECK(kind_of("area") == "readonly property");
  CHECK(kind_of("kind") == "method");
  CHECK(kind_of("width_") == "absent");
  auto c = t.run(t.client.fetch("Shape").describe());
  CHECK(c.type_name == "class Shape");
  CHECK(c.members.size() == d.members.size());
}

TEST_CASE("describe gives each field's and property's value kind and each method overload's signature") {
  bt::Connected t;
  auto d = t.run(t.client.fetch("shape").describe());
  auto member = [&](const std::string& name) {
    for (auto& m : d.members)
      if (m.name == name) return m;
    FAIL("no member " << name);
    return remoteable::MemberInfo{};
  };
  CHECK(member("name").type == "text");
  CHECK(member("id").type == "int64");
  CHECK(member("origin").type == "Vec2");
  CHECK(member("tags").type == "list of int64");
  CHECK(member("weights").type == "map of float64");
  CHECK(member("maybe").type == "int64 or none");
  CHECK(member("blob").type == "bytes");
  CHECK(member("shared").type == "Vec2");
  CHECK(member("width").type == "float64");
  CHECK(member("area").type == "float64");
  CHECK(member("perimeter").type == "float64");
  CHECK(member("title").type == "text");
  CHECK(member("name").signatures.empty());
  CHECK(member("kind").type.empty());
  CHECK(member("kind").signatures ==
        std::vector<std::string>{"(float64) -> text", "(int64) -> text", "(text) -> text", "(int64, int64) -> text", "() -> text"});
  CHECK(member("nothing").signatures == std::vector<std::string>{"() -> Vec2 or none"});
  CHECK(member("origin_ref").signatures == std::vector<std::string>{"() -> Vec2"});
  CHECK(member("origin_ptr").signatures == std::vector<std::string>{"() -> Vec2 or none"});
  CHECK(member("center").signatures.size() == 1);
  CHECK(d.signatures.empty());  // an instance is not callable
  // A class: its constructors, as the signatures of calling it.
  auto c = t.run(t.client.fetch("Shape").describe());
  CHECK(c.signatures ==
        std::vector<std::string>{"() -> Shape", "(int64) -> Shape", "(float64, float64) -> Shape", "(text, int64) -> Shape"});
}
