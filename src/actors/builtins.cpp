#include <remoteable/detail/builtins.hpp>
#include <remoteable/handle.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

namespace remoteable::detail::builtin {
namespace {

/// The boxes behind list and map objects: the elements and their shape, computed once.
struct ListBox {
  ObjectList items;
  Shape shape;
};
struct MapBox {
  ObjectMap entries;
  Shape shape;
};

/// What get() makes of one list element or map entry besides the element's own expansion.
constexpr std::uint64_t element_bytes = sizeof(Plain);
constexpr std::uint64_t entry_bytes = sizeof(Plain) + sizeof(std::string) + 4 * sizeof(void*);

std::uint64_t add_capped(std::uint64_t a, std::uint64_t b) {
  // Both are at most max_shape_bytes (2^62): the sum cannot overflow.
  return std::min(a + b, max_shape_bytes);
}

/// A container's shape from its elements' shapes: one level, never deeper.
void add_element(Shape& s, const Object& e, std::uint64_t own_bytes) {
  auto c = shape(e);
  s.depth = std::max(s.depth, c.depth + 1);
  s.plain = s.plain && c.plain;
  s.expansion = add_capped(s.expansion, add_capped(own_bytes, c.expansion));
}
Shape list_shape(const ObjectList& l) {
  Shape s{1, true, 0};
  for (auto& e : l) add_element(s, e, element_bytes);
  return s;
}
Shape map_shape(const ObjectMap& m) {
  Shape s{1, true, 0};
  for (auto& [k, e] : m) add_element(s, e, entry_bytes + k.size());
  return s;
}

std::string format_double(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  std::string s(buf, end);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string repr(const Object& o) {
  if (!o.is(text_type())) return ops::str(o);
  ops::charge_expansion(2 * o.as<std::string>().size() + 2);  // each character may be escaped
  return quote(o.as<std::string>());
}

/// One element of a list's or map's str(): its visit is charged before it is made, what it made
/// (a user object's str() can be anything) right after.
void append_repr(std::string& out, const Object& e) {
  ops::charge_expansion(element_bytes);
  auto piece = repr(e);
  ops::charge_expansion(piece.size());
  out += piece;
  out += ", ";
}

TypeInfo make_type(std::string name) {
  TypeInfo t;
  t.name = std::move(name);
  return t;
}

// get() is charged once, for the whole expansion (the shape), before anything is made.
Plain list_to_plain(const Object& self) {
  Plain::List out;
  out.reserve(items(self).size());
  for (auto& e : items(self)) out.push_back(ops::get(e));
  return out;
}
Plain map_to_plain(const Object& self) {
  Plain::Map out;
  for (auto& [k, e] : entries(self)) out.emplace_hint(out.end(), k, ops::get(e));
  return out;
}

std::int64_t index_of(const Object& self, const Object& key, std::size_t size) {
  auto kind = std::string(type_name(self));
  if (!key.is(int64_type())) throw_error(ErrorKind::type, kind + " index must be int64, got " + std::string(type_name(key)));
  auto i = key.as<std::int64_t>();
  auto n = static_cast<std::int64_t>(size);
  if (i < 0) i += n;
  if (i < 0 || i >= n)
    throw_error(ErrorKind::index, kind + " index " + std::to_string(key.as<std::int64_t>()) + " out of range for size " + std::to_string(n));
  return i;
}

/// The iteration of a list, or of a snapshot: the elements in order. A list is immutable, so
/// holding it is the snapshot.
struct ListSequence final : Sequence {
  explicit ListSequence(Object list) : list(std::move(list)) {}
  Object next(Ctx&) override {
    auto& l = items(list);
    return i < l.size() ? l[i++] : Object{};
  }
  Object list;
  std::size_t i = 0;
};
struct KeySequence final : Sequence {
  explicit KeySequence(Object map) : map(std::move(map)), at(entries(this->map).begin()) {}
  Object next(Ctx&) override {
    if (at == entries(map).end()) return Object{};
    return box((at++)->first);
  }
  Object map;
  ObjectMap::const_iterator at;
};
struct GeneratorSequence final : Sequence {
  explicit GeneratorSequence(std::function<Object(Ctx&)> next) : resume(std::move(next)) {}
  Object next(Ctx& ctx) override {
    if (!resume) return Object{};
    auto e = resume(ctx);
    if (!e) resume = nullptr;  // ended: its frame goes now
    return e;
  }
  std::function<Object(Ctx&)> resume;
};

const TypeInfo& make_list_type() {
  static TypeInfo t = [] {
    TypeInfo t = make_type("list");
    t.to_plain = list_to_plain;
    t.len = [](const Object& s) { return items(s).size(); };
    t.truthy = [](const Object& s) { return !items(s).empty(); };
    t.str = [](const Object& s) {
      std::string out = "[";
      for (auto& e : items(s)) append_repr(out, e);
      if (out.size() > 1) out.resize(out.size() - 2);
      return out + "]";
    };
    t.item = [](Ctx&, const Object& s, const Object& key) {
      auto& l = items(s);
      return l[index_of(s, key, l.size())];
    };
    // A list is immutable: its iteration reads it in place.
    t.iterate = [](Ctx&, const Object& s) -> std::unique_ptr<Sequence> { return std::make_unique<ListSequence>(s); };
    return t;
  }();
  return t;
}

const TypeInfo& make_map_type() {
  static TypeInfo t = [] {
    TypeInfo t = make_type("map");
    t.to_plain = map_to_plain;
    t.len = [](const Object& s) { return entries(s).size(); };
    t.truthy = [](const Object& s) { return !entries(s).empty(); };
    t.str = [](const Object& s) {
      std::string out = "{";
      for (auto& [k, e] : entries(s)) {
        ops::charge_expansion(2 * k.size() + 4);
        out += quote(k) + ": ";
        append_repr(out, e);
      }
      if (out.size() > 1) out.resize(out.size() - 2);
      return out + "}";
    };
    t.item = [](Ctx&, const Object& s, const Object& key) {
      if (!key.is(text_type())) throw_error(ErrorKind::type, "map key must be text, got " + std::string(type_name(key)));
      auto& m = entries(s);
      auto it = m.find(key.as<std::string>());
      if (it == m.end()) throw_error(ErrorKind::index, "no key " + quote(key.as<std::string>()));
      return it->second;
    };
    // Its keys, in order, as Python iterates a dict (immutable: read in place).
    t.iterate = [](Ctx&, const Object& s) -> std::unique_ptr<Sequence> { return std::make_unique<KeySequence>(s); };
    return t;
  }();
  return t;
}

// ---- arithmetic -------------------------------------------------------------------------------

[[noreturn]] void overflow(BinaryOp op) {
  throw_error(ErrorKind::value, "integer overflow in " + std::string(spelling(op)));
}

/// Refuses a `+` of text, bytes or lists whose result would be longer than `limit`.
void check_joined(std::size_t a, std::size_t b, std::size_t limit, std::string_view unit) {
  if (a + b > limit)
    throw_error(ErrorKind::value, "+ would make " + std::to_string(a + b) + " " + std::string(unit) + ", over the limit of " +
                                      std::to_string(limit));
}

std::optional<Object> int_op(BinaryOp op, std::int64_t a, std::int64_t b) {
  std::int64_t r = 0;
  switch (op) {
    case BinaryOp::add: if (__builtin_add_overflow(a, b, &r)) overflow(op); return box(r);
    case BinaryOp::sub: if (__builtin_sub_overflow(a, b, &r)) overflow(op); return box(r);
    case BinaryOp::mul: if (__builtin_mul_overflow(a, b, &r)) overflow(op); return box(r);
    case BinaryOp::div:
    case BinaryOp::mod:
      if (b == 0) throw_error(ErrorKind::value, "integer division by zero");
      if (a == std::numeric_limits<std::int64_t>::min() && b == -1) overflow(op);
      return box(op == BinaryOp::div ? a / b : a % b);
    case BinaryOp::bit_and: return box(a & b);
    case BinaryOp::bit_or: return box(a | b);
    case BinaryOp::bit_xor: return box(a ^ b);
    case BinaryOp::shl:
    case BinaryOp::shr:
      if (b < 0 || b > 63) throw_error(ErrorKind::value, "shift count " + std::to_string(b) + " out of range 0..63");
      if (op == BinaryOp::shr) return box(a >> b);
      r = static_cast<std::int64_t>(static_cast<std::uint64_t>(a) << b);
      if ((r >> b) != a) overflow(op);
      return box(r);
    case BinaryOp::eq: return box(a == b);
    case BinaryOp::ne: return box(a != b);
    case BinaryOp::lt: return box(a < b);
    case BinaryOp::le: return box(a <= b);
    case BinaryOp::gt: return box(a > b);
    case BinaryOp::ge: return box(a >= b);
  }
  return std::nullopt;
}

std::optional<Object> float_op(BinaryOp op, double a, double b) {
  switch (op) {
    case BinaryOp::add: return box(a + b);
    case BinaryOp::sub: return box(a - b);
    case BinaryOp::mul: return box(a * b);
    case BinaryOp::div: return box(a / b);  // IEEE: ±inf or nan, as in C++
    case BinaryOp::mod: return box(std::fmod(a, b));
    case BinaryOp::eq: return box(a == b);
    case BinaryOp::ne: return box(a != b);
    case BinaryOp::lt: return box(a < b);
    case BinaryOp::le: return box(a <= b);
    case BinaryOp::gt: return box(a > b);
    case BinaryOp::ge: return box(a >= b);
    default: return std::nullopt;
  }
}

template <class T>
std::optional<Object> ordered_op(BinaryOp op, const T& a, const T& b) {
  switch (op) {
    case BinaryOp::eq: return box(a == b);
    case BinaryOp::ne: return box(a != b);
    case BinaryOp::lt: return box(a < b);
    case BinaryOp::le: return box(a <= b);
    case BinaryOp::gt: return box(a > b);
    case BinaryOp::ge: return box(a >= b);
    case BinaryOp::add: {
      check_joined(a.size(), b.size(), max_joined_bytes, "bytes");
      T joined(a);
      joined.insert(joined.end(), b.begin(), b.end());
      return box(std::move(joined));
    }
    default: return std::nullopt;
  }
}

bool is_number(const Object& o) {
  return o.is(int64_type()) || o.is(float64_type()) || o.is(bool_type());
}
std::int64_t as_int(const Object& o) {
  return o.is(bool_type()) ? (o.as<bool>() ? 1 : 0) : o.as<std::int64_t>();
}
double as_float(const Object& o) {
  return o.is(float64_type()) ? o.as<double>() : static_cast<double>(as_int(o));
}

bool plain_equal(const Object& a, const Object& b);

// Comparing walks both values as far as they are equal: each element pair is charged like an
// element of get(), so two large values that share their parts cost at most one expansion.
bool list_equal(const ObjectList& a, const ObjectList& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    ops::charge_expansion(element_bytes);
    if (!plain_equal(a[i], b[i])) return false;
  }
  return true;
}

bool map_equal(const ObjectMap& l, const ObjectMap& r) {
  if (l.size() != r.size()) return false;
  for (auto li = l.begin(), ri = r.begin(); li != l.end(); ++li, ++ri) {
    ops::charge_expansion(entry_bytes);
    if (li->first != ri->first || !plain_equal(li->second, ri->second)) return false;
  }
  return true;
}

bool plain_equal(const Object& a, const Object& b) {
  if (a.ptr == b.ptr && a.type == b.type) return true;
  if (auto r = binary(BinaryOp::eq, a, b)) return r->as<bool>();
  return false;
}

}  // namespace

const TypeInfo& none_type() {
  static TypeInfo t = [] {
    TypeInfo t = make_type("none");
    t.to_plain = [](const Object&) { return Plain(None{}); };
    t.str = [](const Object&) { return std::string("none"); };
    t.truthy = [](const Object&) { return false; };
    return t;
  }();
  return t;
}
const TypeInfo& bool_type() {
  static TypeInfo t = [] {
    TypeInfo t = make_type("bool");
    t.to_plain = [](const Object& o) { return Plain(o.as<bool>()); };
    t.str = [](const Object& o) { return std::string(o.as<bool>() ? "true" : "false"); };
    t.truthy = [](const Object& o) { return o.as<bool>(); };
    t.unary = [](Ctx&, UnaryOp op, const Object& o) {
      bool v = o.as<bool>();
      if (op == UnaryOp::logical_not) return box(!v);
      if (op == UnaryOp::neg) return box(std::int64_t{-static_cast<int>(v)});
      return box(std::int64_t{~static_cast<std::int64_t>(v)});
    };
    return t;
  }();
  return t;
}
const TypeInfo& int64_type() {
  static TypeInfo t = [] {
    TypeInfo t = make_type("int64");
    t.to_plain = [](const Object& o) { return Plain(o.as<std::int64_t>()); };
    t.str = [](const Object& o) { return std::to_string(o.as<std::int64_t>()); };
    t.truthy = [](const Object& o) { return o.as<std::int64_t>() != 0; };
    t.unary = [](Ctx&, UnaryOp op, const Object& o) {
      auto v = o.as<std::int64_t>();
      switch (op) {
        case UnaryOp::neg:
          if (v == std::numeric_limits<std::int64_t>::min()) throw_error(ErrorKind::value, "integer overflow in negation");
          return box(-v);
        case UnaryOp::invert: return box(~v);
        case UnaryOp::logical_not: return box(v == 0);
      }
      return Object{};
    };
    return t;
  }();
  return t;
}
const TypeInfo& float64_type() {
  static TypeInfo t = [] {
    TypeInfo t = make_type("float64");
    t.to_plain = [](const Object& o) { return Plain(o.as<double>()); };
    t.str = [](const Object& o) { return format_double(o.as<double>()); };
    t.truthy = [](const Object& o) { return o.as<double>() != 0.0; };
    t.unary = [](Ctx&, UnaryOp op, const Object& o) {
      auto v = o.as<double>();
      if (op == UnaryOp::neg) return box(-v);
      if (op == UnaryOp::logical_not) return box(v == 0.0);
      return Object{};
    };
    return t;
  }();
  return t;
}
const TypeInfo& text_type() {
  static TypeInfo t = [] {
    TypeInfo t = make_type("text");
    t.to_plain = [](const Object& o) { return Plain(o.as<std::string>()); };
    t.str = [](const Object& o) {
      ops::charge_expansion(o.as<std::string>().size());
      return o.as<std::string>();
    };
    t.truthy = [](const Object& o) { return !o.as<std::string>().empty(); };
    t.len = [](const Object& o) { return o.as<std::string>().size(); };
    t.item = [](Ctx&, const Object& s, const Object& key) {
      auto& str = s.as<std::string>();
      return box(std::string(1, str[static_cast<std::size_t>(index_of(s, key, str.size()))]));
    };
    return t;
  }();
  return t;
}
const TypeInfo& bytes_type() {
  static TypeInfo t = [] {
    TypeInfo t = make_type("bytes");
    t.to_plain = [](const Object& o) { return Plain(o.as<Bytes>()); };
    t.str = [](const Object& o) {
      ops::charge_expansion(4 * o.as<Bytes>().size() + 3);  // each byte may become \xNN
      std::string out = "b'";
      for (auto b : o.as<Bytes>()) {
        auto c = static_cast<unsigned char>(b);
        if (c >= 32 && c < 127 && c != '\'' && c != '\\') out += static_cast<char>(c);
        else {
          const char* hex = "0123456789abcdef";
          out += "\\x";
          out += hex[c >> 4];
          out += hex[c & 15];
        }
      }
      return out + "'";
    };
    t.truthy = [](const Object& o) { return !o.as<Bytes>().empty(); };
    t.len = [](const Object& o) { return o.as<Bytes>().size(); };
    t.item = [](Ctx&, const Object& s, const Object& key) {
      auto& bytes = s.as<Bytes>();
      auto b = bytes[static_cast<std::size_t>(index_of(s, key, bytes.size()))];
      return box(static_cast<std::int64_t>(std::to_integer<unsigned char>(b)));
    };
    return t;
  }();
  return t;
}
const TypeInfo& list_type() { return make_list_type(); }
const TypeInfo& map_type() { return make_map_type(); }
const TypeInfo& class_type() {
  static TypeInfo t = [] {
    TypeInfo t = make_type("class");
    t.str = [](const Object& o) { return "<class " + o.as<ClassObject>().type->name + ">"; };
    t.truthy = [](const Object&) { return true; };
    return t;
  }();
  return t;
}
const TypeInfo& function_type() {
  static TypeInfo t = [] {
    TypeInfo t = make_type("function");
    t.str = [](const Object& o) { return "<function " + o.as<Function>().name + ">"; };
    t.truthy = [](const Object&) { return true; };
    return t;
  }();
  return t;
}

const TypeInfo& remote_type() {
  static TypeInfo t = [] {
    TypeInfo t = make_type("handle");
    t.str = [](const Object&) { return std::string("<handle to a peer's object>"); };
    t.truthy = [](const Object&) { return true; };
    return t;
  }();
  return t;
}
Object remote(Handle handle) { return Object{std::make_shared<Handle>(std::move(handle)), &remote_type()}; }
const Handle& remote_handle(const Object& o) noexcept { return o.as<Handle>(); }

const TypeInfo& generator_type() {
  static TypeInfo t = [] {
    TypeInfo t = make_type("generator");
    t.truthy = [](const Object&) { return true; };
    // The first iteration takes the generator (its frame goes with that iteration); a second
    // one has nothing left to read.
    t.iterate = [](Ctx&, const Object& s) -> std::unique_ptr<Sequence> {
      auto& g = s.as<GeneratorBox>();
      if (g.taken) throw_error(ErrorKind::value, "this generator has been iterated already");
      g.taken = true;
      return std::make_unique<GeneratorSequence>(std::move(g.next));
    };
    return t;
  }();
  return t;
}
Object generator(std::function<Object(Ctx&)> next) {
  return Object{std::make_shared<GeneratorBox>(GeneratorBox{std::move(next), false}), &generator_type()};
}

std::unique_ptr<Sequence> snapshot(ObjectList elements, std::size_t bytes) {
  auto s = std::make_unique<ListSequence>(box(std::move(elements)));
  s->held_bytes = bytes;
  return s;
}

const TypeInfo& pending_type() {
  static TypeInfo t = make_type("pending");
  return t;
}
Object pending(asio::awaitable<Object> run) {
  return Object{std::make_shared<Pending>(Pending{std::move(run), nullptr}), &pending_type()};
}

Object none() {
  static const std::shared_ptr<void> sentinel = std::make_shared<None>();
  return Object{sentinel, &none_type()};
}
Object box(bool v) { return Object{std::make_shared<bool>(v), &bool_type()}; }
Object box(std::int64_t v) { return Object{std::make_shared<std::int64_t>(v), &int64_type()}; }
Object box(double v) { return Object{std::make_shared<double>(v), &float64_type()}; }
Object box(std::string v) { return Object{std::make_shared<std::string>(std::move(v)), &text_type()}; }
Object box(Bytes v) { return Object{std::make_shared<Bytes>(std::move(v)), &bytes_type()}; }
Object box(ObjectList v) {
  auto b = std::make_shared<ListBox>();
  b->items = std::move(v);  // moving a vector keeps its elements in place
  b->shape = list_shape(b->items);
  return Object{std::move(b), &list_type()};
}
Object box(ObjectMap v) {
  auto b = std::make_shared<MapBox>();
  b->entries = std::move(v);  // map nodes stay in place
  b->shape = map_shape(b->entries);
  return Object{std::move(b), &map_type()};
}

Shape shape(const Object& o) noexcept {
  if (o.is(list_type())) return o.as<ListBox>().shape;
  if (o.is(map_type())) return o.as<MapBox>().shape;
  if (o.is(text_type())) return Shape{0, true, o.as<std::string>().size()};
  if (o.is(bytes_type())) return Shape{0, true, o.as<Bytes>().size()};
  if (o.is(none_type()) || o.is(bool_type()) || o.is(int64_type()) || o.is(float64_type())) return Shape{};
  return Shape{0, false, 0};
}

const ObjectList& items(const Object& list) noexcept { return list.as<ListBox>().items; }
const ObjectMap& entries(const Object& map) noexcept { return map.as<MapBox>().entries; }

void reshape(const Object& container) noexcept {
  if (container.is(list_type())) {
    auto& b = container.as<ListBox>();
    b.shape = list_shape(b.items);
  } else if (container.is(map_type())) {
    auto& b = container.as<MapBox>();
    b.shape = map_shape(b.entries);
  }
}

Object box(const Plain& v) {
  return std::visit(
      [](const auto& x) -> Object {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::same_as<X, None>) return none();
        else if constexpr (std::same_as<X, Plain::List>) {
          ObjectList out;
          out.reserve(x.size());
          for (auto& e : x) out.push_back(box(e));
          return box(std::move(out));
        } else if constexpr (std::same_as<X, Plain::Map>) {
          ObjectMap out;
          for (auto& [k, e] : x) out.emplace(k, box(e));
          return box(std::move(out));
        } else if constexpr (std::same_as<X, Object>) return x;
        else return box(X(x));
      },
      v.storage());
}

bool is_plain(const Object& o) noexcept { return shape(o).plain; }

std::string_view type_name(const Object& o) noexcept {
  return o.type ? std::string_view(o.type->name) : std::string_view("nothing");
}

std::string described_kind(const Object& o) {
  bool list = o.is(list_type());
  if (!list && !o.is(map_type())) return std::string(type_name(o));
  // The distinct kinds of the first elements (a bounded look: this names a value in a message).
  constexpr std::size_t looked_at = 1000, named = 3;
  std::vector<std::string_view> kinds;
  std::size_t seen = 0, size = 0;
  bool more_kinds = false;
  auto note = [&](const Object& e) {
    auto k = type_name(e);
    if (std::find(kinds.begin(), kinds.end(), k) != kinds.end()) return;
    if (kinds.size() < named) kinds.push_back(k);
    else more_kinds = true;
  };
  if (list) {
    auto& l = items(o);
    size = l.size();
    for (auto& e : l) {
      if (seen++ == looked_at) break;
      note(e);
    }
  } else {
    auto& m = entries(o);
    size = m.size();
    for (auto& [k, v] : m) {
      if (seen++ == looked_at) break;
      note(v);
    }
  }
  std::string out = list ? "list" : "map";
  if (size == 0) return "empty " + out;
  out += " of ";
  for (std::size_t i = 0; i < kinds.size(); ++i) out += (i ? (i + 1 == kinds.size() && !more_kinds ? " and " : ", ") : "") + std::string(kinds[i]);
  if (more_kinds) out += ", ...";
  return out;
}

std::optional<Object> binary(BinaryOp op, const Object& a, const Object& b) {
  if (is_number(a) && is_number(b)) {
    if (a.is(float64_type()) || b.is(float64_type())) return float_op(op, as_float(a), as_float(b));
    return int_op(op, as_int(a), as_int(b));
  }
  if (a.is(text_type()) && b.is(text_type())) return ordered_op(op, a.as<std::string>(), b.as<std::string>());
  if (a.is(bytes_type()) && b.is(bytes_type())) return ordered_op(op, a.as<Bytes>(), b.as<Bytes>());
  if (a.is(list_type()) && b.is(list_type())) {
    auto& l = items(a);
    auto& r = items(b);
    if (op == BinaryOp::add) {
      check_joined(l.size(), r.size(), max_joined_elements, "elements");
      ObjectList out(l);
      out.insert(out.end(), r.begin(), r.end());
      return box(std::move(out));
    }
    if (op != BinaryOp::eq && op != BinaryOp::ne) return std::nullopt;
    ops::ExpansionBudget budget;
    bool eq = list_equal(l, r);
    return box(op == BinaryOp::eq ? eq : !eq);
  }
  if (a.is(map_type()) && b.is(map_type()) && (op == BinaryOp::eq || op == BinaryOp::ne)) {
    ops::ExpansionBudget budget;
    bool eq = map_equal(entries(a), entries(b));
    return box(op == BinaryOp::eq ? eq : !eq);
  }
  if (a.is(none_type()) || b.is(none_type())) {
    if (op == BinaryOp::eq) return box(a.type == b.type);
    if (op == BinaryOp::ne) return box(a.type != b.type);
  }
  return std::nullopt;
}

}  // namespace remoteable::detail::builtin
