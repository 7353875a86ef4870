#pragma once
// A step: one operation that makes a new object from a handle's object, as both sides describe
// it. The client sends one as a call of its own or as an element of a Handle.chain call; the
// server runs it. rpc/codec.hpp puts it on the wire and reads it back.

#include <remoteable/operators.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

/// X(name, WIRE): the step kinds, named as the Handle interface's methods and the Step union's
/// members are (the wire mapping is checked in rpc/codec.hpp).
#define REMOTEABLE_STEPS(X) \
  X(attr, ATTR)             \
  X(call, CALL)             \
  X(invoke, INVOKE)         \
  X(item, ITEM)             \
  X(len, LEN)               \
  X(binary, BINARY)         \
  X(unary, UNARY)           \
  X(slice, SLICE)

namespace remoteable::detail {

#define REMOTEABLE_ENUMERATOR(name, wire) name,
enum class StepKind { REMOTEABLE_STEPS(REMOTEABLE_ENUMERATOR) };
#undef REMOTEABLE_ENUMERATOR

constexpr std::string_view to_string(StepKind kind) noexcept {
  switch (kind) {
#define REMOTEABLE_NAME(name, wire) \
  case StepKind::name: return #name;
    REMOTEABLE_STEPS(REMOTEABLE_NAME)
#undef REMOTEABLE_NAME
  }
  return "?";
}

/// A step with its operands as values of one side: the client's Value, the server's Object.
template <class V>
struct BasicStep {
  StepKind kind;
  std::string name{};       ///< attr, call
  std::vector<V> operands{};  ///< call, invoke: the arguments; item: the key; binary: the operand
  BinaryOp binary_op = BinaryOp::add;
  UnaryOp unary_op = UnaryOp::neg;
  bool reflected = false;
  std::int64_t start = 0, stop = 0;  ///< slice
};

}  // namespace remoteable::detail
