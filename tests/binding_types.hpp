#pragma once
// Types that exercise every form of the binding API, a server that exports them beside the
// walkthrough's, and a connected client. Registration happens before the server starts: the
// registry is read-only once a server uses it.

#include <fmt/format.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support.hpp"

namespace bt {

/// A value type with arithmetic: T op T, T op double and double op T, unary minus, ==, and
/// operator<< for str().
struct Vec2 {
  double x = 0;
  double y = 0;
  Vec2() = default;
  Vec2(double x_, double y_) : x(x_), y(y_) {}

  double norm2() const { return x * x + y * y; }
  Vec2 scaled(double k) const { return {x * k, y * k}; }

  Vec2 operator+(const Vec2& o) const { return {x + o.x, y + o.y}; }
  Vec2 operator-(const Vec2& o) const { return {x - o.x, y - o.y}; }
  Vec2 operator*(double k) const { return {x * k, y * k}; }
  friend Vec2 operator*(double k, const Vec2& v) { return {k * v.x, k * v.y}; }
  Vec2 operator/(double k) const { return {x / k, y / k}; }
  Vec2 operator-() const { return {-x, -y}; }
  bool operator==(const Vec2&) const = default;
  friend std::ostream& operator<<(std::ostream& os, const Vec2& v) { return os << "Vec2(" << v.x << ", " << v.y << ")"; }
};

/// Money in cents: T op int64 (and int64 op T with a different meaning, to tell the orders
/// apart), ordering through <=>, ~ and !, explicit operator bool, and an fmt::formatter.
struct Money {
  std::int64_t cents = 0;
  Money() = default;
  explicit Money(std::int64_t c) : cents(c) {}

  Money operator+(std::int64_t c) const { return Money(cents + c); }
  friend Money operator+(std::int64_t c, const Money& m) { return Money(c + m.cents); }
  Money operator-(std::int64_t c) const { return Money(cents - c); }
  friend Money operator-(std::int64_t c, const Money& m) { return Money(c * 100 - m.cents); }  // whole units minus
  Money operator+(const Money& o) const { return Money(cents + o.cents); }
  Money operator%(std::int64_t c) const { return Money(cents % c); }
  Money operator~() const { return Money(-cents); }
  bool operator!() const { return cents == 0; }
  explicit operator bool() const { return cents != 0; }
  auto operator<=>(const Money&) const = default;
  bool operator==(const Money&) const = default;
  bool operator==(std::int64_t c) const { return cents == c; }
};

}  // namespace bt

/// Formats Money as "$1.23" (str() uses it: Money has no operator<<).
template <>
struct fmt::formatter<bt::Money> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  template <class Context>
  auto format(const bt::Money& m, Context& ctx) const {
    return fmt::format_to(ctx.out(), "${}.{:02}", m.cents / 100, m.cents % 100);
  }
};

namespace bt {

/// Bit sets: & | ^ with Bits and with int64, << and >> with int64, reflected int64 & Bits.
struct Bits {
  std::uint32_t v = 0;
  Bits() = default;
  explicit Bits(std::int64_t x) : v(static_cast<std::uint32_t>(x)) {}
  std::int64_t value() const { return v; }
  Bits operator&(const Bits& o) const { return Bits(v & o.v); }
  Bits operator|(const Bits& o) const { return Bits(v | o.v); }
  Bits operator^(const Bits& o) const { return Bits(v ^ o.v); }
  Bits operator&(std::int64_t o) const { return Bits(v & o); }
  friend std::int64_t operator&(std::int64_t o, const Bits& b) { return o & b.v; }  // reflected: a plain int
  Bits operator|(std::int64_t o) const { return Bits(v | o); }
  Bits operator^(std::int64_t o) const { return Bits(v ^ o); }
  Bits operator<<(std::int64_t n) const { return Bits(static_cast<std::int64_t>(v) << n); }
  Bits operator>>(std::int64_t n) const { return Bits(v >> n); }
  Bits operator~() const { return Bits(~v); }
};

/// A class with no operators at all: + is a type error, == is identity, str is generic.
struct Opaque {
  std::int64_t n = 0;
};

/// A sequence: operator[] by index and size(): item, set_item, len, truthy.
struct Row {
  std::vector<std::int64_t> cells;
  std::int64_t& operator[](std::size_t i) { return cells[i]; }
  std::size_t size() const { return cells.size(); }
};

/// A read-only sequence: a const operator[] only, so no set_item.
struct Frozen {
  std::vector<std::string> words{"alpha", "beta"};
  const std::string& operator[](std::size_t i) const { return words[i]; }
  std::size_t size() const { return words.size(); }
};

/// An associative type: operator[] by text key, contains(), size().
struct Table {
  std::map<std::string, double> entries;
  double& operator[](const std::string& k) { return entries[k]; }
  bool contains(const std::string& k) const { return entries.count(k) != 0; }
  std::size_t size() const { return entries.size(); }
};

/// A sequence of registered objects: items are references into it.
struct Path {
  std::vector<Vec2> points;
  Vec2& operator[](std::size_t i) { return points[i]; }
  std::size_t size() const { return points.size(); }
};

/// A callable object: calling the handle calls operator().
struct Counter {
  std::int64_t total = 0;
  std::int64_t operator()(std::int64_t by) { return total += by; }
  std::int64_t operator()() { return ++total; }
};

/// Every member form: overloaded constructors, fields (plain, const, registered, containers),
/// properties, const and overloaded methods, and results of every shape.
struct Shape {
  Shape() = default;
  explicit Shape(std::int64_t side) : name("square"), width_(static_cast<double>(side)), height_(static_cast<double>(side)) {}
  Shape(double w, double h) : name("rect"), width_(w), height_(h) {}
  Shape(std::string n, std::int64_t side) : name(std::move(n)), width_(static_cast<double>(side)), height_(static_cast<double>(side)) {}

  std::string name = "shape";
  const std::int64_t id = 3;
  Vec2 origin{1, 2};
  const Vec2 anchor{5, 5};
  std::vector<std::int64_t> tags{1, 2, 3};
  std::map<std::string, double> weights{{"a", 0.5}, {"b", 1.5}};
  std::optional<std::int64_t> maybe;
  remoteable::Bytes blob{std::byte{1}, std::byte{2}, std::byte{255}};
  bool visible = true;
  Row row{{10, 20, 30}};
  std::shared_ptr<Vec2> shared = std::make_shared<Vec2>(7, 8);

  double width() const { return width_; }
  void set_width(double w) {
    if (w < 0) throw std::invalid_argument("width must not be negative");
    width_ = w;
  }
  double height() const { return height_; }
  Shape& set_height(std::int64_t h) {
    height_ = static_cast<double>(h);
    return *this;
  }
  double area() const { return width_ * height_; }

  // Overloads by arity and by argument kind.
  std::string kind(std::int64_t) const { return "int64"; }
  std::string kind(double) const { return "float64"; }
  std::string kind(const std::string&) const { return "text"; }
  std::string kind(std::int64_t, std::int64_t) const { return "two"; }
  std::string kind() const { return "none"; }

  // Results of every shape.
  Vec2 center() const { return {width_ / 2, height_ / 2}; }
  Vec2& origin_ref() { return origin; }
  const Vec2& origin_cref() const { return origin; }
  Vec2* origin_ptr() { return &origin; }
  Vec2* nothing() { return nullptr; }
  std::shared_ptr<Vec2> shared_vec() { return shared; }
  std::vector<Vec2> corners() const { return {{0, 0}, {width_, 0}, {width_, height_}, {0, height_}}; }
  std::vector<Vec2*> corner_refs() { return {&origin, shared.get()}; }
  std::map<std::string, Vec2> named() const { return {{"origin", origin}, {"center", center()}}; }
  std::map<std::string, std::shared_ptr<Vec2>> named_shared() { return {{"shared", shared}}; }
  std::optional<Vec2> maybe_center(bool want) const {
    if (want) return center();
    return std::nullopt;
  }
  std::optional<std::int64_t> find_tag(std::int64_t t) const {
    for (auto x : tags)
      if (x == t) return x;
    return std::nullopt;
  }
  const char* label() const { return "label"; }
  remoteable::Bytes bytes() const { return blob; }
  void clear_tags() { tags.clear(); }

  // Arguments of every shape.
  double sum_x(const Vec2& a, Vec2 b, const Vec2* c, std::shared_ptr<Vec2> d) const {
    return a.x + b.x + (c ? c->x : 100) + (d ? d->x : 1000);
  }
  void move_to(Vec2& target, double x) const { target.x = x; }
  std::int64_t total(const std::vector<std::int64_t>& xs) const {
    std::int64_t s = 0;
    for (auto x : xs) s += x;
    return s;
  }
  double weigh(const std::map<std::string, double>& w) const {
    double s = 0;
    for (auto& [k, v] : w) s += v;
    return s;
  }
  std::int64_t or_default(std::optional<std::int64_t> x) const { return x.value_or(-1); }
  std::int64_t small(std::int32_t x) const { return x; }
  std::size_t count_points(const std::vector<Vec2>& ps) const { return ps.size(); }
  std::size_t path_length(const Path& p) const { return p.size(); }

 private:
  double width_ = 2;
  double height_ = 3;
};

inline double hypot2(double a, double b) { return a * a + b * b; }
inline std::int64_t twice(std::int64_t x) { return 2 * x; }
inline std::string twice_text(const std::string& s) { return s + s; }

inline void register_types(remoteable::Registry& types) {
  types.class_<Vec2>("Vec2")
      .constructor<>()
      .constructor<double, double>()
      .field("x", &Vec2::x)
      .field("y", &Vec2::y)
      .method("norm2", &Vec2::norm2)
      .method("scaled", &Vec2::scaled);
  types.class_<Money>("Money").constructor<std::int64_t>().field("cents", &Money::cents);
  types.class_<Bits>("Bits").constructor<std::int64_t>().method("value", &Bits::value);
  types.class_<Opaque>("Opaque").constructor<>().field("n", &Opaque::n);
  types.class_<Row>("Row").field("cells", &Row::cells);
  types.class_<Frozen>("Frozen");
  types.class_<Table>("Table");
  types.class_<Counter>("Counter")
      .field("total", &Counter::total)
      .call_operator(static_cast<std::int64_t (Counter::*)(std::int64_t)>(&Counter::operator()))
      .call_operator(static_cast<std::int64_t (Counter::*)()>(&Counter::operator()));

  using S = Shape;
  types.class_<Shape>("Shape")
      .constructor<>()
      .constructor<std::int64_t>()
      .constructor<double, double>()
      .constructor<std::string, std::int64_t>()
      .field("name", &S::name)
      .field("id", &S::id)
      .field("origin", &S::origin)
      .field("anchor", &S::anchor)
      .field("tags", &S::tags)
      .field("weights", &S::weights)
      .field("maybe", &S::maybe)
      .field("blob", &S::blob)
      .field("visible", &S::visible)
      .field("row", &S::row)
      .field("shared", &S::shared)
      .property("width", &S::width, &S::set_width)
      .property("height", &S::height, &S::set_height)
      .property("area", &S::area)
      .property("perimeter", [](const Shape& s) { return 2 * (s.width() + s.height()); })
      .property("title", [](const Shape& s) { return s.name; }, [](Shape& s, std::string t) { s.name = std::move(t); })
      // float64 before int64 on purpose: an exact kind still wins over a conversion.
      .method("kind", static_cast<std::string (S::*)(double) const>(&S::kind))
      .method("kind", static_cast<std::string (S::*)(std::int64_t) const>(&S::kind))
      .method("kind", static_cast<std::string (S::*)(const std::string&) const>(&S::kind))
      .method("kind", static_cast<std::string (S::*)(std::int64_t, std::int64_t) const>(&S::kind))
      .method("kind", static_cast<std::string (S::*)() const>(&S::kind))
      .method("center", &S::center)
      .method("origin_ref", &S::origin_ref)
      .method("origin_cref", &S::origin_cref)
      .method("origin_ptr", &S::origin_ptr)
      .method("nothing", &S::nothing)
      .method("shared_vec", &S::shared_vec)
      .method("corners", &S::corners)
      .method("corner_refs", &S::corner_refs)
      .method("named", &S::named)
      .method("named_shared", &S::named_shared)
      .method("maybe_center", &S::maybe_center)
      .method("find_tag", &S::find_tag)
      .method("label", &S::label)
      .method("bytes", &S::bytes)
      .method("clear_tags", &S::clear_tags)
      .method("sum_x", &S::sum_x)
      .method("move_to", &S::move_to)
      .method("total", &S::total)
      .method("weigh", &S::weigh)
      .method("or_default", &S::or_default)
      .method("small", &S::small)
      .method("count_points", &S::count_points)
      .method("describe_self", [](const Shape& s, std::int64_t n) { return s.name + "#" + std::to_string(n); })
      .method("path_length", &S::path_length);
  // Registered after Shape, whose path_length takes one: error messages still name it.
  types.class_<Path>("Path").field("points", &Path::points);
}


inline void export_objects(remoteable::Server& server) {
  server.export_object(std::make_shared<Shape>(), "shape");
  server.export_class<Shape>("Shape");
  server.export_class<Vec2>("Vec2");
  server.export_class<Money>("Money");
  server.export_class<Bits>("Bits");
  server.export_class<Opaque>("Opaque");
  server.export_object(std::make_shared<Vec2>(3, 4), "vec");
  server.export_object(std::make_shared<Money>(123), "money");
  server.export_object(std::make_shared<Bits>(0b1100), "bits");
  server.export_object(std::make_shared<Opaque>(), "opaque");
  server.export_object(std::make_shared<Row>(Row{{1, 2, 3}}), "row");
  server.export_object(std::make_shared<Frozen>(), "frozen");
  server.export_object(std::make_shared<Table>(), "table");
  server.export_object(std::make_shared<Path>(Path{{{1, 1}, {2, 2}}}), "path");
  server.export_object(std::make_shared<Counter>(), "counter");
  server.export_function("hypot2", &hypot2);
  server.export_function("twice", remoteable::overloads(&twice, &twice_text));
  server.export_function("join", [](const std::vector<std::string>& parts, const std::string& sep) {
    std::string out;
    for (auto& p : parts) out += (out.empty() ? "" : sep) + p;
    return out;
  });
}

/// The walkthrough's exports and the ones above, on 127.0.0.1 and a free port.
struct Server {
  Server() {
    example::register_node(types);
    register_types(types);
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types);
    example::export_walkthrough(server->server());
    export_objects(server->server());
  }
  remoteable::Endpoint endpoint() const { return {"127.0.0.1", server->port()}; }

  remoteable::Registry types;
  std::optional<remoteable::ThreadedServer> server;
};

/// That server and a client connected to it.
struct Connected : Server {
  explicit Connected(remoteable::ClientOptions options = {}) : client(test::connect(context, endpoint(), options)) {}
  ~Connected() {
    client.close();
    context.restart();
    context.poll();
  }
  template <class T> T run(asio::awaitable<T> aw) { return test::await(context, std::move(aw)); }
  void run(asio::awaitable<void> aw) { test::await(context, std::move(aw)); }
  template <class T> remoteable::ErrorKind error_of(asio::awaitable<T> aw) { return test::error_of(context, std::move(aw)); }
  /// The server's message for a failing awaitable (the test fails if it succeeds).
  template <class T> std::string message_of(asio::awaitable<T> aw) { return test::message_of(context, std::move(aw)); }

  asio::io_context context;
  remoteable::Client client;
};

}  // namespace bt
