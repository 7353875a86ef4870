// remoteable::Value on its own: which C++ values make which kinds, and how as<T> converts back.

#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <remoteable/remoteable.hpp>

using remoteable::Bytes;
using remoteable::ErrorKind;
using remoteable::None;
using remoteable::Value;
using remoteable::ValueKind;

namespace {

ErrorKind error_of(auto convert) {
  try {
    convert();
  } catch (const remoteable::RemoteError& e) {
    return e.kind();
  }
  FAIL("expected a RemoteError");
  return ErrorKind::user;
}

}  // namespace

// A character or a pointer would silently become a bool; they do not compile instead.
static_assert(!std::is_constructible_v<Value, char>);
static_assert(!std::is_constructible_v<Value, wchar_t>);
static_assert(!std::is_constructible_v<Value, char8_t>);
static_assert(!std::is_constructible_v<Value, int*>);
static_assert(!std::is_constructible_v<Value, const void*>);
static_assert(!std::is_constructible_v<Value, std::vector<char>>);
static_assert(std::is_constructible_v<Value, const char*>);
static_assert(std::is_constructible_v<Value, char*>);
static_assert(std::is_constructible_v<Value, signed char>);  // a small integer
static_assert(std::is_constructible_v<Value, std::vector<std::vector<std::string>>>);
static_assert(std::is_constructible_v<Value, std::map<std::string, std::optional<double>>>);
// Handle operators take exactly what a Value takes.
static_assert(!remoteable::detail::operand<char>);
static_assert(remoteable::detail::operand<std::int64_t>);

TEST_CASE("each C++ value makes the value kind it names") {
  CHECK(Value().kind() == ValueKind::none);
  CHECK(Value(None{}).kind() == ValueKind::none);
  CHECK(Value(std::nullopt).kind() == ValueKind::none);
  CHECK(Value(nullptr).kind() == ValueKind::none);
  CHECK(Value(true).kind() == ValueKind::boolean);
  CHECK(Value(1).kind() == ValueKind::int64);
  CHECK(Value(std::uint16_t{1}).kind() == ValueKind::int64);
  CHECK(Value(static_cast<signed char>(-1)).as<std::int64_t>() == -1);
  CHECK(Value(1.5f).kind() == ValueKind::float64);
  CHECK(Value(1.5).kind() == ValueKind::float64);
  CHECK(Value("text").kind() == ValueKind::text);
  char buffer[] = "mutable";
  CHECK(Value(static_cast<char*>(buffer)).as<std::string>() == "mutable");
  CHECK(Value(std::string("text")).kind() == ValueKind::text);
  CHECK(Value(std::string_view("text")).kind() == ValueKind::text);
  CHECK(Value(Bytes{std::byte{1}}).kind() == ValueKind::bytes);
  CHECK(Value(std::vector<std::int64_t>{1, 2}).kind() == ValueKind::list);
  CHECK(Value(Value::List{1, "a"}).kind() == ValueKind::list);
  CHECK(Value(std::map<std::string, double>{{"a", 1}}).kind() == ValueKind::map);
  CHECK(Value(std::optional<std::int64_t>{}).kind() == ValueKind::none);
  CHECK(Value(std::optional<std::int64_t>{3}).kind() == ValueKind::int64);
  CHECK(Value(remoteable::Handle{}).kind() == ValueKind::handle);
}

TEST_CASE("an unsigned integer beyond int64 is a value error when the Value is made") {
  CHECK(Value(std::uint64_t{std::numeric_limits<std::int64_t>::max()}).as<std::int64_t>() ==
        std::numeric_limits<std::int64_t>::max());
  CHECK(error_of([] { return Value(std::numeric_limits<std::uint64_t>::max()); }) == ErrorKind::value);
}

TEST_CASE("as<T> converts back to C++ and reports mismatches as type errors") {
  CHECK(Value(5).as<int>() == 5);
  CHECK(Value(5).as<double>() == 5.0);
  CHECK(Value(2.5).as<float>() == 2.5f);
  CHECK(Value(false).as<bool>() == false);
  CHECK(Value("x").as<std::string>() == "x");
  CHECK(Value(Bytes{std::byte{3}}).as<Bytes>() == Bytes{std::byte{3}});
  CHECK(Value(None{}).as<std::optional<std::string>>() == std::nullopt);
  CHECK(Value("x").as<std::optional<std::string>>() == "x");
  Value nested(std::map<std::string, std::vector<std::int64_t>>{{"a", {1, 2}}, {"b", {}}});
  CHECK(nested.as<std::map<std::string, std::vector<std::int64_t>>>() ==
        std::map<std::string, std::vector<std::int64_t>>{{"a", {1, 2}}, {"b", {}}});
  CHECK(nested.as<Value>().kind() == ValueKind::map);
  CHECK(nested.as<std::map<std::string, Value>>().size() == 2);

  CHECK(error_of([] { return Value(1.5).as<std::int64_t>(); }) == ErrorKind::type);
  CHECK(error_of([] { return Value(1).as<bool>(); }) == ErrorKind::type);
  CHECK(error_of([] { return Value(1).as<std::string>(); }) == ErrorKind::type);
  CHECK(error_of([] { return Value("x").as<Bytes>(); }) == ErrorKind::type);
  CHECK(error_of([] { return Value(1).as<None>(); }) == ErrorKind::type);
  CHECK(error_of([] { return Value(1).as<remoteable::Handle>(); }) == ErrorKind::type);
  CHECK(error_of([] { return Value(std::vector<std::int64_t>{1}).as<std::map<std::string, std::int64_t>>(); }) ==
        ErrorKind::type);
  CHECK(error_of([] { return Value(Value::List{1, "a"}).as<std::vector<std::int64_t>>(); }) == ErrorKind::type);
  CHECK(error_of([] { return Value(300).as<std::uint8_t>(); }) == ErrorKind::value);
  CHECK(error_of([] { return Value(-1).as<std::uint64_t>(); }) == ErrorKind::value);
  try {
    (void)Value("x").as<std::int64_t>();
  } catch (const remoteable::RemoteError& e) {
    CHECK(e.message() == "expected int64, got text");
  }
}

TEST_CASE("value kinds have names") {
  CHECK(remoteable::to_string(ValueKind::none) == "none");
  CHECK(remoteable::to_string(ValueKind::float64) == "float64");
  CHECK(remoteable::to_string(ValueKind::handle) == "handle");
}
