#pragma once
// remoteable::Registry: which C++ types a server exposes, and how (a binding API in the spirit of
// pybind11). Only what is registered here can be reached by a client.

#include <concepts>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <typeindex>
#include <utility>

#include "actors/builtins.hpp"
#include "actors/convert.hpp"
#include "actors/object.hpp"

namespace remoteable {

template <class T> class ClassBuilder;

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

  /// The registered type for a C++ type, or nullptr.
  const TypeInfo* find(std::type_index t) const noexcept {
    auto it = types_.find(t);
    return it == types_.end() ? nullptr : it->second.get();
  }
  template <class T> const TypeInfo& info() const { return detail::info_of<T>(*this); }

  /// A reference to a live object of registered type T.
  template <class T>
  Object make_ref(std::shared_ptr<T> object) const {
    using U = std::remove_const_t<T>;
    return Object{std::const_pointer_cast<U>(std::move(object)), &info<U>()};
  }
  /// The class object of registered type T: calling it constructs a T.
  template <class T>
  Object class_ref() const {
    auto& t = info<T>();
    auto it = classes_.find(typeid(T));
    return Object{it->second, &builtin::class_type()};
    (void)t;
  }
  /// Boxes a plain C++ value (or wraps a shared_ptr to a registered object).
  template <class V>
  Object box(V&& value) const {
    Ctx ctx{*this};
    return detail::to_object(ctx, std::forward<V>(value), Object{}, false);
  }
  /// A free function as an object: calling it runs `f`. Overloads come from repeated `add`s.
  template <class F>
  Object function(std::string name, F f) const;

  /// The C++ type's registered name, or its implementation name if it is not registered.
  template <class T> std::string name_of() const {
    if (auto* t = find(typeid(T))) return t->name;
    return typeid(T).name();
  }

 private:
  template <class T> friend class ClassBuilder;
  std::map<std::type_index, std::unique_ptr<TypeInfo>> types_;
  std::map<std::type_index, std::shared_ptr<builtin::ClassObject>> classes_;
};

namespace detail {

inline const TypeInfo* registry_find(const Registry& r, std::type_index t) noexcept { return r.find(t); }
inline const TypeInfo& registry_info(const Registry& r, std::type_index t, std::string_view cpp_name) {
  if (auto* info = r.find(t)) return *info;
  throw_error(ErrorKind::type, "C++ type " + std::string(cpp_name) + " is not registered");
}

template <class P>
std::string kind_name(const Registry& r) {
  using D = std::remove_cvref_t<std::remove_pointer_t<std::remove_cvref_t<P>>>;
  if constexpr (is_shared_ptr<D>::value) return r.template name_of<std::remove_const_t<typename D::element_type>>();
  else if constexpr (user_class<D>) return r.template name_of<D>();
  else return std::string(arg_conv<P>::kind);
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
Overload make_overload(const Registry& r, Fn fn) {
  Overload o;
  o.signature = signature<P...>(r);
  o.arity = sizeof...(P);
  o.accepts = [](const Registry& reg, Args a) {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return (arg_conv<P>::accepts(reg, a[I]) && ...);
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

/// asio::awaitable frames start later and outlive the call's argument storage, so a coroutine
/// must own its arguments.
template <class R, class... P>
constexpr void check_coroutine_params() {
  if constexpr (is_awaitable<std::remove_cvref_t<R>>::value)
    static_assert((!std::is_reference_v<P> && ...),
                  "remoteable: a coroutine method or function (returning asio::awaitable) must take its "
                  "parameters by value; use std::shared_ptr<T> for registered objects");
}

template <class T> struct fn_traits;
template <class R, class... P> struct fn_traits<R (*)(P...)> {
  template <class F> static Overload make(const Registry& r, F f) {
    check_coroutine_params<R, P...>();
    return make_overload<P...>(r, [f](Ctx& ctx, const Object& self, P... p) {
      return invoke_to_object(ctx, self, f, std::forward<P>(p)...);
    });
  }
};
template <class R, class... P> struct fn_traits<R (*)(P...) noexcept> : fn_traits<R (*)(P...)> {};

// ---- user operators, detected with concepts ----------------------------------------------------

#define REMOTEABLE_OP_CASE(op, sym)                                                     \
  case BinaryOp::op:                                                                   \
    if constexpr (requires(L& l, R& rr) { l sym rr; }) return invoke_to_object(ctx, owner, [&]() -> decltype(auto) { return l sym r; }); \
    break;

template <class L, class R>
std::optional<Object> apply_user_op(Ctx& ctx, BinaryOp op, L& l, R& r, const Object& owner) {
  switch (op) {
    REMOTEABLE_OP_CASE(add, +) REMOTEABLE_OP_CASE(sub, -) REMOTEABLE_OP_CASE(mul, *)
    REMOTEABLE_OP_CASE(div, /) REMOTEABLE_OP_CASE(mod, %) REMOTEABLE_OP_CASE(bit_and, &)
    REMOTEABLE_OP_CASE(bit_or, |) REMOTEABLE_OP_CASE(bit_xor, ^) REMOTEABLE_OP_CASE(shl, <<)
    REMOTEABLE_OP_CASE(shr, >>) REMOTEABLE_OP_CASE(eq, ==) REMOTEABLE_OP_CASE(ne, !=)
    REMOTEABLE_OP_CASE(lt, <) REMOTEABLE_OP_CASE(le, <=) REMOTEABLE_OP_CASE(gt, >)
    REMOTEABLE_OP_CASE(ge, >=)
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

template <class T>
void fill_protocol(TypeInfo& t) {
  t.binary = [](Ctx& ctx, BinaryOp op, const Object& self, const Object& other, bool reflected) -> Object {
    if (auto r = user_binary<T>(ctx, op, self, other, reflected)) return *r;
    return Object{};  // not supported: ops::binary falls back or reports a type error
  };
  t.unary = [](Ctx& ctx, UnaryOp op, const Object& self) -> Object {
    T& s = self.as<T>();
    switch (op) {
      case UnaryOp::neg:
        if constexpr (requires(T& x) { -x; }) return invoke_to_object(ctx, self, [&]() -> decltype(auto) { return -s; });
        break;
      case UnaryOp::invert:
        if constexpr (requires(T& x) { ~x; }) return invoke_to_object(ctx, self, [&]() -> decltype(auto) { return ~s; });
        break;
      case UnaryOp::logical_not:
        if constexpr (requires(T& x) { !x; }) return invoke_to_object(ctx, self, [&]() -> decltype(auto) { return !s; });
        break;
    }
    return Object{};
  };
  if constexpr (requires(std::ostream& os, const T& x) { os << x; }) {
    t.str = [](const Object& self) {
      std::ostringstream os;
      os << self.as<const T>();
      return os.str();
    };
  }
  if constexpr (std::is_constructible_v<bool, const T&>) {
    t.truthy = [](const Object& self) { return static_cast<bool>(self.as<const T>()); };
  }
  if constexpr (requires(const T& x) { x.size(); }) {
    t.len = [](const Object& self) { return static_cast<std::size_t>(self.as<const T>().size()); };
  }
}

}  // namespace detail

/// Describes the members of registered class T. Each call returns the builder for chaining.
template <class T>
class ClassBuilder {
 public:
  ClassBuilder(Registry& registry, TypeInfo& type) : registry_(registry), type_(type) {}

  /// A constructor taking P...; several may be registered, chosen by arity and argument kinds.
  template <class... P>
  ClassBuilder& constructor() {
    registry_.classes_.at(typeid(T))->constructors.push_back(detail::make_overload<P...>(
        registry_, [](Ctx& ctx, const Object&, P... p) {
          ctx.fresh_actor = true;
          return Object{std::make_shared<T>(std::forward<P>(p)...), &detail::info_of<T>(ctx.registry)};
        }));
    return *this;
  }

  /// A data member. Read/write, or read-only if it is const. Plain values are read by copy;
  /// registered objects by reference.
  template <class F>
  ClassBuilder& field(std::string name, F T::*member) {
    Member m;
    m.kind = std::is_const_v<F> ? Member::Kind::readonly_field : Member::Kind::field;
    m.get = [member](Ctx& ctx, const Object& self) {
      return detail::to_object(ctx, self.as<T>().*member, self, true);
    };
    if constexpr (!std::is_const_v<F>) {
      m.set = [member, name](Ctx& ctx, const Object& self, const Object& value) {
        using C = detail::arg_conv<F>;
        if (!C::accepts(ctx.registry, value))
          throw_error(ErrorKind::type, "field '" + name + "' expects " + detail::kind_name<F>(ctx.registry) +
                                           ", got " + std::string(builtin::type_name(value)));
        auto held = C::from(ctx.registry, value);
        self.as<T>().*member = C::template pass<F>(held);
      };
    }
    type_.members[std::move(name)] = std::move(m);
    return *this;
  }

  /// A property from a getter and, optionally, a setter (member functions or callables taking
  /// T& first).
  template <class G>
  ClassBuilder& property(std::string name, G getter) {
    Member m;
    m.kind = Member::Kind::readonly_property;
    m.get = [getter](Ctx& ctx, const Object& self) {
      return detail::invoke_to_object(ctx, self, getter, self.as<T>());
    };
    type_.members[std::move(name)] = std::move(m);
    return *this;
  }
  template <class G, class S>
  ClassBuilder& property(std::string name, G getter, S setter) {
    property(name, getter);
    Member& m = type_.members[name];
    m.kind = Member::Kind::property;
    m.set = make_setter(name, setter);
    return *this;
  }

  /// A method (const or not); register several under one name to overload by arity and kinds.
  template <class M>
  ClassBuilder& method(std::string name, M method) {
    Member& m = type_.members[name];
    m.kind = Member::Kind::method;
    m.overloads.push_back(make_method(method));
    return *this;
  }

 private:
  template <class R, class C, class... P>
  Overload make_method(R (C::*fn)(P...)) {
    detail::check_coroutine_params<R, P...>();
    return detail::make_overload<P...>(registry_, [fn](Ctx& ctx, const Object& self, P... p) {
      return detail::invoke_to_object(ctx, self, fn, self.as<T>(), std::forward<P>(p)...);
    });
  }
  template <class R, class C, class... P>
  Overload make_method(R (C::*fn)(P...) const) {
    detail::check_coroutine_params<R, P...>();
    return detail::make_overload<P...>(registry_, [fn](Ctx& ctx, const Object& self, P... p) {
      return detail::invoke_to_object(ctx, self, fn, self.as<const T>(), std::forward<P>(p)...);
    });
  }
  template <class R, class C, class... P>
  Overload make_method(R (C::*fn)(P...) noexcept) { return make_method(reinterpret_cast<R (C::*)(P...)>(fn)); }
  template <class R, class C, class... P>
  Overload make_method(R (C::*fn)(P...) const noexcept) { return make_method(reinterpret_cast<R (C::*)(P...) const>(fn)); }

  template <class C, class V>
  static auto make_setter(const std::string& name, void (C::*fn)(V)) {
    return [fn, name](Ctx& ctx, const Object& self, const Object& value) {
      using Conv = detail::arg_conv<V>;
      if (!Conv::accepts(ctx.registry, value))
        throw_error(ErrorKind::type, "property '" + name + "' expects " + detail::kind_name<V>(ctx.registry) +
                                         ", got " + std::string(builtin::type_name(value)));
      auto held = Conv::from(ctx.registry, value);
      (self.as<T>().*fn)(Conv::template pass<V>(held));
    };
  }

  Registry& registry_;
  TypeInfo& type_;
};

template <class T>
ClassBuilder<T> Registry::class_(std::string name) {
  auto& slot = types_[typeid(T)];
  if (!slot) slot = std::make_unique<TypeInfo>();
  slot->name = name;
  detail::fill_protocol<T>(*slot);
  auto& cls = classes_[typeid(T)];
  if (!cls) cls = std::make_shared<builtin::ClassObject>(builtin::ClassObject{slot.get(), {}});
  return ClassBuilder<T>(*this, *slot);
}

template <class F>
Object Registry::function(std::string name, F f) const {
  auto fn = std::make_shared<builtin::Function>();
  fn->name = std::move(name);
  fn->overloads.push_back(detail::fn_traits<std::decay_t<decltype(+f)>>::make(*this, +f));
  return Object{fn, &builtin::function_type()};
}

}  // namespace remoteable
