#pragma once
// remoteable::Registry: which C++ types a server exposes, and how (a binding API in the spirit of
// pybind11). Only what is registered here can be reached by a client.

#include <fmt/format.h>

#include <concepts>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <typeindex>
#include <utility>
#include <vector>

#include <remoteable/detail/builtins.hpp>
#include <remoteable/client_options.hpp>
#include <remoteable/detail/convert.hpp>
#include <remoteable/detail/object.hpp>

namespace remoteable {

template <class T> class ClassBuilder;
template <class E> class EnumBuilder;

namespace detail {
template <class Sig> struct OverloadOf;
template <class R, class... P>
struct OverloadOf<R(P...)> {
  constexpr auto operator()(R (*f)(P...)) const noexcept { return f; }
  template <class C> constexpr auto operator()(R (C::*f)(P...)) const noexcept { return f; }
};
template <class R, class... P>
struct OverloadOf<R(P...) const> {
  template <class C> constexpr auto operator()(R (C::*f)(P...) const) const noexcept { return f; }
};
}  // namespace detail

/// Picks one function of an overload set by its signature, instead of a cast:
/// `.method("kind", remoteable::overload<std::string(double) const>(&Shape::kind))`. Write
/// `const` for a const member function, as in its declaration; `R(P...)` picks a free function
/// or a non-const member function.
template <class Sig>
inline constexpr detail::OverloadOf<Sig> overload{};

/// Several callables exported under one name, chosen per call by arity and argument kinds.
/// Made by `remoteable::overloads(f, g, ...)`.
template <class... F>
struct Overloads {
  std::tuple<F...> callables;
};
/// Groups callables (function pointers or function objects with one call signature) into one
/// overloaded function: `server.export_function("area", remoteable::overloads(&square, &rect))`.
template <class... F>
Overloads<std::decay_t<F>...> overloads(F&&... f) {
  return {{std::forward<F>(f)...}};
}

/// Marks a method or function that may block (sleeps, waits on I/O or a lock, runs long):
/// `.method("load", &Store::load, remoteable::blocking)`. Its calls always run on the actor
/// pool. Unmarked operations on an idle actor run inline on the server's network thread, which
/// saves two thread hops per call but holds up other connections while they run.
struct Blocking {
  explicit constexpr Blocking() = default;
};
inline constexpr Blocking blocking{};

namespace detail {
class PeerHost;
class KjLoop;
/// Serves `registry`'s objects to the peer of a client's connection on `loop` (defined by the
/// server library, which a program that registers types links).
std::shared_ptr<PeerHost> make_peer_host(const Registry& registry, std::shared_ptr<KjLoop> loop,
                                         const ClientOptions& options);
using PeerHostFactory = std::shared_ptr<PeerHost> (*)(const Registry&, std::shared_ptr<KjLoop>, const ClientOptions&);
}  // namespace detail

/// The set of registered types.
///
/// Ownership and threads: register every type before constructing a Server with the registry,
/// and keep the registry alive as long as the server. After that it is read-only and shared by
/// all threads without locking.
class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  /// Registers class T under `name` and returns a builder for its members.
  template <class T>
  ClassBuilder<T> class_(std::string name);

  /// Binds enum E under `name`: values travel as the text names given with
  /// `.value("red", Color::red)`. A client sending another text gets a value error listing the
  /// names; a result with no registered name is a value error too.
  template <class E>
  EnumBuilder<E> enum_(std::string name);

  /// Throws std::invalid_argument if a registered member, constructor or call operator names a
  /// class or enum that is not registered here, saying which one and where. A Server checks this
  /// when it is constructed.
  void check_complete() const;

  /// The registered type for a C++ type, or nullptr.
  const detail::TypeInfo* find(std::type_index t) const noexcept {
    auto it = types_.find(t);
    return it == types_.end() ? nullptr : it->second.get();
  }
  template <class T> const detail::TypeInfo& info() const { return detail::info_of<T>(*this); }
  /// How a client with this registry serves its shared objects (a client links it through here,
  /// not by name).
  detail::PeerHostFactory host_factory() const noexcept { return host_factory_; }

  /// A reference to a live object of registered type T.
  template <class T>
  Object make_ref(std::shared_ptr<T> object) const {
    using U = std::remove_const_t<T>;
    return Object{std::const_pointer_cast<U>(std::move(object)), &info<U>()};
  }
  /// The class object of registered type T: calling it constructs a T.
  template <class T>
  Object class_ref() const {
    auto it = classes_.find(typeid(T));
    if (it == classes_.end()) (void)info<T>();  // throws: T is not registered
    return Object{it->second, &detail::builtin::class_type()};
  }
  /// Boxes a plain C++ value (or wraps a shared_ptr to a registered object).
  template <class V>
  Object box(V&& value) const {
    detail::Ctx ctx{*this};
    return detail::to_object(ctx, std::forward<V>(value), Object{}, false);
  }
  /// A free function as an object: calling it runs `f`. `f` is a function pointer or a function
  /// object with one call signature (called as const, possibly from several threads), or
  /// `overloads(f, g, ...)` for several signatures under one name.
  template <class F>
  Object function(std::string name, F f) const;
  /// The same, for a function that may block (see remoteable::blocking).
  template <class F>
  Object function(std::string name, F f, Blocking) const {
    Object object = function(std::move(name), std::move(f));
    for (auto& o : object.as<detail::builtin::Function>().overloads) o.blocking = true;
    return object;
  }

  /// The C++ type's registered name, or its implementation name if it is not registered.
  template <class T> std::string name_of() const {
    if (auto* t = find(typeid(T))) return t->name;
    return detail::demangle(typeid(T).name());
  }

 private:
  template <class T> friend class ClassBuilder;
  template <class E> friend class EnumBuilder;
  friend const detail::EnumInfo* detail::registry_enum(const Registry&, std::type_index) noexcept;
  detail::PeerHostFactory host_factory_ = &detail::make_peer_host;
  std::map<std::type_index, std::unique_ptr<detail::TypeInfo>> types_;
  std::map<std::type_index, std::unique_ptr<detail::EnumInfo>> enums_;
  std::map<std::type_index, std::shared_ptr<detail::builtin::ClassObject>> classes_;
};

namespace detail {

template <class F> struct is_overloads : std::false_type {};
template <class... F> struct is_overloads<Overloads<F...>> : std::true_type {};

inline const TypeInfo* registry_find(const Registry& r, std::type_index t) noexcept { return r.find(t); }
inline const EnumInfo* registry_enum(const Registry& r, std::type_index t) noexcept {
  auto it = r.enums_.find(t);
  return it == r.enums_.end() ? nullptr : it->second.get();
}

/// Throws std::invalid_argument if `uses` names a type `r` lacks: "'<who>' uses <type>, ...".
void check_uses(const Registry& r, const std::vector<TypeUse>& uses, std::string_view who);

template <class T> void collect_uses(std::vector<TypeUse>& out);
template <class... E>
void collect_all(std::vector<TypeUse>& out, type_pack<E...>) {
  (collect_uses<E>(out), ...);
}
template <class T>
void collect_uses(std::vector<TypeUse>& out) {
  using D = std::remove_cvref_t<T>;
  if constexpr (is_shared_ptr<D>::value) collect_uses<std::remove_cv_t<typename D::element_type>>(out);
  else if constexpr (std::is_pointer_v<D>) {
    if constexpr (user_class<std::remove_cv_t<std::remove_pointer_t<D>>>) collect_uses<std::remove_pointer_t<D>>(out);
  }
  else if constexpr (user_class<D>) out.push_back({typeid(D), typeid(D).name(), false});
  else if constexpr (bound_enum<D>) out.push_back({typeid(D), typeid(D).name(), true});
  else collect_all(out, typename elements_of<D>::type{});
}
/// The registered classes and bound enums that the types T... name.
template <class... T>
std::vector<TypeUse> uses_of() {
  std::vector<TypeUse> out;
  (collect_uses<T>(out), ...);
  return out;
}
inline const TypeInfo& registry_info(const Registry& r, std::type_index t, std::string_view cpp_name) {
  if (auto* info = r.find(t)) return *info;
  throw_error(ErrorKind::type, "C++ type " + demangle(std::string(cpp_name).c_str()) + " is not registered");
}

template <class D, std::size_t... I>
std::string tuple_kind_name(const Registry& r, std::index_sequence<I...>) {
  std::string s = "[";
  ((s += (I ? ", " : "") + kind_name<std::tuple_element_t<I, D>>(r)), ...);
  return s + "]";
}

/// How a parameter of type P is named in messages: "int64", "list of text", "Node", ...
template <class P>
std::string kind_name(const Registry& r) {
  using D = std::remove_cvref_t<P>;
  if constexpr (std::same_as<D, Bytes>) return "bytes";
  else if constexpr (std::is_pointer_v<D> && user_class<std::remove_cv_t<std::remove_pointer_t<D>>>)
    return r.template name_of<std::remove_cv_t<std::remove_pointer_t<D>>>() + " or none";
  else if constexpr (is_shared_ptr<D>::value) return r.template name_of<std::remove_const_t<typename D::element_type>>();
  else if constexpr (is_vector<D>::value) return "list of " + kind_name<typename D::value_type>(r);
  else if constexpr (is_std_array<D>::value)
    return "list of " + std::to_string(std::tuple_size_v<D>) + " " + kind_name<typename D::value_type>(r);
  else if constexpr (is_tuple_like<D>::value) return tuple_kind_name<D>(r, std::make_index_sequence<std::tuple_size_v<D>>{});
  else if constexpr (is_set<D>::value) return "list of distinct " + kind_name<typename D::value_type>(r);
  else if constexpr (text_map<D>) return "map of " + kind_name<typename D::mapped_type>(r);
  else if constexpr (pair_map<D>)
    return "list of [" + kind_name<typename D::key_type>(r) + ", " + kind_name<typename D::mapped_type>(r) +
           "] with distinct keys";
  else if constexpr (is_duration<D>::value)
    return std::string(arg_conv<typename D::rep>::kind) + " " + duration_unit<typename D::period>();
  else if constexpr (bound_enum<D>) {
    if (auto* e = registry_enum(r, typeid(D))) return e->kind();
    return demangle(typeid(D).name());
  }
  else if constexpr (is_optional<D>::value) {
    std::string inner = kind_name<typename D::value_type>(r);
    if constexpr (std::is_pointer_v<typename D::value_type>) return inner;  // it already says "or none"
    else return inner + " or none";
  }
  else if constexpr (user_class<D>) return r.template name_of<D>();
  else return std::string(arg_conv<P>::kind);
}

/// How a result or a field's value of type R is named by describe(): as a parameter would be,
/// "none" for void, the awaited type for a coroutine, "generator of T" for a Generator, "text
/// or none" for a C string (null is none), "value" for a type that only converts out.
template <class R>
std::string value_kind_name(const Registry& r) {
  using D = std::remove_cvref_t<R>;
  if constexpr (std::is_void_v<D>) return "none";
  else if constexpr (is_awaitable<D>::value) return value_kind_name<typename D::value_type>(r);
  else if constexpr (is_generator<D>::value) return "generator of " + value_kind_name<typename D::value_type>(r);
  else if constexpr (std::same_as<D, const char*> || std::same_as<D, char*>) return "text or none";
  else if constexpr (bindable<D, false>()) return kind_name<D>(r);
  else if constexpr (std::is_convertible_v<D, std::string_view>) return "text";
  else return "value";
}

template <class... P>
std::string signature(const Registry& r) {
  std::string s = "(";
  ((s += kind_name<P>(r), s += ", "), ...);
  if constexpr (sizeof...(P) > 0) s.resize(s.size() - 2);
  return s + ")";
}

/// Builds an Overload from `fn(ctx, self, P...) -> Object`.
template <class... P, class Fn>
Overload make_overload(Fn fn) {
  Overload o;
  // Computed when an error needs it, so that classes registered later show their names.
  o.signature = [](const Registry& r) { return signature<P...>(r); };
  o.arity = sizeof...(P);
  o.match = [](const Registry& reg, Args a) {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      int m = 0;
      ((m = worse(m, arg_conv<P>::match(reg, a[I]))), ...);
      return m;
    }(std::index_sequence_for<P...>{});
  };
  o.invoke = [fn = std::move(fn)](Ctx& ctx, const Object& self, Args a) -> Object {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      std::tuple<typename arg_conv<P>::Held...> held{arg_conv<P>::from(ctx.registry, a[I])...};
      return fn(ctx, self, arg_conv<P>::template pass<P>(std::get<I>(held))...);
    }(std::index_sequence_for<P...>{});
  };
  return o;
}

/// asio::awaitable and remoteable::Generator frames run later and outlive the call's argument
/// storage, so a coroutine must own its arguments; and a function object may go away while its
/// coroutine runs, so it must capture nothing.
template <class F, class R, class... P>
constexpr void check_coroutine() {
  if constexpr (is_awaitable<std::remove_cvref_t<R>>::value || is_generator<std::remove_cvref_t<R>>::value) {
    static_assert(((!std::is_reference_v<P> && !std::is_pointer_v<P> &&
                    !std::same_as<std::remove_cv_t<P>, std::string_view>) && ...),
                  "remoteable: a coroutine method or function (returning asio::awaitable or remoteable::Generator) "
                  "must own its parameters: take them by value (std::string, not std::string_view), and registered "
                  "objects as std::shared_ptr<T>");
    static_assert(!std::is_class_v<F> || std::is_empty_v<F>,
                  "remoteable: a coroutine function object must not capture anything");
  }
}

/// A free function's overload: f(P...).
template <class F, class R, class... P>
Overload function_overload(F f, type_list<P...>) {
  if constexpr (!check_signature<R, P...>()) {
    return {};  // the static_assert has said why
  } else {
    check_coroutine<F, R, P...>();
    auto o = make_overload<P...>([f = std::move(f)](Ctx& ctx, const Object& self, P... p) {
      return invoke_to_object(ctx, self, f, std::forward<P>(p)...);
    });
    o.result = [](const Registry& r) { return value_kind_name<R>(r); };
    o.uses = uses_of<R, P...>();
    return o;
  }
}
template <class F>
Overload function_overload(F f) {
  static_assert(readable_callable<F>,
                "remoteable: a function must be a function pointer or a function object with one call "
                "signature (not a generic lambda); use remoteable::overloads(...) for several");
  using C = callable<F>;
  return function_overload<F, typename C::result>(std::move(f), typename C::params{});
}

/// A method's overload on objects of T: a member function of T (or of a base), or a callable
/// taking T& or const T& first.
template <class T, class F, class R, class Self, class... P>
Overload method_overload_free(F f, type_list<Self, P...>) {
  static_assert(std::is_same_v<std::remove_cvref_t<Self>, T> && std::is_lvalue_reference_v<Self>,
                "remoteable: a method given as a function must take the object as T& or const T& first");
  if constexpr (!check_signature<R, P...>()) {
    return {};  // the static_assert has said why
  } else {
    check_coroutine<F, R, P...>();
    auto o = make_overload<P...>([f = std::move(f)](Ctx& ctx, const Object& self, P... p) {
      return invoke_to_object(ctx, self, f, self.as<T>(), std::forward<P>(p)...);
    });
    o.result = [](const Registry& r) { return value_kind_name<R>(r); };
    o.uses = uses_of<R, P...>();
    return o;
  }
}
template <class T, class F, class R, class... P>
Overload method_overload_member(F f, type_list<P...>) {
  if constexpr (!check_signature<R, P...>()) {
    return {};  // the static_assert has said why
  } else {
    check_coroutine<F, R, P...>();
    auto o = make_overload<P...>([f](Ctx& ctx, const Object& self, P... p) {
      return invoke_to_object(ctx, self, f, self.as<T>(), std::forward<P>(p)...);
    });
    o.result = [](const Registry& r) { return value_kind_name<R>(r); };
    o.uses = uses_of<R, P...>();
    return o;
  }
}
template <class T, class F>
Overload method_overload(F f) {
  static_assert(readable_callable<F>,
                "remoteable: a method must be a member function pointer, a function pointer or a function "
                "object with one call signature (not a generic lambda)");
  using C = callable<F>;
  if constexpr (C::member) {
    static_assert(std::is_base_of_v<std::remove_const_t<typename C::cls>, T>,
                  "remoteable: the member function belongs to another class");
    return method_overload_member<T, F, typename C::result>(f, typename C::params{});
  } else {
    return method_overload_free<T, F, typename C::result>(std::move(f), typename C::params{});
  }
}

/// The single parameter a property setter takes: `void (T::*)(V)` or a callable `(T&, V)`.
template <class F, class Params, bool member> struct setter_value;
template <class F, class V> struct setter_value<F, type_list<V>, true> { using type = V; };
template <class F, class Self, class V> struct setter_value<F, type_list<Self, V>, false> { using type = V; };

// ---- user operators, detected with concepts ----------------------------------------------------

// An operator is offered when `l op r` compiles and its result can be sent. One case per entry
// of REMOTEABLE_BINARY_OPS (<remoteable/operators.hpp>).
#define REMOTEABLE_OP_CASE(op, sym, wire)                                                                  \
  case BinaryOp::op:                                                                                      \
    if constexpr (requires(L& l, R& rr) { { l sym rr } -> sendable; })                                   \
      return invoke_to_object(ctx, owner, [&]() -> decltype(auto) { return l sym r; });                 \
    break;

template <class L, class R>
std::optional<Object> apply_user_op(Ctx& ctx, BinaryOp op, L& l, R& r, const Object& owner) {
  switch (op) {
    REMOTEABLE_BINARY_OPS(REMOTEABLE_OP_CASE)
  }
  return std::nullopt;
}
#undef REMOTEABLE_OP_CASE

/// T op T, T op int64 and T op float64, in both orders.
template <class T>
std::optional<Object> user_binary(Ctx& ctx, BinaryOp op, const Object& self, const Object& other, bool reflected) {
  T& s = self.as<T>();
  auto apply = [&](auto& o) -> std::optional<Object> {
    return reflected ? apply_user_op(ctx, op, o, s, self) : apply_user_op(ctx, op, s, o, self);
  };
  if (other.type == self.type) return apply(other.as<T>());
  if (other.is(builtin::int64_type())) return apply(other.as<std::int64_t>());
  if (other.is(builtin::float64_type())) return apply(other.as<double>());
  return std::nullopt;
}

// ---- items: operator[] and size() --------------------------------------------------------------

template <class T, class K>
concept subscriptable = requires(T& t, const K& k) {
  { t[k] } -> sendable;
};
/// Associative containers: whether a key is present can be asked without inserting it.
template <class T, class K>
concept keyed = requires(T& t, const K& k) {
  { t.contains(k) } -> std::convertible_to<bool>;
} || requires(T& t, const K& k) {
  { t.find(k) != t.end() } -> std::convertible_to<bool>;
};
template <class T>
concept sized = requires(const T& t) {
  { t.size() } -> std::integral;
};
/// `t[k] = value` writes into t: operator[] gives a non-const lvalue of a type arguments convert to.
template <class T, class K>
concept item_assignable = requires(T& t, const K& k) {
  requires std::is_lvalue_reference_v<decltype(t[k])>;
  requires !std::is_const_v<std::remove_reference_t<decltype(t[k])>>;
  requires std::is_assignable_v<decltype(t[k]), std::remove_cvref_t<decltype(t[k])>>;
  typename arg_conv<std::remove_cvref_t<decltype(t[k])>>::Held;
};

template <class T, class K>
bool has_key(T& t, const K& k) {
  if constexpr (requires { t.contains(k); }) return t.contains(k);
  else return t.find(k) != t.end();
}

/// The key that `t[key]` will be given, checked first: a present key for associative types, an
/// index within size() (negative ones count from the end) for sequences. Other types get the
/// key as it is, and their operator[] decides.
template <class T>
std::int64_t checked_index(const Object& self, T& t, std::int64_t i, bool for_write) {
  if constexpr (keyed<T, std::int64_t>) {
    if (!for_write && !has_key(t, i)) throw_error(ErrorKind::index, "'" + self.type->name + "' has no key " + std::to_string(i));
  } else if constexpr (sized<T>) {
    auto n = static_cast<std::int64_t>(t.size());
    auto original = i;
    if (i < 0) i += n;
    if (i < 0 || i >= n)
      throw_error(ErrorKind::index, "'" + self.type->name + "' index " + std::to_string(original) +
                                        " out of range for size " + std::to_string(n));
  }
  return i;
}
template <class T>
void checked_text_key(const Object& self, T& t, const std::string& k, bool for_write) {
  if constexpr (keyed<T, std::string>) {
    if (!for_write && !has_key(t, k)) throw_error(ErrorKind::index, "'" + self.type->name + "' has no key '" + k + "'");
  }
  (void)self, (void)t, (void)k, (void)for_write;
}

template <class T>
std::string expected_keys() {
  std::string s;
  if constexpr (subscriptable<T, std::int64_t>) s = "int64";
  if constexpr (subscriptable<T, std::string>) s += s.empty() ? "text" : " or text";
  return s;
}

template <class T>
Object user_item(Ctx& ctx, const Object& self, const Object& key) {
  T& t = self.as<T>();
  if constexpr (subscriptable<T, std::int64_t>) {
    if (key.is(builtin::int64_type())) {
      const std::int64_t i = checked_index(self, t, key.as<std::int64_t>(), false);
      return invoke_to_object(ctx, self, [&]() -> decltype(auto) { return t[i]; });
    }
  }
  if constexpr (subscriptable<T, std::string>) {
    if (key.is(builtin::text_type())) {
      const std::string& k = key.as<std::string>();
      checked_text_key(self, t, k, false);
      return invoke_to_object(ctx, self, [&]() -> decltype(auto) { return t[k]; });
    }
  }
  throw_error(ErrorKind::type, "'" + self.type->name + "' indices must be " + expected_keys<T>() + ", got " +
                                   std::string(builtin::type_name(key)));
}

template <class T, class K>
void assign_item(Ctx& ctx, const Object& self, T& t, const K& k, const Object& value) {
  using E = std::remove_cvref_t<decltype(t[k])>;
  using C = arg_conv<E>;
  if (C::match(ctx.registry, value) < 0)
    throw_error(ErrorKind::type, "items of '" + self.type->name + "' expect " + kind_name<E>(ctx.registry) + ", got " +
                                     std::string(builtin::type_name(value)));
  auto held = C::from(ctx.registry, value);
  t[k] = C::template pass<E>(held);
}

template <class T>
void user_set_item(Ctx& ctx, const Object& self, const Object& key, const Object& value) {
  T& t = self.as<T>();
  if constexpr (item_assignable<T, std::int64_t>) {
    if (key.is(builtin::int64_type())) {
      const std::int64_t i = checked_index(self, t, key.as<std::int64_t>(), true);
      return assign_item(ctx, self, t, i, value);
    }
  }
  if constexpr (item_assignable<T, std::string>) {
    if (key.is(builtin::text_type())) {
      const std::string& k = key.as<std::string>();
      checked_text_key(self, t, k, true);
      return assign_item(ctx, self, t, k, value);
    }
  }
  std::string keys;
  if constexpr (item_assignable<T, std::int64_t>) keys = "int64";
  if constexpr (item_assignable<T, std::string>) keys += keys.empty() ? "text" : " or text";
  throw_error(ErrorKind::type, "'" + self.type->name + "' item keys must be " + keys + ", got " +
                                   std::string(builtin::type_name(key)));
}

// ---- iteration: begin() and end() -------------------------------------------------------------

/// A type a client can iterate: begin()/end() whose elements convert as results do.
template <class T>
concept iterable = requires(T& t) {
  { std::begin(t) != std::end(t) } -> std::convertible_to<bool>;
  { *std::begin(t) } -> sendable;
};

/// The snapshot a client's iteration of a registered container reads: its elements converted
/// as item() converts them (values copied, registered objects as references to the live
/// elements), taken at once on the actor and charged to the expansion budget as get() is. Its
/// bytes (sizeof(Object) + sizeof(Plain) per element, and what each expands to) count against
/// ServerOptions::max_snapshot_bytes_per_connection while the iteration is open.
template <class T>
std::unique_ptr<Sequence> user_snapshot(Ctx& ctx, const Object& self) {
  T& t = self.as<T>();
  constexpr bool borrowed = std::is_lvalue_reference_v<decltype(*std::begin(t))>;
  ops::ExpansionBudget budget;
  builtin::ObjectList elements;
  std::size_t bytes = 0;
  if constexpr (sized<T>) elements.reserve(static_cast<std::size_t>(t.size()));
  for (auto it = std::begin(t), end = std::end(t); it != end; ++it) {
    ops::charge_expansion(sizeof(Object) + sizeof(Plain));
    Object e = to_object(ctx, *it, self, borrowed);
    auto expansion = builtin::shape(e).expansion;
    ops::charge_expansion(expansion);
    bytes += sizeof(Object) + sizeof(Plain) + static_cast<std::size_t>(expansion);
    elements.push_back(std::move(e));
  }
  return builtin::snapshot(std::move(elements), bytes);
}

// ---- the protocol of a registered class ---------------------------------------------------------

template <class T>
void fill_protocol(TypeInfo& t) {
  t.binary = [](Ctx& ctx, BinaryOp op, const Object& self, const Object& other, bool reflected) -> Object {
    if (auto r = user_binary<T>(ctx, op, self, other, reflected)) return *r;
    return Object{};  // not supported: ops::binary falls back or reports a type error
  };
  t.unary = [](Ctx& ctx, UnaryOp op, const Object& self) -> Object {
    T& s = self.as<T>();
    switch (op) {
#define REMOTEABLE_UNARY_CASE(name, symbol, wire)                                    \
  case UnaryOp::name:                                                                \
    if constexpr (requires(T& x) { { symbol x } -> sendable; })                      \
      return invoke_to_object(ctx, self, [&]() -> decltype(auto) { return symbol s; }); \
    break;
      REMOTEABLE_UNARY_OPS(REMOTEABLE_UNARY_CASE)
#undef REMOTEABLE_UNARY_CASE
    }
    return Object{};
  };
  // A formatter written for fmt is the type's own choice of text; operator<< comes second.
  if constexpr (fmt::is_formattable<T>::value) {
    t.str = [](const Object& self) { return fmt::format("{}", self.as<const T>()); };
  } else if constexpr (requires(std::ostream& os, const T& x) { os << x; }) {
    t.str = [](const Object& self) {
      std::ostringstream os;
      os << self.as<const T>();
      return os.str();
    };
  }
  if constexpr (std::is_constructible_v<bool, const T&>) {
    t.truthy = [](const Object& self) { return static_cast<bool>(self.as<const T>()); };
  }
  if constexpr (sized<T>) {
    t.len = [](const Object& self) { return static_cast<std::size_t>(self.as<const T>().size()); };
  }
  if constexpr (subscriptable<T, std::int64_t> || subscriptable<T, std::string>) {
    t.item = [](Ctx& ctx, const Object& self, const Object& key) { return user_item<T>(ctx, self, key); };
  }
  if constexpr (iterable<T>) {
    t.iterate = [](Ctx& ctx, const Object& self) { return user_snapshot<T>(ctx, self); };
  }
  if constexpr (item_assignable<T, std::int64_t> || item_assignable<T, std::string>) {
    t.set_item = [](Ctx& ctx, const Object& self, const Object& key, const Object& value) {
      user_set_item<T>(ctx, self, key, value);
    };
  }
}

/// Converts `value` for a field or property of kind V, or throws a type error naming it.
template <class V>
auto convert_for(Ctx& ctx, const Object& self, const std::string& name, const Object& value) {
  using C = arg_conv<V>;
  if (C::match(ctx.registry, value) < 0)
    throw_error(ErrorKind::type, "'" + self.type->name + "." + name + "' expects " + kind_name<V>(ctx.registry) +
                                     ", got " + builtin::described_kind(value));
  return C::from(ctx.registry, value);
}

}  // namespace detail

/// Describes the members of registered class T. Each call returns the builder for chaining.
template <class T>
class ClassBuilder {
 public:
  ClassBuilder(Registry& registry, detail::TypeInfo& type) : registry_(registry), type_(type) {}

  /// A constructor taking P...; several may be registered, chosen by arity and argument kinds.
  template <class... P>
  ClassBuilder& constructor() {
    if constexpr (detail::check_signature<void, P...>()) {
      static_assert(std::is_constructible_v<T, P...>, "remoteable: the class has no constructor taking these parameters");
      auto& constructors = registry_.classes_.at(typeid(T))->constructors;
      constructors.push_back(detail::make_overload<P...>(
          [](detail::Ctx& ctx, const Object&, P... p) {
            ctx.fresh_actor = true;
            return Object{std::make_shared<T>(std::forward<P>(p)...), &detail::info_of<T>(ctx.registry)};
          }));
      constructors.back().result = [](const Registry& r) { return r.template name_of<T>(); };
      constructors.back().uses = detail::uses_of<P...>();
    }
    return *this;
  }

  /// A data member (of T or of a base). Read/write, or read-only if it is const. Plain values are
  /// read by copy; registered objects by reference, except const ones, which are read as copies
  /// (a client could otherwise write to a const object).
  template <class F, class C>
  ClassBuilder& field(std::string name, F C::*member) {
    static_assert(!std::is_function_v<F>, "remoteable: field() takes a data member; use method() for functions");
    static_assert(std::is_base_of_v<C, T>, "remoteable: the data member belongs to another class");
    if constexpr (detail::check_bindable<F, true>() && (std::is_const_v<F> || detail::check_bindable<F, false>()))
      add_field(std::move(name), member);
    return *this;
  }

  /// A read-only property from a getter: a member function of T (usually const), or a callable
  /// taking const T& (or T&).
  template <class G>
  ClassBuilder& property(std::string name, G getter) {
    constexpr bool checked = [] {
      if constexpr (detail::readable_callable<G>) return detail::check_bindable<typename detail::callable<G>::result, true>();
      else return true;
    }();
    if constexpr (checked) add_property(std::move(name), std::move(getter));
    return *this;
  }
  /// A read/write property from a getter and a setter: `void T::set(V)` (any result, const or
  /// noexcept), or a callable taking (T&, V).
  template <class G, class S>
  ClassBuilder& property(std::string name, G getter, S setter) {
    static_assert(detail::readable_callable<S>, "remoteable: a setter must have one call signature");
    using Traits = detail::callable<S>;
    using V = typename detail::setter_value<S, typename Traits::params, Traits::member>::type;
    if constexpr (detail::check_bindable<V, false>()) {
      property(name, getter);
      detail::Member& m = type_.members[name];
      m.kind = detail::Member::Kind::property;
      for (auto& u : detail::uses_of<V>()) m.uses.push_back(u);
      m.set = [setter, name](detail::Ctx& ctx, const Object& self, const Object& value) {
        auto held = detail::convert_for<V>(ctx, self, name, value);
        std::invoke(setter, self.as<T>(), detail::arg_conv<V>::template pass<V>(held));
      };
    }
    return *this;
  }

 private:
  template <class F, class C>
  void add_field(std::string name, F C::*member) {
    detail::Member m;
    m.uses = detail::uses_of<F>();
    m.kind = std::is_const_v<F> ? detail::Member::Kind::readonly_field : detail::Member::Kind::field;
    m.value_kind = [](const Registry& r) { return detail::value_kind_name<std::remove_const_t<F>>(r); };
    m.get = [member](detail::Ctx& ctx, const Object& self) {
      return detail::to_object(ctx, self.as<T>().*member, self, !std::is_const_v<F>);
    };
    if constexpr (!std::is_const_v<F>) {
      static_assert(std::is_copy_assignable_v<F> || std::is_move_assignable_v<F>,
                    "remoteable: a writable field must be assignable; make it const to expose it read-only");
      m.set = [member, name](detail::Ctx& ctx, const Object& self, const Object& value) {
        auto held = detail::convert_for<F>(ctx, self, name, value);
        self.as<T>().*member = detail::arg_conv<F>::template pass<F>(held);
      };
    }
    type_.members[std::move(name)] = std::move(m);
  }
  template <class G>
  void add_property(std::string name, G getter) {
    detail::Member m;
    m.kind = detail::Member::Kind::readonly_property;
    if constexpr (detail::readable_callable<G>) {
      using R = typename detail::callable<G>::result;
      m.value_kind = [](const Registry& r) { return detail::value_kind_name<R>(r); };
      m.uses = detail::uses_of<R>();
    }
    m.get = [getter](detail::Ctx& ctx, const Object& self) {
      return detail::invoke_to_object(ctx, self, getter, self.as<T>());
    };
    type_.members[std::move(name)] = std::move(m);
  }

 public:

  /// A method: a member function (const or not, of T or a base), or a callable taking T& or
  /// const T& first. Register several under one name to overload by arity and argument kinds.
  template <class M>
  ClassBuilder& method(std::string name, M method) {
    detail::Member& m = type_.members[name];
    m.kind = detail::Member::Kind::method;
    m.overloads.push_back(detail::method_overload<T>(std::move(method)));
    return *this;
  }
  /// The same, for a method that may block (see remoteable::blocking).
  template <class M>
  ClassBuilder& method(std::string name, M method, Blocking) {
    this->method(name, std::move(method));
    type_.members[name].overloads.back().blocking = true;
    return *this;
  }

  /// What calling an object of T itself does (`h(args...)`): usually `&T::operator()`, or a
  /// callable taking T& first. Register several to overload.
  template <class M>
  ClassBuilder& call_operator(M method) {
    type_.call.push_back(detail::method_overload<T>(std::move(method)));
    return *this;
  }
  template <class M>
  ClassBuilder& call_operator(M method, Blocking) {
    call_operator(std::move(method));
    type_.call.back().blocking = true;
    return *this;
  }

 private:
  Registry& registry_;
  detail::TypeInfo& type_;
};

template <class T>
ClassBuilder<T> Registry::class_(std::string name) {
  static_assert(detail::user_class<T>,
                "remoteable: only classes can be registered with class_ (an enum is bound with enum_; standard "
                "library types such as std::pair, std::set or std::chrono::duration convert as values)");
  auto& slot = types_[typeid(T)];
  if (!slot) slot = std::make_unique<detail::TypeInfo>();
  slot->name = name;
  detail::fill_protocol<T>(*slot);
  auto& cls = classes_[typeid(T)];
  if (!cls) cls = std::make_shared<detail::builtin::ClassObject>(detail::builtin::ClassObject{slot.get(), {}});
  return ClassBuilder<T>(*this, *slot);
}

/// Names the values of bound enum E. Each name and each value may be given once.
template <class E>
class EnumBuilder {
 public:
  explicit EnumBuilder(detail::EnumInfo& info) : info_(info) {}

  /// `value` travels as the text `name`.
  EnumBuilder& value(std::string name, E value) {
    const std::int64_t n = detail::enum_number(value);
    if (name.empty()) throw std::invalid_argument("enum " + info_.name + ": a value's name must not be empty");
    if (info_.by_name.contains(name)) throw std::invalid_argument("enum " + info_.name + " already has a value named '" + name + "'");
    if (info_.by_value.contains(n))
      throw std::invalid_argument("enum " + info_.name + ": " + std::to_string(n) + " is already named '" + info_.by_value[n] + "'");
    info_.by_name.emplace(name, n);
    info_.by_value.emplace(n, std::move(name));
    return *this;
  }

 private:
  detail::EnumInfo& info_;
};

template <class E>
EnumBuilder<E> Registry::enum_(std::string name) {
  static_assert(detail::bound_enum<E>, "remoteable: enum_ binds an enum type (std::byte is not one: use remoteable::Bytes)");
  auto& slot = enums_[typeid(E)];
  if (!slot) slot = std::make_unique<detail::EnumInfo>();
  slot->name = std::move(name);
  return EnumBuilder<E>(*slot);
}

template <class F>
Object Registry::function(std::string name, F f) const {
  auto fn = std::make_shared<detail::builtin::Function>();
  fn->name = std::move(name);
  if constexpr (detail::is_overloads<F>::value) {
    std::apply([&](auto&... each) { (fn->overloads.push_back(detail::function_overload(each)), ...); }, f.callables);
  } else {
    fn->overloads.push_back(detail::function_overload(std::move(f)));
  }
  return Object{fn, &detail::builtin::function_type()};
}

}  // namespace remoteable
