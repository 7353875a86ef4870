#include <remoteable/detail/object.hpp>

#include <cxxabi.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <cstdlib>
#include <memory>

#include <remoteable/detail/builtins.hpp>
#include <remoteable/registry.hpp>

namespace remoteable::detail {

void throw_error(ErrorKind kind, std::string message) { throw RemoteError(kind, std::move(message)); }

std::string_view to_string(Member::Kind kind) noexcept {
  switch (kind) {
    case Member::Kind::field: return "field";
    case Member::Kind::readonly_field: return "readonly field";
    case Member::Kind::property: return "property";
    case Member::Kind::readonly_property: return "readonly property";
    case Member::Kind::method: return "method";
  }
  return "member";
}

std::string demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(name, nullptr, nullptr, &status), std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(name);
}

namespace {

const Member& member_of(const Object& self, std::string_view name) {
  auto& members = self.type->members;
  auto it = members.find(name);
  if (it == members.end())
    throw_error(ErrorKind::attribute, "'" + self.type->name + "' has no attribute '" + std::string(name) + "'");
  return it->second;
}

std::string arg_kinds(Args args) {
  std::string s = "(";
  for (auto& a : args) s += builtin::described_kind(a) + ", ";
  if (!args.empty()) s.resize(s.size() - 2);
  return s + ")";
}

}  // namespace

RemoteError to_remote_error(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const RemoteError& e) {
    return e;
  } catch (const std::out_of_range& e) {
    return RemoteError(ErrorKind::index, e.what());
  } catch (const std::invalid_argument& e) {
    return RemoteError(ErrorKind::value, e.what());
  } catch (const std::domain_error& e) {
    return RemoteError(ErrorKind::value, e.what());
  } catch (const std::exception& e) {
    return RemoteError(ErrorKind::user, demangle(typeid(e).name()) + ": " + e.what());
  } catch (...) {
    auto* t = abi::__cxa_current_exception_type();
    return RemoteError(ErrorKind::user, (t ? demangle(t->name()) : std::string("unknown")) + ": (not a std::exception)");
  }
}

namespace ops {

const Overload& select(const Registry& reg, const std::vector<Overload>& overloads, Args args, std::string_view what) {
  const Overload* best = nullptr;
  int best_match = -1;
  for (auto& o : overloads) {
    if (o.arity != args.size()) continue;
    int m = o.match(reg, args);
    if (m >= 0 && (!best || m < best_match)) {
      best = &o;
      best_match = m;
    }
    if (best_match == 0) break;
  }
  if (best) return *best;
  if (overloads.empty()) throw_error(ErrorKind::type, std::string(what) + " cannot be called");
  std::string expected;
  for (auto& o : overloads) expected += (expected.empty() ? "" : " or ") + o.signature(reg);
  throw_error(ErrorKind::type, std::string(what) + " expects " + expected + ", got " + arg_kinds(args));
}

Object attr(Ctx& ctx, const Object& self, std::string_view name) {
  auto& m = member_of(self, name);
  if (m.kind == Member::Kind::method) {
    // A bound method: calling the result calls the method on self.
    auto bound = std::make_shared<builtin::Function>();
    bound->name = self.type->name + "." + std::string(name);
    bound->method = &m;
    for (auto& o : m.overloads) {
      Overload b = o;
      b.invoke = [self, inner = o.invoke](Ctx& c, const Object&, Args a) { return inner(c, self, a); };
      bound->overloads.push_back(std::move(b));
    }
    return Object{bound, &builtin::function_type()};
  }
  return m.get(ctx, self);
}

void set_attr(Ctx& ctx, const Object& self, std::string_view name, const Object& value) {
  auto& m = member_of(self, name);
  if (!m.set)
    throw_error(ErrorKind::attribute, "'" + self.type->name + "." + std::string(name) + "' is a " +
                                          std::string(to_string(m.kind)) + " and cannot be set");
  m.set(ctx, self, value);
}

Object call(Ctx& ctx, const Object& self, std::string_view name, Args args) {
  auto& m = member_of(self, name);
  if (m.kind != Member::Kind::method) return invoke(ctx, m.get(ctx, self), args);
  auto what = "'" + self.type->name + "." + std::string(name) + "'";
  return select(ctx.registry, m.overloads, args, what).invoke(ctx, self, args);
}

Object invoke(Ctx& ctx, const Object& self, Args args) {
  if (self.is(builtin::class_type())) {
    auto& cls = self.as<builtin::ClassObject>();
    return select(ctx.registry, cls.constructors, args, "constructor of '" + cls.type->name + "'").invoke(ctx, self, args);
  }
  if (self.is(builtin::function_type())) {
    auto& fn = self.as<builtin::Function>();
    return select(ctx.registry, fn.overloads, args, "'" + fn.name + "'").invoke(ctx, self, args);
  }
  if (self.type->call.empty()) throw_error(ErrorKind::type, "'" + self.type->name + "' object is not callable");
  return select(ctx.registry, self.type->call, args, "'" + self.type->name + "'").invoke(ctx, self, args);
}

namespace {
bool any_blocking(const std::vector<Overload>& overloads) {
  for (auto& o : overloads)
    if (o.blocking) return true;
  return false;
}
}  // namespace

bool blocking(const Object& self, std::string_view name) {
  if (!self.type) return false;
  auto it = self.type->members.find(name);
  return it != self.type->members.end() && it->second.kind == Member::Kind::method && any_blocking(it->second.overloads);
}

bool blocking(const Object& self) {
  if (!self.type) return false;
  if (self.is(builtin::function_type())) return any_blocking(self.as<builtin::Function>().overloads);
  if (self.is(builtin::class_type())) return any_blocking(self.as<builtin::ClassObject>().constructors);
  return any_blocking(self.type->call);
}

Object item(Ctx& ctx, const Object& self, const Object& key) {
  if (!self.type->item) throw_error(ErrorKind::type, "'" + self.type->name + "' object is not subscriptable");
  return self.type->item(ctx, self, key);
}

void set_item(Ctx& ctx, const Object& self, const Object& key, const Object& value) {
  if (!self.type->set_item)
    throw_error(ErrorKind::type, "'" + self.type->name + "' object does not support item assignment");
  self.type->set_item(ctx, self, key, value);
}

std::unique_ptr<Sequence> iterate(Ctx& ctx, const Object& self) {
  if (!self.type->iterate) throw_error(ErrorKind::type, "'" + self.type->name + "' object is not iterable");
  return self.type->iterate(ctx, self);
}

namespace {
/// Python's bounds of x[start:stop] on a sequence of `n`: [from, to), from <= to.
std::pair<std::size_t, std::size_t> slice_bounds(std::int64_t start, std::int64_t stop, std::size_t size) {
  auto n = static_cast<std::int64_t>(std::min<std::size_t>(size, INT64_MAX));
  auto clamp = [n](std::int64_t i) {
    if (i < 0) i = i < -n ? 0 : i + n;
    return std::min(i, n);
  };
  auto a = clamp(start), b = clamp(stop);
  if (b < a) b = a;
  return {static_cast<std::size_t>(a), static_cast<std::size_t>(b)};
}
}  // namespace

Object slice(Ctx& ctx, const Object& self, std::int64_t start, std::int64_t stop) {
  if (self.is(builtin::text_type())) {
    auto& t = self.as<std::string>();
    auto [a, b] = slice_bounds(start, stop, t.size());
    return builtin::box(t.substr(a, b - a));
  }
  if (self.is(builtin::bytes_type())) {
    auto& t = self.as<Bytes>();
    auto [a, b] = slice_bounds(start, stop, t.size());
    return builtin::box(Bytes(t.begin() + static_cast<std::ptrdiff_t>(a), t.begin() + static_cast<std::ptrdiff_t>(b)));
  }
  if (self.is(builtin::list_type())) {
    auto& l = builtin::items(self);
    auto [a, b] = slice_bounds(start, stop, l.size());
    return builtin::box(builtin::ObjectList(l.begin() + static_cast<std::ptrdiff_t>(a), l.begin() + static_cast<std::ptrdiff_t>(b)));
  }
  if (!self.type->iterate) throw_error(ErrorKind::type, "'" + self.type->name + "' object cannot be sliced");
  // Any other iterable: its elements up to `stop` (a container's from its snapshot, charged as
  // it is taken; a generator's as far as that), then the range of them. Negative indices need
  // the size (len), which a generator has not.
  if ((start < 0 || stop < 0) && !self.type->len)
    throw_error(ErrorKind::value, "'" + self.type->name + "' has no len(): slice it with indices of 0 or more");
  if (start < 0 || stop < 0) {
    auto n = static_cast<std::int64_t>(self.type->len(self));
    if (start < 0) start = std::max<std::int64_t>(start + n, 0);
    if (stop < 0) stop = std::max<std::int64_t>(stop + n, 0);
  }
  ExpansionBudget budget;  // the copy is bounded as get() is
  auto sequence = self.type->iterate(ctx, self);
  builtin::ObjectList all;
  while (static_cast<std::int64_t>(all.size()) < stop) {
    auto e = sequence->next(ctx);
    if (!e) break;
    charge_expansion(sizeof(Plain) + builtin::shape(e).expansion);
    all.push_back(std::move(e));
  }
  auto [a, b] = slice_bounds(start, stop, all.size());
  return builtin::box(builtin::ObjectList(std::make_move_iterator(all.begin() + static_cast<std::ptrdiff_t>(a)),
                                          std::make_move_iterator(all.begin() + static_cast<std::ptrdiff_t>(b))));
}

Object len(Ctx&, const Object& self) {
  if (!self.type->len) throw_error(ErrorKind::type, "object of type '" + self.type->name + "' has no len()");
  auto n = self.type->len(self);
  return builtin::box(static_cast<std::int64_t>(n));
}

Object binary(Ctx& ctx, BinaryOp op, const Object& self, const Object& other, bool reflected) {
  const Object& lhs = reflected ? other : self;
  const Object& rhs = reflected ? self : other;
  if (auto r = builtin::binary(op, lhs, rhs)) return *r;
  if (lhs.type->binary)
    if (auto r = lhs.type->binary(ctx, op, lhs, rhs, false)) return r;
  if (rhs.type->binary && rhs.type != lhs.type)
    if (auto r = rhs.type->binary(ctx, op, rhs, lhs, true)) return r;
  if (op == BinaryOp::eq || op == BinaryOp::ne) {
    // No operator== anywhere: identity (DESIGN §2).
    bool same = lhs.type == rhs.type && lhs.ptr.get() == rhs.ptr.get();
    return builtin::box(op == BinaryOp::eq ? same : !same);
  }
  throw_error(ErrorKind::type, "unsupported operand types for " + std::string(spelling(op)) + ": '" +
                                   std::string(builtin::type_name(lhs)) + "' and '" +
                                   std::string(builtin::type_name(rhs)) + "'");
}

Object unary(Ctx& ctx, UnaryOp op, const Object& self) {
  if (op == UnaryOp::logical_not && !self.type->unary) return builtin::box(!truthy(self));
  if (self.type->unary)
    if (auto r = self.type->unary(ctx, op, self)) return r;
  if (op == UnaryOp::logical_not) return builtin::box(!truthy(self));
  throw_error(ErrorKind::type, "bad operand type for unary " + std::string(spelling(op)) + ": '" +
                                   self.type->name + "'");
}

namespace {
thread_local std::size_t* expansion_left = nullptr;
}  // namespace

// GCC 12 at -O2, inlining this into a function with a local budget, warns that the local's
// address is stored in a thread_local: it is, for the budget's lifetime only (the destructor
// clears it).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
ExpansionBudget::ExpansionBudget() noexcept : owner_(expansion_left == nullptr) {
  if (owner_) expansion_left = &left_;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
ExpansionBudget::~ExpansionBudget() {
  if (owner_) expansion_left = nullptr;
}

void expansion_error() {
  throw_error(ErrorKind::value, "the value is too large to convert: it expands to more than " +
                                    std::to_string(max_expansion >> 20) + " MiB (limit max_expansion)");
}

void charge_expansion(std::uint64_t bytes) {
  if (expansion_left == nullptr) return;  // outside any expansion: nothing to bound
  if (bytes > *expansion_left) expansion_error();
  *expansion_left -= static_cast<std::size_t>(bytes);
}

Plain get(const Object& self) {
  bool outermost = expansion_left == nullptr;
  ExpansionBudget budget;
  // Charged once, for everything the value expands to (its shape knows), before anything is
  // made; the elements' get() calls below charge nothing more.
  if (outermost) charge_expansion(sizeof(Plain) + builtin::shape(self).expansion);
  if (self.type->to_plain) return self.type->to_plain(self);
  return Plain(self);  // stays remote: travels back as a handle
}

std::string str(const Object& self) {
  ExpansionBudget budget;
  if (self.type->str) return self.type->str(self);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", self.ptr.get());
  return "<" + self.type->name + " object at " + buf + ">";
}

bool truthy(const Object& self) {
  if (self.type->truthy) return self.type->truthy(self);
  if (self.type->len) return self.type->len(self) != 0;
  return true;
}

namespace {
std::string described(const Registry& reg, const Overload& o) {
  return o.signature(reg) + " -> " + (o.result ? o.result(reg) : std::string("value"));
}
std::vector<std::string> described(const Registry& reg, const std::vector<Overload>& overloads) {
  std::vector<std::string> out;
  out.reserve(overloads.size());
  for (auto& o : overloads) out.push_back(described(reg, o));
  return out;
}
}  // namespace

Description describe(const Registry& reg, const Object& self) {
  Description d;
  d.type_name = self.type->name;
  const TypeInfo* members = self.type;
  if (self.is(builtin::class_type())) {
    // A class describes what its instances offer, and its constructors.
    auto& cls = self.as<builtin::ClassObject>();
    members = cls.type;
    d.type_name = "class " + members->name;
    d.signatures = described(reg, cls.constructors);
  } else if (self.is(builtin::function_type())) {
    d.signatures = described(reg, self.as<builtin::Function>().overloads);
  } else {
    d.signatures = described(reg, self.type->call);
  }
  for (auto& [name, m] : members->members) {
    MemberInfo info{name, std::string(to_string(m.kind))};
    if (m.kind == Member::Kind::method) info.signatures = described(reg, m.overloads);
    else info.type = m.value_kind ? m.value_kind(reg) : std::string("value");
    d.members.push_back(std::move(info));
  }
  return d;
}

}  // namespace ops
}  // namespace remoteable::detail
