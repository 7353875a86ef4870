#pragma once
// The built-in server-side types: boxed plain values, lists, maps, class objects and functions.

#include <cstdint>
#include <functional>
#include <memory>
#include <map>
#include <string>
#include <vector>

#include <asio/awaitable.hpp>

#include <remoteable/detail/object.hpp>

namespace remoteable {
class Handle;
}

namespace remoteable::detail::builtin {

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
  /// For a bound method (a method read as an attribute), the registered method it calls: its
  /// calls are measured with the method's (where a call runs); null for other functions.
  const void* method = nullptr;
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

/// A handle to a peer's object (a client's shared object, another server's object passed on
/// by a client) that came in a value or an argument: it holds the Handle that calls it. Server
/// code takes it as a remoteable::Handle parameter; sent back to a peer, it travels as the
/// capability it came as. Immutable: any strand may use it.
const TypeInfo& remote_type();
Object remote(Handle handle);
const Handle& remote_handle(const Object& o) noexcept;

/// The result of a coroutine method that has not finished: the server runs it on the actor's
/// strand and answers when it completes. Never reaches a client.
struct Pending {
  asio::awaitable<Object> run;
  /// Set by the server for a measured method: how the runs between its co_awaits are measured
  /// (its segments; internal).
  std::shared_ptr<void> segments;
};
const TypeInfo& pending_type();

/// What a method returning remoteable::Generator<T> gives: `next` resumes it and converts what
/// it yields, a null Object at its end. Iterated once (Handle.iterate takes it); it runs on its
/// actor, only as far as the client reads.
struct GeneratorBox {
  std::function<Object(Ctx&)> next;
  bool taken = false;
};
const TypeInfo& generator_type();
Object generator(std::function<Object(Ctx&)> next);
/// A Sequence over `elements` (a container's snapshot), in order, holding `bytes`.
std::unique_ptr<Sequence> snapshot(ObjectList elements, std::size_t bytes);
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

/// What the server knows of a value's structure. Boxed values are immutable, so it is computed
/// once, when a list or map is made, from its elements' shapes: no walk ever looks further than
/// one level, however deep the value or however often it shares an element.
struct Shape {
  /// Levels of lists and maps: 0 for a scalar or an object, 1 for [1], 2 for [[1]].
  std::uint32_t depth = 0;
  /// Only plain kinds inside (no object that stays remote).
  bool plain = true;
  /// The bytes get() makes of it, an element shared n times counted n times (saturating at
  /// max_shape_bytes): text and bytes their size, each list element sizeof(Plain), each map entry
  /// that, its key and a tree node.
  std::uint64_t expansion = 0;
};
/// Where Shape::expansion stops counting: far above any budget, far below overflow.
inline constexpr std::uint64_t max_shape_bytes = std::uint64_t{1} << 62;
Shape shape(const Object& o) noexcept;

/// The elements of a list (list_type) and the entries of a map (map_type).
const ObjectList& items(const Object& list) noexcept;
const ObjectMap& entries(const Object& map) noexcept;

/// Recomputes the shape of a list or map made by box() whose elements changed since (the
/// decoder fills in handles after boxing). Only for a value no one else has seen yet.
void reshape(const Object& container) noexcept;

/// True for the boxed plain kinds (none, bool, int64, float64, text, bytes, and lists and maps
/// of them): immutable values that any strand may read. O(1).
bool is_plain(const Object& o) noexcept;

/// The type name used in messages: a registered name or a built-in kind.
std::string_view type_name(const Object& o) noexcept;
/// The same, with a list's or map's element kinds: "list of text", "map of int64 and text",
/// "empty list" (from at most the first 1,000 elements).
std::string described_kind(const Object& o);

/// Built-in arithmetic and comparison; nullopt when neither side is a built-in that knows `op`.
std::optional<Object> binary(BinaryOp op, const Object& lhs, const Object& rhs);

/// The largest text or bytes value, and the longest list, that `+` joins: about what one message
/// carries at the default message limit. A longer result is a value error, so a few small calls
/// that double a value in turn cannot make the server allocate without bound.
inline constexpr std::size_t max_joined_bytes = 64u << 20;
inline constexpr std::size_t max_joined_elements = 8u << 20;

}  // namespace remoteable::detail::builtin
