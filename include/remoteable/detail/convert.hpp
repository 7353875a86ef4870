#pragma once
// Conversions between C++ values and server-side Objects, used by the binding templates.
//
// Arguments: ArgConv<D>::match rates how well an Object's kind fits without converting it (-1:
// not at all, 0: exactly, 1: with a conversion such as int64 to float64); from() converts;
// pass<P>() hands the converted value to a parameter of type P.
// Results: to_object() boxes plain values by copy and turns registered classes into references:
// by value → a new object; shared_ptr → that object; reference or pointer → the live object,
// kept alive through its owner (aliasing shared_ptr) or its own shared_from_this().

#include <concepts>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeindex>

#include <asio/awaitable.hpp>

#include <remoteable/detail/bindable.hpp>
#include <remoteable/detail/builtins.hpp>
#include <remoteable/detail/object.hpp>
#include <remoteable/detail/std_types.hpp>
#include <remoteable/handle.hpp>

namespace remoteable {

class Registry;

namespace detail {

template <class T>
concept shares_from_this = requires(T& t) {
  { t.weak_from_this().lock() } -> std::convertible_to<std::shared_ptr<const void>>;
};

// Registry access, defined in registry.hpp once Registry is complete.
const TypeInfo* registry_find(const Registry& r, std::type_index t) noexcept;
const TypeInfo& registry_info(const Registry& r, std::type_index t, std::string_view cpp_name);

template <class U>
const TypeInfo& info_of(const Registry& r) {
  return registry_info(r, typeid(U), typeid(U).name());
}

/// An enum bound with Registry::enum_: the text of each value.
struct EnumInfo {
  std::string name;
  std::map<std::string, std::int64_t, std::less<>> by_name;
  std::map<std::int64_t, std::string> by_value;
  /// "Color {red, green, blue}" (at most 10 names), for describe() and messages.
  std::string kind() const;
};
const EnumInfo* registry_enum(const Registry& r, std::type_index t) noexcept;
template <class E>
const EnumInfo& enum_of(const Registry& r) {
  if (auto* e = registry_enum(r, typeid(E))) return *e;
  throw_error(ErrorKind::type, "C++ enum " + demangle(typeid(E).name()) + " is not bound (Registry::enum_)");
}
template <class E>
constexpr std::int64_t enum_number(E e) noexcept {
  return static_cast<std::int64_t>(static_cast<std::underlying_type_t<E>>(e));
}

/// How a parameter of type P is named in messages (defined in registry.hpp).
template <class P> std::string kind_name(const Registry& r);

/// Combines two match ratings: the worse one wins, and -1 (no match) beats everything.
constexpr int worse(int a, int b) noexcept { return (a < 0 || b < 0) ? -1 : (a > b ? a : b); }

template <class D> struct ArgConv;

template <class D>
  requires std::same_as<D, Object>
struct ArgConv<D> {
  using Held = Object;
  static constexpr std::string_view kind = "any";
  static int match(const Registry&, const Object&) { return 0; }
  static Held from(const Registry&, const Object& o) { return o; }
  template <class P> static P pass(Held& h) { return h; }
};

template <>
struct ArgConv<bool> {
  using Held = bool;
  static constexpr std::string_view kind = "bool";
  static int match(const Registry&, const Object& o) { return o.is(builtin::bool_type()) ? 0 : -1; }
  static Held from(const Registry&, const Object& o) { return o.as<bool>(); }
  template <class P> static P pass(Held& h) { return h; }
};

template <plain_integer D>
struct ArgConv<D> {
  using Held = D;
  static constexpr std::string_view kind = "int64";
  static int match(const Registry&, const Object& o) { return o.is(builtin::int64_type()) ? 0 : -1; }
  static Held from(const Registry&, const Object& o) {
    auto v = o.as<std::int64_t>();
    if (!std::in_range<D>(v)) throw_error(ErrorKind::value, std::to_string(v) + " is out of range for the parameter");
    return static_cast<D>(v);
  }
  template <class P> static P pass(Held& h) { return h; }
};

template <std::floating_point D>
struct ArgConv<D> {
  using Held = D;
  static constexpr std::string_view kind = "float64";
  static int match(const Registry&, const Object& o) {
    return o.is(builtin::float64_type()) ? 0 : o.is(builtin::int64_type()) ? 1 : -1;
  }
  static Held from(const Registry&, const Object& o) {
    return o.is(builtin::float64_type()) ? static_cast<D>(o.as<double>()) : static_cast<D>(o.as<std::int64_t>());
  }
  template <class P> static P pass(Held& h) { return h; }
};

template <>
struct ArgConv<std::string> {
  using Held = std::string;  // pass() hands out references into this, so it must own the text
  static constexpr std::string_view kind = "text";
  static int match(const Registry&, const Object& o) { return o.is(builtin::text_type()) ? 0 : -1; }
  static Held from(const Registry&, const Object& o) { return o.as<std::string>(); }
  template <class P> static P pass(Held& h) {
    if constexpr (std::is_rvalue_reference_v<P> || !std::is_reference_v<P>) return std::move(h);
    else return h;
  }
};

template <>
struct ArgConv<std::string_view> {
  using Held = std::string_view;  // views the argument Object, which outlives the call
  static constexpr std::string_view kind = "text";
  static int match(const Registry&, const Object& o) { return o.is(builtin::text_type()) ? 0 : -1; }
  static Held from(const Registry&, const Object& o) { return o.as<std::string>(); }
  template <class P> static P pass(Held& h) { return h; }
};

template <>
struct ArgConv<Bytes> {
  using Held = const Bytes*;
  static constexpr std::string_view kind = "bytes";
  static int match(const Registry&, const Object& o) { return o.is(builtin::bytes_type()) ? 0 : -1; }
  static Held from(const Registry&, const Object& o) { return &o.as<Bytes>(); }
  template <class P> static P pass(Held& h) { return *h; }
};

template <>
struct ArgConv<None> {
  using Held = None;
  static constexpr std::string_view kind = "none";
  static int match(const Registry&, const Object& o) { return o.is(builtin::none_type()) ? 0 : -1; }
  static Held from(const Registry&, const Object&) { return {}; }
  template <class P> static P pass(Held& h) { return h; }
};

/// A handle to a peer's object (builtin::remote_type): a client's shared object, or another
/// server's object that a client passed on. The server's own objects are not handles here: a
/// parameter takes them as their class (or Object).
template <>
struct ArgConv<Handle> {
  using Held = Handle;
  static constexpr std::string_view kind = "handle";
  static int match(const Registry&, const Object& o) { return o.is(builtin::remote_type()) ? 0 : -1; }
  static Held from(const Registry&, const Object& o) { return builtin::remote_handle(o); }
  template <class P> static P pass(Held& h) {
    if constexpr (std::is_lvalue_reference_v<P>) return h;
    else return std::move(h);
  }
};

/// A list or map argument becomes a C++ container as large as the value expands (an element
/// shared n times is copied n times): refused before matching walks it when that is over the
/// budget of one expansion.
inline void check_expansion(const Object& o) {
  if (builtin::shape(o).expansion > ops::max_expansion) ops::expansion_error();
}

/// A hash container that a client fills: more keys than this in one bucket are refused. A
/// client that knows the hash (std::hash of an integer is the integer) could otherwise send keys
/// that all collide and make each insertion walk all the others: work growing with the square
/// of a value's size. Keys that do not collide on purpose come nowhere near it.
inline constexpr std::size_t max_bucket_chain = 64;

/// Room for `n` elements in a hash container (one table, no rehash on the way).
template <class D>
void reserve_for(D& out, std::size_t n) {
  if constexpr (is_unordered<D>::value) out.reserve(n);
  else (void)out, (void)n;
}

template <class D, class K>
void check_bucket(const Registry& r, const D& out, const K& key) {
  if constexpr (is_unordered<D>::value) {
    if (out.bucket_size(out.bucket(key)) > max_bucket_chain)
      throw_error(ErrorKind::value, "more than " + std::to_string(max_bucket_chain) + " keys of the " +
                                        kind_name<D>(r) + " share one hash bucket: refused");
  } else {
    (void)r, (void)out, (void)key;
  }
}

/// Converts one element for a container of E (already matched).
template <class E, class C = ArgConv<std::remove_cvref_t<E>>>
E element_from(const Registry& r, const Object& o) {
  auto h = C::from(r, o);
  return C::template pass<E>(h);
}

template <class D>
  requires is_vector<D>::value
struct ArgConv<D> {
  using E = ArgConv<std::remove_cvref_t<typename D::value_type>>;
  using Held = D;
  static constexpr std::string_view kind = "list";
  static int match(const Registry& r, const Object& o) {
    if (!o.is(builtin::list_type())) return -1;
    check_expansion(o);
    int worst = 0;
    for (auto& e : builtin::items(o)) worst = worse(worst, E::match(r, e));
    return worst;
  }
  static Held from(const Registry& r, const Object& o) {
    D out;
    for (auto& e : builtin::items(o)) out.push_back(element_from<typename D::value_type>(r, e));
    return out;
  }
  template <class P> static P pass(Held& h) {
    if constexpr (std::is_lvalue_reference_v<P>) return h;
    else return std::move(h);
  }
};

template <class D>
  requires text_map<D>
struct ArgConv<D> {
  using E = ArgConv<std::remove_cvref_t<typename D::mapped_type>>;
  using Held = D;
  static constexpr std::string_view kind = "map";
  static int match(const Registry& r, const Object& o) {
    if (!o.is(builtin::map_type())) return -1;
    check_expansion(o);
    int worst = 0;
    for (auto& [k, e] : builtin::entries(o)) worst = worse(worst, E::match(r, e));
    return worst;
  }
  static Held from(const Registry& r, const Object& o) {
    D out;
    reserve_for(out, builtin::entries(o).size());
    for (auto& [k, e] : builtin::entries(o)) {
      auto h = E::from(r, e);
      auto it = out.emplace(k, E::template pass<typename D::mapped_type>(h)).first;
      check_bucket<D>(r, out, it->first);
    }
    return out;
  }
  template <class P> static P pass(Held& h) {
    if constexpr (std::is_lvalue_reference_v<P>) return h;
    else return std::move(h);
  }
};

template <class D>
  requires is_optional<D>::value
struct ArgConv<D> {
  using E = ArgConv<std::remove_cvref_t<typename D::value_type>>;
  using Held = D;
  static constexpr std::string_view kind = "optional";
  static int match(const Registry& r, const Object& o) {
    return o.is(builtin::none_type()) ? 0 : E::match(r, o);
  }
  static Held from(const Registry& r, const Object& o) {
    if (o.is(builtin::none_type())) return std::nullopt;
    auto h = E::from(r, o);
    return E::template pass<typename D::value_type>(h);
  }
  template <class P> static P pass(Held& h) {
    if constexpr (std::is_lvalue_reference_v<P>) return h;
    else return std::move(h);
  }
};

/// Values that own what they convert into: handed on by reference or moved.
template <class D>
struct OwnedConv {
  using Held = D;
  template <class P> static P pass(Held& h) {
    if constexpr (std::is_lvalue_reference_v<P>) return h;
    else return std::move(h);
  }
};

/// Matches a list of exactly `n` elements, element i by `each(i, element)`.
template <class Each>
int match_list(const Object& o, std::size_t n, Each each) {
  if (!o.is(builtin::list_type()) || builtin::items(o).size() != n) return -1;
  check_expansion(o);
  int worst = 0;
  std::size_t i = 0;
  for (auto& e : builtin::items(o)) worst = worse(worst, each(i++, e));
  return worst;
}

/// std::pair and std::tuple: a list of exactly their size.
template <class D>
  requires is_tuple_like<D>::value
struct ArgConv<D> : OwnedConv<D> {
  static constexpr std::size_t n = std::tuple_size_v<D>;
  static constexpr std::string_view kind = "list";
  static int match(const Registry& r, const Object& o) {
    if (match_list(o, n, [](std::size_t, const Object&) { return 0; }) < 0) return -1;
    auto& l = builtin::items(o);
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      int m = 0;
      ((m = worse(m, ArgConv<std::remove_cvref_t<std::tuple_element_t<I, D>>>::match(r, l[I]))), ...);
      return m;
    }(std::make_index_sequence<n>{});
  }
  static D from(const Registry& r, const Object& o) {
    auto& l = builtin::items(o);
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return D{element_from<std::tuple_element_t<I, D>>(r, l[I])...};  // braces: left to right
    }(std::make_index_sequence<n>{});
  }
};

/// std::array<T, N>: a list of exactly N elements.
template <class D>
  requires is_std_array<D>::value
struct ArgConv<D> : OwnedConv<D> {
  using E = ArgConv<std::remove_cvref_t<typename D::value_type>>;
  static constexpr std::string_view kind = "list";
  static int match(const Registry& r, const Object& o) {
    return match_list(o, std::tuple_size_v<D>, [&](std::size_t, const Object& e) { return E::match(r, e); });
  }
  static D from(const Registry& r, const Object& o) {
    auto& l = builtin::items(o);
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return D{element_from<typename D::value_type>(r, l[I])...};
    }(std::make_index_sequence<std::tuple_size_v<D>>{});
  }
};

/// std::set and std::unordered_set: a list of distinct elements. A repeated one is a type error
/// (it is not the set the client meant), not silently dropped.
template <class D>
  requires is_set<D>::value
struct ArgConv<D> : OwnedConv<D> {
  using E = ArgConv<std::remove_cvref_t<typename D::value_type>>;
  static constexpr std::string_view kind = "list";
  static int match(const Registry& r, const Object& o) {
    if (!o.is(builtin::list_type())) return -1;
    check_expansion(o);
    int worst = 0;
    for (auto& e : builtin::items(o)) worst = worse(worst, E::match(r, e));
    return worst;
  }
  static D from(const Registry& r, const Object& o) {
    D out;
    reserve_for(out, builtin::items(o).size());
    std::size_t i = 0;
    for (auto& e : builtin::items(o)) {
      auto [it, inserted] = out.insert(element_from<typename D::value_type>(r, e));
      if (!inserted)
        throw_error(ErrorKind::type, "expected " + kind_name<D>(r) + ", but element " + std::to_string(i) +
                                         " repeats an earlier one");
      check_bucket<D>(r, out, *it);
      ++i;
    }
    return out;
  }
};

/// Maps with integer or enum keys: a list of [key, value] pairs with distinct keys.
template <class D>
  requires pair_map<D>
struct ArgConv<D> : OwnedConv<D> {
  using K = ArgConv<std::remove_cvref_t<typename D::key_type>>;
  using V = ArgConv<std::remove_cvref_t<typename D::mapped_type>>;
  static constexpr std::string_view kind = "list";
  static int match(const Registry& r, const Object& o) {
    if (!o.is(builtin::list_type())) return -1;
    check_expansion(o);
    int worst = 0;
    for (auto& e : builtin::items(o)) {
      worst = worse(worst, match_list(e, 2, [&](std::size_t i, const Object& x) {
                      return i == 0 ? K::match(r, x) : V::match(r, x);
                    }));
      if (worst < 0) return worst;
    }
    return worst;
  }
  static D from(const Registry& r, const Object& o) {
    D out;
    reserve_for(out, builtin::items(o).size());
    std::size_t i = 0;
    for (auto& e : builtin::items(o)) {
      auto& kv = builtin::items(e);
      auto key = element_from<typename D::key_type>(r, kv[0]);
      auto [it, inserted] = out.try_emplace(std::move(key), element_from<typename D::mapped_type>(r, kv[1]));
      if (!inserted)
        throw_error(ErrorKind::type, "expected " + kind_name<D>(r) + ", but element " + std::to_string(i) +
                                         " repeats the key of an earlier one");
      check_bucket<D>(r, out, it->first);
      ++i;
    }
    return out;
  }
};

/// std::chrono::duration: the count of its own unit, as its Rep converts (an integer Rep takes
/// an int64 in range, a floating one a float64 or an int64).
template <class D>
  requires is_duration<D>::value
struct ArgConv<D> {
  using C = ArgConv<typename D::rep>;
  using Held = D;
  static constexpr std::string_view kind = C::kind;
  static int match(const Registry& r, const Object& o) { return C::match(r, o); }
  static Held from(const Registry& r, const Object& o) { return D(C::from(r, o)); }
  template <class P> static P pass(Held& h) { return h; }
};

/// An enum bound with Registry::enum_: one of its registered names, as text. Only text matches;
/// a name it does not have is a value error listing the names.
template <class D>
  requires bound_enum<D>
struct ArgConv<D> {
  using Held = D;
  static constexpr std::string_view kind = "text";
  static int match(const Registry& r, const Object& o) {
    return o.is(builtin::text_type()) && registry_enum(r, typeid(D)) ? 0 : -1;
  }
  static Held from(const Registry& r, const Object& o) {
    const EnumInfo& e = enum_of<D>(r);
    const std::string& s = o.as<std::string>();
    auto it = e.by_name.find(s);
    if (it == e.by_name.end()) {
      constexpr std::size_t shown = 64;  // the client's text, in part: it may be long
      std::string text = s.size() > shown ? s.substr(0, shown) + "..." : s;
      throw_error(ErrorKind::value, "'" + text + "' is not a name of " + e.kind());
    }
    return static_cast<D>(static_cast<std::underlying_type_t<D>>(it->second));
  }
  template <class P> static P pass(Held& h) { return h; }
};

/// const char*: text, pointing into the argument (which outlives the call). A text with a NUL
/// in it would be cut short, so it is refused.
template <>
struct ArgConv<const char*> {
  using Held = const char*;
  static constexpr std::string_view kind = "text";
  static int match(const Registry&, const Object& o) { return o.is(builtin::text_type()) ? 0 : -1; }
  static Held from(const Registry&, const Object& o) {
    const std::string& s = o.as<std::string>();
    if (s.find('\0') != std::string::npos) throw_error(ErrorKind::value, "text with a NUL character cannot be passed as const char*");
    return s.c_str();
  }
  template <class P> static P pass(Held& h) { return h; }
};

/// Registered classes, taken as T&, const T&, T (a copy), T* or std::shared_ptr<T>. Only an object
/// of the class matches: none does not (its type is none's), so only T* (below) and std::optional
/// parameters take none.
template <class U>
struct ClassArg {
  using Held = std::shared_ptr<U>;
  static constexpr std::string_view kind = "object";
  static int match(const Registry& r, const Object& o) {
    auto* t = registry_find(r, typeid(U));
    return t && o.type == t ? 0 : -1;
  }
  static Held from(const Registry&, const Object& o) { return std::static_pointer_cast<U>(o.ptr); }
  // A parameter `const std::shared_ptr<const U>&` gets a converted copy by value: returned as
  // the reference type it would refer to a temporary that dies before the call.
  template <class P>
  using Passed = std::conditional_t<is_shared_ptr<std::remove_cvref_t<P>>::value &&
                                        !std::same_as<std::remove_cvref_t<P>, Held>,
                                    std::remove_cvref_t<P>, P>;
  template <class P> static Passed<P> pass(Held& h) {
    if constexpr (std::is_pointer_v<P>) return h.get();
    else if constexpr (is_shared_ptr<std::remove_cvref_t<P>>::value) return h;
    else return *h;
  }
};

template <user_class D>
struct ArgConv<D> : ClassArg<D> {};

template <class U>
struct ArgConv<U*> : ClassArg<std::remove_const_t<U>> {
  static int match(const Registry& r, const Object& o) {
    return o.is(builtin::none_type()) ? 0 : ClassArg<std::remove_const_t<U>>::match(r, o);
  }
  static typename ClassArg<std::remove_const_t<U>>::Held from(const Registry& r, const Object& o) {
    if (o.is(builtin::none_type())) return nullptr;
    return ClassArg<std::remove_const_t<U>>::from(r, o);
  }
};

// A std::shared_ptr<T> parameter is an object, never none: user code may dereference it without a
// check. A binding that means "an object or nothing" says so with T* or
// std::optional<std::shared_ptr<T>> (the optional handles none before this converter is asked).
template <class U>
struct ArgConv<std::shared_ptr<U>> : ClassArg<std::remove_const_t<U>> {};

/// The argument converter for a parameter of type P.
template <class P>
using arg_conv = ArgConv<std::remove_cvref_t<P>>;

/// Whether `o` can be passed to a parameter of type P.
template <class P>
bool accepts(const Registry& r, const Object& o) {
  return arg_conv<P>::match(r, o) >= 0;
}

// ---- callables --------------------------------------------------------------------------------

template <class... P> struct type_list {};

/// What the binding templates need to know about a callable: its result, its parameters and, for
/// member functions, the class. Lambdas and other function objects count as free functions.
template <class F> struct callable;
template <class R, class... P>
struct callable<R (*)(P...)> {
  using result = R;
  using params = type_list<P...>;
  static constexpr bool member = false;
};
template <class R, class... P> struct callable<R (*)(P...) noexcept> : callable<R (*)(P...)> {};
template <class R, class... P> struct callable<R(P...)> : callable<R (*)(P...)> {};
template <class R, class... P> struct callable<R(P...) noexcept> : callable<R (*)(P...)> {};

template <class R, class C, class... P>
struct member_callable {
  using result = R;
  using params = type_list<P...>;
  using cls = C;
  static constexpr bool member = true;
};
template <class R, class C, class... P> struct callable<R (C::*)(P...)> : member_callable<R, C, P...> {};
template <class R, class C, class... P> struct callable<R (C::*)(P...) const> : member_callable<R, const C, P...> {};
template <class R, class C, class... P> struct callable<R (C::*)(P...) noexcept> : member_callable<R, C, P...> {};
template <class R, class C, class... P>
struct callable<R (C::*)(P...) const noexcept> : member_callable<R, const C, P...> {};
template <class R, class C, class... P> struct callable<R (C::*)(P...) &> : member_callable<R, C, P...> {};
template <class R, class C, class... P> struct callable<R (C::*)(P...) const&> : member_callable<R, const C, P...> {};

/// A function object's call operator, seen as a free function.
template <class M> struct call_operator;
template <class R, class L, class... P> struct call_operator<R (L::*)(P...)> : callable<R (*)(P...)> {};
template <class R, class L, class... P> struct call_operator<R (L::*)(P...) const> : callable<R (*)(P...)> {};
template <class R, class L, class... P> struct call_operator<R (L::*)(P...) noexcept> : callable<R (*)(P...)> {};
template <class R, class L, class... P>
struct call_operator<R (L::*)(P...) const noexcept> : callable<R (*)(P...)> {};
template <class F>
  requires std::is_class_v<F> && requires { &F::operator(); }
struct callable<F> : call_operator<decltype(&F::operator())> {};

/// A callable whose signature can be read: not a generic lambda nor an overload set.
template <class F>
concept readable_callable = requires { typename callable<std::remove_cvref_t<F>>::result; };

// ---- results --------------------------------------------------------------------------------

/// Whether to_object() can convert a D (so that an operator returning one can be offered).
template <class D>
constexpr bool is_sendable() {
  return bindable<D, true>();
}
template <class R>
concept sendable = is_sendable<std::remove_cvref_t<R>>();

template <class U>
Object ref_to(Ctx& ctx, U& u, const Object& owner) {
  using M = std::remove_const_t<U>;
  const TypeInfo& t = info_of<M>(ctx.registry);
  if constexpr (shares_from_this<M>) {
    if (auto sp = const_cast<M&>(u).weak_from_this().lock()) return Object{std::shared_ptr<void>(sp, const_cast<M*>(&u)), &t};
  }
  return Object{std::shared_ptr<void>(owner.ptr, const_cast<M*>(&u)), &t};
}

/// Converts `v` to an Object. `borrowed`: v lives inside `owner` (a field, or a method that
/// returned a reference), so registered objects in it are references, not copies.
template <class V>
Object to_object(Ctx& ctx, V&& v, const Object& owner, bool borrowed) {
  using D = std::remove_cvref_t<V>;
  if constexpr (std::same_as<D, Object>) {
    return v;
  } else if constexpr (std::same_as<D, Plain>) {
    return builtin::box(v);
  } else if constexpr (std::same_as<D, bool>) {
    return builtin::box(v);
  } else if constexpr (plain_integer<D>) {
    if constexpr (std::is_unsigned_v<D> && sizeof(D) >= 8) {
      if (!std::in_range<std::int64_t>(v)) throw_error(ErrorKind::value, "result does not fit in int64");
    }
    return builtin::box(static_cast<std::int64_t>(v));
  } else if constexpr (std::floating_point<D>) {
    return builtin::box(static_cast<double>(v));
  } else if constexpr (std::same_as<D, std::string> || std::same_as<D, std::string_view> ||
                       std::is_convertible_v<D, std::string_view>) {
    if constexpr (std::is_pointer_v<D>) {
      if (!v) return builtin::none();  // a null const char*
    }
    return builtin::box(std::string(std::string_view(v)));
  } else if constexpr (std::same_as<D, Bytes>) {
    return builtin::box(Bytes(v));
  } else if constexpr (std::same_as<D, None>) {
    return builtin::none();
  } else if constexpr (std::same_as<D, Handle>) {
    if (!static_cast<bool>(v)) return builtin::none();  // an empty handle (`!v` is the remote `not`)
    return builtin::remote(v);
  } else if constexpr (is_vector<D>::value || is_std_array<D>::value || is_set<D>::value) {
    // A set's elements are copies: writing to one through a reference would break its order.
    const bool refs = borrowed && !is_set<D>::value;
    builtin::ObjectList out;
    out.reserve(v.size());
    for (auto&& e : v) {
      if constexpr (std::same_as<typename D::value_type, bool>) out.push_back(builtin::box(static_cast<bool>(e)));  // vector<bool>'s proxies
      else out.push_back(to_object(ctx, e, owner, refs));
    }
    return builtin::box(std::move(out));
  } else if constexpr (is_tuple_like<D>::value) {
    builtin::ObjectList out;
    out.reserve(std::tuple_size_v<D>);
    std::apply([&](auto&... e) { (out.push_back(to_object(ctx, e, owner, borrowed)), ...); }, v);
    return builtin::box(std::move(out));
  } else if constexpr (text_map<D>) {
    builtin::ObjectMap out;
    for (auto&& [k, e] : v) out.emplace(k, to_object(ctx, e, owner, borrowed));
    return builtin::box(std::move(out));
  } else if constexpr (pair_map<D>) {
    builtin::ObjectList out;
    out.reserve(v.size());
    for (auto&& [k, e] : v) out.push_back(builtin::box(builtin::ObjectList{to_object(ctx, k, owner, false), to_object(ctx, e, owner, borrowed)}));
    return builtin::box(std::move(out));
  } else if constexpr (is_duration<D>::value) {
    return to_object(ctx, v.count(), owner, false);
  } else if constexpr (bound_enum<D>) {
    const EnumInfo& e = enum_of<D>(ctx.registry);
    auto it = e.by_value.find(enum_number(v));
    if (it == e.by_value.end())
      throw_error(ErrorKind::value, "result " + std::to_string(enum_number(v)) + " has no name in " + e.kind());
    return builtin::box(it->second);
  } else if constexpr (is_optional<D>::value) {
    if (!v) return builtin::none();
    return to_object(ctx, *v, owner, borrowed);
  } else if constexpr (is_generator<D>::value) {
    // Resumed on its actor by the iteration that takes it; `owner` (the object whose method
    // made it) lives as long as the frame that may refer to it.
    auto g = std::make_shared<D>(std::move(v));
    return builtin::generator([g, owner](Ctx& c) -> Object {
      if (!g->next()) return Object{};
      return to_object(c, std::move(g->value()), owner, false);
    });
  } else if constexpr (is_shared_ptr<D>::value) {
    using U = std::remove_const_t<typename D::element_type>;
    if (!v) return builtin::none();
    return Object{std::const_pointer_cast<U>(v), &info_of<U>(ctx.registry)};
  } else if constexpr (std::is_pointer_v<D>) {
    if (!v) return builtin::none();
    return ref_to(ctx, *v, owner);
  } else if constexpr (user_class<D>) {
    if (borrowed) return ref_to(ctx, v, owner);
    return Object{std::make_shared<D>(std::forward<V>(v)), &info_of<D>(ctx.registry)};
  } else {
    static_assert(sizeof(D) == 0, "remoteable: this result type cannot be sent");
  }
}

/// Finishes a coroutine method: awaits it (on the actor's strand) and converts its result.
/// The owner is held by the frame, so the object stays alive across suspensions.
template <class U>
asio::awaitable<Object> finish_awaitable(const Registry* registry, Object owner, asio::awaitable<U> run) {
  Ctx ctx{*registry};
  if constexpr (std::is_void_v<U>) {
    co_await std::move(run);
    co_return builtin::none();
  } else {
    U value = co_await std::move(run);
    Object result = to_object(ctx, std::move(value), owner, false);
    co_return result;
  }
}

/// Calls `f(args...)` and converts what it returns; references returned count as borrowed.
/// A coroutine method (returning asio::awaitable<U>) gives a pending object that the server
/// runs to completion on the actor's strand.
template <class F, class... A>
Object invoke_to_object(Ctx& ctx, const Object& owner, F&& f, A&&... args) {
  using R = std::invoke_result_t<F, A...>;
  if constexpr (is_awaitable<std::remove_cvref_t<R>>::value) {
    using U = typename std::remove_cvref_t<R>::value_type;
    return builtin::pending(finish_awaitable<U>(&ctx.registry, owner,
                                                std::invoke(std::forward<F>(f), std::forward<A>(args)...)));
  } else if constexpr (std::is_void_v<R>) {
    std::invoke(std::forward<F>(f), std::forward<A>(args)...);
    return builtin::none();
  } else {
    return to_object(ctx, std::invoke(std::forward<F>(f), std::forward<A>(args)...), owner,
                     std::is_lvalue_reference_v<R>);
  }
}

}  // namespace detail
}  // namespace remoteable
