#pragma once
// remoteable::BasicValue: the value kinds that cross the wire by copy (DESIGN §3).
//
// The client sees `remoteable::Value` (= BasicValue<Handle>): a handle alternative holds a
// client-side Handle. The server uses the same template with its own object reference. A value
// is plain data: it owns no thread and may be moved between threads freely.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <remoteable/error.hpp>

namespace remoteable {

/// The "none" value (Python's None, an empty std::optional).
struct None {
  friend bool operator==(None, None) noexcept { return true; }
};

/// Binary data. Distinct from a list of integers.
using Bytes = std::vector<std::byte>;

/// Which alternative a value holds.
enum class ValueKind { none, boolean, int64, float64, text, bytes, list, map, handle };
std::string_view to_string(ValueKind kind) noexcept;

namespace detail {
template <class T> struct is_vector : std::false_type {};
template <class T, class A> struct is_vector<std::vector<T, A>> : std::true_type {};
template <class T> struct is_string_map : std::false_type {};
template <class T, class C, class A>
struct is_string_map<std::map<std::string, T, C, A>> : std::true_type {};
template <class T> struct is_optional : std::false_type {};
template <class T> struct is_optional<std::optional<T>> : std::true_type {};

template <class T>
concept plain_integer = std::integral<T> && !std::same_as<T, bool> && !std::same_as<T, char> &&
                        !std::same_as<T, char8_t> && !std::same_as<T, char16_t> &&
                        !std::same_as<T, char32_t> && !std::same_as<T, wchar_t>;
}  // namespace detail

template <class H>
class BasicValue {
 public:
  using List = std::vector<BasicValue>;
  using Map = std::map<std::string, BasicValue, std::less<>>;
  using Storage = std::variant<None, bool, std::int64_t, double, std::string, Bytes, List, Map, H>;

  BasicValue() = default;
  BasicValue(const BasicValue&) = default;
  BasicValue(BasicValue&&) noexcept = default;
  BasicValue& operator=(const BasicValue&) = default;
  BasicValue& operator=(BasicValue&&) noexcept = default;
  /// Not recursive: a value nested thousands deep is taken apart with a work list, not the stack.
  ~BasicValue() {
    if (holds<List>() || holds<Map>()) release_nested();
  }

  BasicValue(None) {}
  BasicValue(std::nullopt_t) {}
  BasicValue(std::nullptr_t) {}
  BasicValue(bool b) : v_(b) {}
  /// A character or a pointer would otherwise become a bool: say std::string(1, c), or pass
  /// the value itself.
  template <class C>
    requires std::same_as<C, char> || std::same_as<C, wchar_t> || std::same_as<C, char8_t> ||
             std::same_as<C, char16_t> || std::same_as<C, char32_t>
  BasicValue(C) = delete;
  template <class P>
    requires(!std::same_as<std::remove_cv_t<P>, char>)
  BasicValue(P*) = delete;
  template <detail::plain_integer I>
  BasicValue(I i) : v_(checked_int64(i)) {}
  template <std::floating_point F>
  BasicValue(F f) : v_(static_cast<double>(f)) {}
  BasicValue(const char* s) : v_(std::string(s)) {}
  BasicValue(std::string s) : v_(std::move(s)) {}
  BasicValue(std::string_view s) : v_(std::string(s)) {}
  BasicValue(Bytes b) : v_(std::move(b)) {}
  BasicValue(List l) : v_(std::move(l)) {}
  BasicValue(Map m) : v_(std::move(m)) {}
  BasicValue(H h) : v_(std::move(h)) {}
  template <class T>
    requires(!std::same_as<T, BasicValue> && std::constructible_from<BasicValue, const T&>)
  BasicValue(const std::vector<T>& items) : v_(List(items.begin(), items.end())) {}
  template <class T>
    requires std::constructible_from<BasicValue, const T&>
  BasicValue(const std::map<std::string, T>& items) : v_(Map(items.begin(), items.end())) {}
  template <class T>
    requires std::constructible_from<BasicValue, const T&>
  BasicValue(const std::optional<T>& o) {
    if (o) *this = BasicValue(*o);
  }

  ValueKind kind() const noexcept { return static_cast<ValueKind>(v_.index()); }
  const Storage& storage() const noexcept { return v_; }
  Storage& storage() noexcept { return v_; }

  template <class T> bool holds() const noexcept { return std::holds_alternative<T>(v_); }

  /// Converts to T, or throws RemoteError (type kind, or value kind when out of range).
  /// T is any of: an integer, a floating point, bool, std::string, Bytes, None, H, BasicValue,
  /// std::vector<U>, std::map<std::string, U>, std::optional<U>, with U again one of these.
  template <class T> T as() const;

 private:
  static bool nonempty_container(const BasicValue& v) noexcept {
    if (auto* l = std::get_if<List>(&v.v_)) return !l->empty();
    if (auto* m = std::get_if<Map>(&v.v_)) return !m->empty();
    return false;
  }
  /// Moves every non-empty child container out into a work list and empties them there, so that
  /// each destructor below this one finds only empty containers.
  void release_nested() noexcept {
    std::vector<BasicValue> work;
    auto take = [&work](BasicValue& v) {
      if (auto* l = std::get_if<List>(&v.v_)) {
        for (auto& e : *l)
          if (nonempty_container(e)) work.push_back(std::move(e));
      } else if (auto* m = std::get_if<Map>(&v.v_)) {
        for (auto& [k, e] : *m)
          if (nonempty_container(e)) work.push_back(std::move(e));
      }
    };
    take(*this);
    while (!work.empty()) {
      BasicValue v = std::move(work.back());
      work.pop_back();
      take(v);
    }
  }

  template <class I> static std::int64_t checked_int64(I i) {
    if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(std::int64_t)) {
      if (i > static_cast<I>(std::numeric_limits<std::int64_t>::max()))
        throw RemoteError(ErrorKind::value, "integer does not fit in int64");
    }
    return static_cast<std::int64_t>(i);
  }
  [[noreturn]] void mismatch(std::string_view wanted) const {
    throw RemoteError(ErrorKind::type, "expected " + std::string(wanted) + ", got " +
                                           std::string(to_string(kind())));
  }

  Storage v_;
};

template <class H>
template <class T>
T BasicValue<H>::as() const {
  if constexpr (std::same_as<T, BasicValue>) {
    return *this;
  } else if constexpr (std::same_as<T, bool>) {
    if (auto* b = std::get_if<bool>(&v_)) return *b;
    mismatch("bool");
  } else if constexpr (detail::plain_integer<T>) {
    auto* i = std::get_if<std::int64_t>(&v_);
    if (!i) mismatch("int64");
    if (!std::in_range<T>(*i))
      throw RemoteError(ErrorKind::value, std::to_string(*i) + " does not fit the requested integer type");
    return static_cast<T>(*i);
  } else if constexpr (std::floating_point<T>) {
    if (auto* d = std::get_if<double>(&v_)) return static_cast<T>(*d);
    if (auto* i = std::get_if<std::int64_t>(&v_)) return static_cast<T>(*i);
    mismatch("float64");
  } else if constexpr (std::same_as<T, std::string>) {
    if (auto* s = std::get_if<std::string>(&v_)) return *s;
    mismatch("text");
  } else if constexpr (std::same_as<T, Bytes>) {
    if (auto* b = std::get_if<Bytes>(&v_)) return *b;
    mismatch("bytes");
  } else if constexpr (std::same_as<T, None>) {
    if (holds<None>()) return None{};
    mismatch("none");
  } else if constexpr (std::same_as<T, H>) {
    if (auto* h = std::get_if<H>(&v_)) return *h;
    mismatch("handle");
  } else if constexpr (detail::is_optional<T>::value) {
    if (holds<None>()) return std::nullopt;
    return as<typename T::value_type>();
  } else if constexpr (detail::is_vector<T>::value) {
    auto* l = std::get_if<List>(&v_);
    if (!l) mismatch("list");
    T out;
    out.reserve(l->size());
    for (auto& e : *l) out.push_back(e.template as<typename T::value_type>());
    return out;
  } else if constexpr (detail::is_string_map<T>::value) {
    auto* m = std::get_if<Map>(&v_);
    if (!m) mismatch("map");
    T out;
    for (auto& [k, e] : *m) out.emplace(k, e.template as<typename T::mapped_type>());
    return out;
  } else {
    static_assert(sizeof(T) == 0, "remoteable: as<T>() does not know this type");
  }
}

inline std::string_view to_string(ValueKind kind) noexcept {
  constexpr std::string_view names[] = {"none", "bool", "int64", "float64", "text",
                                        "bytes", "list", "map", "handle"};
  return names[static_cast<int>(kind)];
}

}  // namespace remoteable
