#pragma once
// Which C++ types a binding can take as parameters or give as results, checked at compile time:
// an unsupported type stops the registration that names it (class_().method(), field(),
// property(), constructor(), Registry::function) with one static_assert saying what is wrong
// and what is supported, instead of a type that compiles and fails at the first call.

#include <concepts>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include <asio/awaitable.hpp>

#include <remoteable/detail/object.hpp>
#include <remoteable/generator.hpp>
#include <remoteable/detail/std_types.hpp>

namespace remoteable {
class Handle;
}

namespace remoteable::detail {

template <class T> struct is_awaitable : std::false_type {};
template <class T, class E> struct is_awaitable<asio::awaitable<T, E>> : std::true_type {};

template <class T> struct is_generator : std::false_type {};
template <class T> struct is_generator<Generator<T>> : std::true_type {};

template <class T> struct is_shared_ptr : std::false_type {};
template <class T> struct is_shared_ptr<std::shared_ptr<T>> : std::true_type {};

/// A type that the registry, not the built-ins, must know: a class the user registers.
template <class T>
concept user_class = std::is_class_v<T> && !std::same_as<T, std::string> &&
                     !std::same_as<T, std::string_view> && !std::same_as<T, Bytes> &&
                     !std::same_as<T, None> && !std::same_as<T, Object> && !std::same_as<T, Plain> &&
                     !std::same_as<T, Handle> &&
                     !is_vector<T>::value && !is_string_map<T>::value && !is_optional<T>::value &&
                     !is_shared_ptr<T>::value && !is_awaitable<T>::value && !is_generator<T>::value && !std_value_type<T>;

template <class T>
concept character_type = std::same_as<T, char> || std::same_as<T, wchar_t> || std::same_as<T, char8_t> ||
                    std::same_as<T, char16_t> || std::same_as<T, char32_t>;

/// What is wrong with a type itself (its elements are looked at separately).
enum class BindProblem { none, character, byte, pointer, shared_ptr, map_key, duration_rep, std_type, other };

template <class... T> struct type_pack {};
/// The element types a container converts through.
template <class D> struct elements_of { using type = type_pack<>; };
template <class D>
  requires(is_vector<D>::value && !std::same_as<D, Bytes>) || is_set<D>::value || is_optional<D>::value ||
          is_std_array<D>::value || is_awaitable<D>::value || is_generator<D>::value
struct elements_of<D> { using type = type_pack<typename D::value_type>; };
template <class... E> struct elements_of<std::pair<E...>> { using type = type_pack<E...>; };
template <class... E> struct elements_of<std::tuple<E...>> { using type = type_pack<E...>; };
template <class D>
  requires is_keyed_map<D>::value
struct elements_of<D> { using type = type_pack<typename D::key_type, typename D::mapped_type>; };

/// `result`: as a result (void, detail::Plain, anything convertible to std::string_view and
/// asio::awaitable<T> are results only).
template <class T, bool result>
constexpr BindProblem own_problem() {
  using D = std::remove_cvref_t<T>;
  using enum BindProblem;
  if constexpr (std::is_void_v<D>) return result ? none : other;
  else if constexpr (std::same_as<D, Object> || std::same_as<D, bool> || plain_integer<D> || std::floating_point<D> ||
                     std::same_as<D, std::string> || std::same_as<D, std::string_view> || std::same_as<D, Bytes> ||
                     std::same_as<D, None> || std::same_as<D, const char*> || std::same_as<D, Handle>)
    return none;
  else if constexpr (result && (std::same_as<D, Plain> || std::is_convertible_v<D, std::string_view>)) return none;
  else if constexpr (character_type<D>) return character;
  else if constexpr (std::same_as<D, std::byte>) return byte;
  else if constexpr (bound_enum<D>) return none;
  else if constexpr (is_shared_ptr<D>::value) return user_class<std::remove_cv_t<typename D::element_type>> ? none : shared_ptr;
  else if constexpr (std::is_pointer_v<D>) return user_class<std::remove_cv_t<std::remove_pointer_t<D>>> ? none : pointer;
  else if constexpr (is_awaitable<D>::value || is_generator<D>::value) return result ? none : other;
  else if constexpr (is_duration<D>::value) return std::is_arithmetic_v<typename D::rep> ? none : duration_rep;
  else if constexpr (is_keyed_map<D>::value)
    return std::same_as<typename D::key_type, std::string> || pair_key<typename D::key_type> ? none : map_key;
  else if constexpr (is_vector<D>::value || is_optional<D>::value || is_tuple_like<D>::value ||
                     is_std_array<D>::value || is_set<D>::value)
    return none;
  else if constexpr (is_unconverted_std<D>::value) return std_type;
  else if constexpr (user_class<D>) return none;
  else return other;
}

template <class T, bool result> constexpr bool bindable();
template <bool result, class... E>
constexpr bool all_bindable(type_pack<E...>) { return (bindable<E, result>() && ...); }
/// Whether a T can be a parameter (result: false) or a result (true), elements and all.
template <class T, bool result>
constexpr bool bindable() {
  if constexpr (own_problem<T, result>() != BindProblem::none) return false;
  else return all_bindable<result>(typename elements_of<std::remove_cvref_t<T>>::type{});
}

#define REMOTEABLE_SUPPORTED_TYPES                                                                          \
  " Supported: bool, integers, floating point, std::string, std::string_view, const char*, remoteable::Bytes, " \
  "remoteable::None, remoteable::Object, remoteable::Handle (a peer's object); std::vector, std::array, std::pair, std::tuple, std::set, "           \
  "std::unordered_set and std::optional of these; std::map and std::unordered_map with std::string keys, or "  \
  "integer or enum keys; std::chrono::duration; enums bound with Registry::enum_; classes registered with "    \
  "Registry::class_, as T, T&, const T&, T* or std::shared_ptr<T>."

template <class T, bool result> constexpr bool check_bindable();
template <bool result, class... E>
constexpr bool check_all(type_pack<E...>) { return (check_bindable<E, result>() && ...); }
/// bindable(), with a static_assert saying why not. The failing instantiation names the type:
/// "[with T = std::__cxx11::list<int>]".
template <class T, bool result>
constexpr bool check_bindable() {
  constexpr BindProblem p = own_problem<T, result>();
  static_assert(p != BindProblem::character,
                "remoteable: a character type (char, wchar_t, char8_t, char16_t, char32_t) cannot be a parameter or "
                "result: use std::string for text, or an integer type such as std::int8_t." REMOTEABLE_SUPPORTED_TYPES);
  static_assert(p != BindProblem::byte,
                "remoteable: std::byte cannot be a parameter or result by itself: use remoteable::Bytes "
                "(std::vector<std::byte>) for binary data, or an integer type." REMOTEABLE_SUPPORTED_TYPES);
  static_assert(p != BindProblem::pointer,
                "remoteable: a pointer parameter or result must point to a class registered with Registry::class_ "
                "(T*, where none is nullptr) or be const char* (text); char*, int*, void* and function pointers are "
                "not converted." REMOTEABLE_SUPPORTED_TYPES);
  static_assert(p != BindProblem::shared_ptr,
                "remoteable: std::shared_ptr<T> parameters and results are for classes T registered with "
                "Registry::class_." REMOTEABLE_SUPPORTED_TYPES);
  static_assert(p != BindProblem::map_key,
                "remoteable: a std::map or std::unordered_map must have std::string keys (it travels as a map) or "
                "integer or enum keys (a list of [key, value] pairs); other key types are not converted."
                REMOTEABLE_SUPPORTED_TYPES);
  static_assert(p != BindProblem::duration_rep,
                "remoteable: a std::chrono::duration must count in an integer or floating-point type.");
  static_assert(p != BindProblem::std_type,
                "remoteable: this standard library type is not converted (std::list, std::deque, std::forward_list, "
                "std::multiset, std::multimap, std::variant, std::unique_ptr, std::weak_ptr, std::span, "
                "std::function and strings of other characters are not)." REMOTEABLE_SUPPORTED_TYPES);
  static_assert(p != BindProblem::other,
                "remoteable: this type cannot be a parameter or result (a union, a C array, a member pointer, or "
                "a type that is only a result, such as void, asio::awaitable or remoteable::Generator, used as a parameter)."
                REMOTEABLE_SUPPORTED_TYPES);
  if constexpr (p != BindProblem::none) return false;
  else return check_all<result>(typename elements_of<std::remove_cvref_t<T>>::type{});
}

/// Checks a signature at its registration: its result R and parameters P....
template <class R, class... P>
constexpr bool check_signature() {
  return (check_bindable<R, true>() & ... & check_bindable<P, false>());
}

}  // namespace remoteable::detail
