#pragma once
// Which standard library types the binding converts, and how each is shaped on the wire: the
// traits that ArgConv, to_object, the kind names and the compile-time checks share.

#include <array>
#include <chrono>
#include <cstddef>
#include <deque>
#include <forward_list>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <ratio>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>

#include <remoteable/value.hpp>

namespace remoteable::detail {

/// std::pair and std::tuple: a list of exactly their size, element by element.
template <class T> struct is_tuple_like : std::false_type {};
template <class A, class B> struct is_tuple_like<std::pair<A, B>> : std::true_type {};
template <class... T> struct is_tuple_like<std::tuple<T...>> : std::true_type {};

/// std::array: a list of exactly N elements.
template <class T> struct is_std_array : std::false_type {};
template <class T, std::size_t N> struct is_std_array<std::array<T, N>> : std::true_type {};

/// std::set and std::unordered_set: a list of distinct elements.
template <class T> struct is_set : std::false_type {};
template <class T, class C, class A> struct is_set<std::set<T, C, A>> : std::true_type {};
template <class T, class H, class E, class A> struct is_set<std::unordered_set<T, H, E, A>> : std::true_type {};

/// std::map and std::unordered_map, whatever their key.
template <class T> struct is_keyed_map : std::false_type {};
template <class K, class V, class C, class A> struct is_keyed_map<std::map<K, V, C, A>> : std::true_type {};
template <class K, class V, class H, class E, class A>
struct is_keyed_map<std::unordered_map<K, V, H, E, A>> : std::true_type {};

/// Hash containers: a hostile client chooses keys that share a bucket (see max_bucket_chain).
template <class T> struct is_unordered : std::false_type {};
template <class T, class H, class E, class A> struct is_unordered<std::unordered_set<T, H, E, A>> : std::true_type {};
template <class K, class V, class H, class E, class A>
struct is_unordered<std::unordered_map<K, V, H, E, A>> : std::true_type {};

/// A key that travels as an int64 or as an enum's name: maps with such keys are lists of
/// [key, value] pairs (a wire map's keys are text).
template <class K>
concept pair_key = plain_integer<K> || (std::is_enum_v<K> && !std::same_as<K, std::byte>);

template <class D> struct map_key_of { using type = void; };
template <class D> requires is_keyed_map<D>::value struct map_key_of<D> { using type = typename D::key_type; };

/// std::map / std::unordered_map with std::string keys: a wire map (std::map<std::string, V>
/// is the original case, is_string_map).
template <class D>
concept text_map = is_keyed_map<D>::value && std::same_as<typename map_key_of<D>::type, std::string>;
/// Maps with integer or enum keys: a list of [key, value] pairs.
template <class D>
concept pair_map = is_keyed_map<D>::value && pair_key<typename map_key_of<D>::type>;

/// std::chrono::duration: the count of its own unit (int64, or float64 for a floating Rep).
template <class T> struct is_duration : std::false_type {};
template <class R, class P> struct is_duration<std::chrono::duration<R, P>> : std::true_type {};

/// An enum bound with Registry::enum_: its registered name for each value, as text.
template <class T>
concept bound_enum = std::is_enum_v<T> && !std::same_as<T, std::byte>;

/// Standard types the binding does not convert. Listed so that they are not taken for classes
/// to register, which would compile and fail at the first call.
template <class T> struct is_unconverted_std : std::false_type {};
template <class T, class A> struct is_unconverted_std<std::list<T, A>> : std::true_type {};
template <class T, class A> struct is_unconverted_std<std::deque<T, A>> : std::true_type {};
template <class T, class A> struct is_unconverted_std<std::forward_list<T, A>> : std::true_type {};
template <class T, class C, class A> struct is_unconverted_std<std::multiset<T, C, A>> : std::true_type {};
template <class K, class V, class C, class A> struct is_unconverted_std<std::multimap<K, V, C, A>> : std::true_type {};
template <class T, class H, class E, class A>
struct is_unconverted_std<std::unordered_multiset<T, H, E, A>> : std::true_type {};
template <class K, class V, class H, class E, class A>
struct is_unconverted_std<std::unordered_multimap<K, V, H, E, A>> : std::true_type {};
template <class... T> struct is_unconverted_std<std::variant<T...>> : std::true_type {};
template <class T, class D> struct is_unconverted_std<std::unique_ptr<T, D>> : std::true_type {};
template <class T> struct is_unconverted_std<std::weak_ptr<T>> : std::true_type {};
template <class T, std::size_t N> struct is_unconverted_std<std::span<T, N>> : std::true_type {};
template <class F> struct is_unconverted_std<std::function<F>> : std::true_type {};
template <class T> struct is_unconverted_std<std::basic_string<T>> : std::bool_constant<!std::same_as<T, char>> {};

/// The standard types above that the binding converts as values (never registered classes).
template <class T>
concept std_value_type = is_tuple_like<T>::value || is_std_array<T>::value || is_set<T>::value ||
                         is_keyed_map<T>::value || is_duration<T>::value || is_unconverted_std<T>::value;

/// The unit of a duration as describe() names it: "milliseconds", or "1/30 seconds".
template <class Period>
std::string duration_unit() {
  using P = typename Period::type;
  if constexpr (std::is_same_v<P, std::nano>) return "nanoseconds";
  else if constexpr (std::is_same_v<P, std::micro>) return "microseconds";
  else if constexpr (std::is_same_v<P, std::milli>) return "milliseconds";
  else if constexpr (std::is_same_v<P, std::ratio<1>>) return "seconds";
  else if constexpr (std::is_same_v<P, std::ratio<60>>) return "minutes";
  else if constexpr (std::is_same_v<P, std::ratio<3600>>) return "hours";
  else if constexpr (std::is_same_v<P, std::ratio<86400>>) return "days";
  else if constexpr (P::den == 1) return std::to_string(P::num) + " seconds";
  else return std::to_string(P::num) + "/" + std::to_string(P::den) + " seconds";
}

}  // namespace remoteable::detail
