#pragma once
// The server's dynamic object model: Object (a typed reference to a live C++ object) and
// TypeInfo (what can be done with objects of one type).

#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <typeindex>
#include <vector>

#include <remoteable/description.hpp>
#include <remoteable/error.hpp>
#include <remoteable/operators.hpp>
#include <remoteable/value.hpp>

namespace remoteable {

class Registry;
namespace detail {
struct TypeInfo;
}  // namespace detail

/// A reference to a live server-side object. The shared_ptr keeps the object (or, for a borrowed
/// member, its owner: an aliasing shared_ptr) alive. Copyable, thread-agnostic; the object itself
/// may only be touched on its actor's strand.
struct Object {
  std::shared_ptr<void> ptr;
  const detail::TypeInfo* type = nullptr;

  template <class T> T& as() const { return *static_cast<T*>(ptr.get()); }
  bool is(const detail::TypeInfo& t) const noexcept { return type == &t; }
  explicit operator bool() const noexcept { return type != nullptr; }
};

// The dynamic object model behind Object: internal to the server and its binding templates.
namespace detail {

/// A value the server sends back by copy; objects inside it travel as capabilities.
using Plain = BasicValue<Object>;
using Args = std::span<const Object>;

/// What one operation may need besides its operands: the registry, and where to put results.
/// Lives on the actor's strand for the length of one operation.
struct Ctx {
  const Registry& registry;
  /// Set by an operation whose result starts a new actor (constructors, DESIGN §4 rule 1).
  bool fresh_actor = false;
};

[[noreturn]] void throw_error(ErrorKind kind, std::string message);

/// A registered class or bound enum that a signature or field names: a Server checks at its
/// construction that the registry has each (Registry::check_complete).
struct TypeUse {
  std::type_index type;
  const char* cpp_name;  ///< typeid(T).name()
  bool is_enum = false;
};

/// One callable signature of a method, constructor or function.
struct Overload {
  /// "(int64, Node)", for error messages. Computed when needed: classes registered after this
  /// overload still show their names.
  std::function<std::string(const Registry&)> signature;
  /// The result's kind, "Node", "none", for describe(); null: "value".
  std::function<std::string(const Registry&)> result;
  std::size_t arity = 0;
  /// How well `args` fit this overload's parameter kinds (arity already checked): -1 not at all,
  /// 0 exactly, 1 with conversions (int64 to float64).
  std::function<int(const Registry&, Args)> match;
  std::function<Object(Ctx&, const Object& self, Args)> invoke;
  /// Registered with remoteable::blocking: always runs on the actor pool, never inline on the
  /// network thread.
  bool blocking = false;
  /// The registered types its parameters and result name.
  std::vector<TypeUse> uses;
};

/// A named member of a registered type.
struct Member {
  enum class Kind { field, readonly_field, property, readonly_property, method };
  Kind kind = Kind::method;
  std::function<Object(Ctx&, const Object& self)> get;                      // fields, properties
  std::function<void(Ctx&, const Object& self, const Object& value)> set;   // null if read-only
  std::vector<Overload> overloads;                                          // methods
  /// Fields and properties: the value's kind, for describe(); null: "value".
  std::function<std::string(const Registry&)> value_kind;
  /// Fields and properties: the registered types their value names.
  std::vector<TypeUse> uses;
};
std::string_view to_string(Member::Kind kind) noexcept;

/// The elements of one object being read by a client (Handle.iterate): made by TypeInfo::iterate
/// on the object's actor, then read there a batch at a time, one batch at a time. A container's
/// is a snapshot taken when it is made; a generator's resumes the generator.
struct Sequence {
  virtual ~Sequence() = default;
  /// The next element, or a null Object once there are none. [actor]
  virtual Object next(Ctx& ctx) = 0;
  /// The bytes a snapshot holds (its elements, as charged when it was taken), which count
  /// against ServerOptions::max_snapshot_bytes_per_connection while the iteration lives; 0 for
  /// what holds no copy (a list read in place, a generator).
  std::size_t held_bytes = 0;
};

/// Everything the server can do with objects of one type. Built once at registration, then
/// read-only: it is shared by all threads without locking.
struct TypeInfo {
  std::string name;
  std::map<std::string, Member, std::less<>> members;
  std::vector<Overload> call;  ///< calling the object itself (class objects, functions)
  std::function<Object(Ctx&, BinaryOp, const Object& self, const Object& other, bool reflected)> binary;
  std::function<Object(Ctx&, UnaryOp, const Object& self)> unary;
  std::function<std::string(const Object&)> str;
  std::function<bool(const Object&)> truthy;
  std::function<Plain(const Object&)> to_plain;  ///< null: the object stays remote
  std::function<Object(Ctx&, const Object& self, const Object& key)> item;
  std::function<void(Ctx&, const Object& self, const Object& key, const Object& value)> set_item;
  std::function<std::size_t(const Object&)> len;
  /// Iteration (Handle.iterate, slice): null if the type has no elements to iterate.
  std::function<std::unique_ptr<Sequence>(Ctx&, const Object& self)> iterate;
};

/// The operations of DESIGN §2 on any object. Each runs on the object's actor strand and throws
/// RemoteError for protocol-level failures; user exceptions propagate as they are.
namespace ops {
Object attr(Ctx&, const Object& self, std::string_view name);
void set_attr(Ctx&, const Object& self, std::string_view name, const Object& value);
Object call(Ctx&, const Object& self, std::string_view name, Args args);
Object invoke(Ctx&, const Object& self, Args args);
Object item(Ctx&, const Object& self, const Object& key);
void set_item(Ctx&, const Object& self, const Object& key, const Object& value);
Object len(Ctx&, const Object& self);
Object binary(Ctx&, BinaryOp op, const Object& self, const Object& other, bool reflected);
Object unary(Ctx&, UnaryOp op, const Object& self);
/// get(), str(), == and converting an argument expand a value: a list that holds one long list
/// many times is small on the server and huge once converted. One top-level operation may
/// expand at most `max_expansion` bytes, counted as builtin::Shape::expansion counts them (what
/// get() really allocates: text and bytes their size, each list element sizeof(Plain), each map
/// entry that, its key and a node); past it, a value error. get() and argument conversion are
/// charged for the whole value before they make anything; str() and == element by element, each
/// element before it is made.
inline constexpr std::size_t max_expansion = 128u << 20;
/// The budget of one top-level expansion on this thread; nested ones share the outermost. They
/// run to the end without suspending, so a thread-local is exact.
class ExpansionBudget {
 public:
  ExpansionBudget() noexcept;
  ~ExpansionBudget();
  ExpansionBudget(const ExpansionBudget&) = delete;
  ExpansionBudget& operator=(const ExpansionBudget&) = delete;

 private:
  bool owner_;
  std::size_t left_ = max_expansion;
};
/// Charges `bytes` to the expansion in progress on this thread, or throws a value error naming
/// the limit. Outside one (no ExpansionBudget open), nothing is charged.
void charge_expansion(std::uint64_t bytes);
/// The value error of an expansion over the budget.
[[noreturn]] void expansion_error();
Plain get(const Object& self);
/// The elements of `self`, read by a client (a type error if it has none to iterate).
std::unique_ptr<Sequence> iterate(Ctx&, const Object& self);
/// A list of the elements of `self` from `start` to `stop` (exclusive), as Python's x[a:b]
/// (negative indices count from the end, both clamped); text and bytes slice their bytes.
Object slice(Ctx&, const Object& self, std::int64_t start, std::int64_t stop);
std::string str(const Object& self);
bool truthy(const Object& self);
/// Whether calling the method `name` of `self`, or `self` itself, may block (any overload was
/// registered with remoteable::blocking). Reads only registration data: any thread.
bool blocking(const Object& self, std::string_view name);
bool blocking(const Object& self);
/// Picks the overload that fits `args` best (exact kinds before conversions, then the first
/// registered), or throws a type error naming `what`, the signatures it takes and what it got.
const Overload& select(const Registry&, const std::vector<Overload>&, Args args, std::string_view what);
/// What describe() reports of `self`: its type, members with their kinds, value kinds and
/// signatures, and the signatures of calling it.
Description describe(const Registry&, const Object& self);
}  // namespace ops

/// A C++ type's name as written ("std::set<int, ...>"), from typeid(T).name(); the name itself
/// if it cannot be demangled.
std::string demangle(const char* mangled);

/// Maps a user exception to a RemoteError: out_of_range → index, invalid_argument/domain_error
/// → value, RemoteError stays itself, anything else → user ("TypeName: what()").
RemoteError to_remote_error(std::exception_ptr error);

}  // namespace detail
}  // namespace remoteable
