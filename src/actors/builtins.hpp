#pragma once
// The built-in server-side types: boxed plain values, lists, maps, class objects and functions.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <asio/awaitable.hpp>

#include "actors/object.hpp"

namespace remoteable::builtin {

using ObjectList = std::vector<Object>;
using ObjectMap = std::map<std::string, Object, std::less<>>;

/// A registered class as an object: calling it constructs an instance.
struct ClassObject {
  const TypeInfo* type;
  std::vector<Overload> constructors;
};

/// A free function exported by name.
struct Function {
  std::string name;
  std::vector<Overload> overloads;
};

const TypeInfo& none_type();
const TypeInfo& bool_type();
const TypeInfo& int64_type();
const TypeInfo& float64_type();
const TypeInfo& text_type();
const TypeInfo& bytes_type();
const TypeInfo& list_type();
const TypeInfo& map_type();
const TypeInfo& class_type();
const TypeInfo& function_type();

/// The result of a coroutine method that has not finished: the server runs it on the actor's
/// strand and answers when it completes. Never reaches a client.
struct Pending {
  asio::awaitable<Object> run;
};
const TypeInfo& pending_type();
Object pending(asio::awaitable<Object> run);

Object none();
Object box(bool v);
Object box(std::int64_t v);
Object box(double v);
Object box(std::string v);
Object box(Bytes v);
Object box(ObjectList v);
Object box(ObjectMap v);
/// Boxes a plain value; its handle alternatives are taken as they are.
Object box(const Plain& v);

/// True for the boxed plain kinds (none, bool, int64, float64, text, bytes, and lists and maps
/// of them): immutable values that any strand may read.
bool is_plain(const Object& o) noexcept;

/// The type name used in messages: a registered name or a built-in kind.
std::string_view type_name(const Object& o) noexcept;

/// Built-in arithmetic and comparison; nullopt when neither side is a built-in that knows `op`.
std::optional<Object> binary(BinaryOp op, const Object& lhs, const Object& rhs);

/// The largest text or bytes value, and the longest list, that `+` joins: about what one message
/// carries at the default message limit. A longer result is a value error, so a few small calls
/// that double a value in turn cannot make the server allocate without bound.
inline constexpr std::size_t max_joined_bytes = 64u << 20;
inline constexpr std::size_t max_joined_elements = 8u << 20;

std::string_view to_string(BinaryOp op) noexcept;
std::string_view to_string(UnaryOp op) noexcept;

}  // namespace remoteable::builtin
