#pragma once
// The operators a handle offers (DESIGN §2): one list, from which come the enums, their
// spellings (describe, errors, trace, the CLI), the C++ operators on Handle, the operators
// user types are asked for, and the wire mapping (rpc/codec.hpp, checked there against the
// generated wire enums at compile time).

#include <cstddef>
#include <optional>
#include <string_view>

/// X(name, symbol, WIRE): the enumerator, the C++ operator token and the wire enumerant, in wire
/// order. A new operator is one line here (and one in schemas/remoteable.capnp).
#define REMOTEABLE_BINARY_OPS(X) \
  X(add, +, ADD)                 \
  X(sub, -, SUB)                 \
  X(mul, *, MUL)                 \
  X(div, /, DIV)                 \
  X(mod, %, MOD)                 \
  X(bit_and, &, BIT_AND)         \
  X(bit_or, |, BIT_OR)           \
  X(bit_xor, ^, BIT_XOR)         \
  X(shl, <<, SHL)                \
  X(shr, >>, SHR)                \
  X(eq, ==, EQ)                  \
  X(ne, !=, NE)                  \
  X(lt, <, LT)                   \
  X(le, <=, LE)                  \
  X(gt, >, GT)                   \
  X(ge, >=, GE)

#define REMOTEABLE_UNARY_OPS(X) \
  X(neg, -, NEG)                \
  X(invert, ~, INVERT)          \
  X(logical_not, !, NOT)

namespace remoteable {

#define REMOTEABLE_ENUMERATOR(name, symbol, wire) name,
enum class BinaryOp { REMOTEABLE_BINARY_OPS(REMOTEABLE_ENUMERATOR) };
enum class UnaryOp { REMOTEABLE_UNARY_OPS(REMOTEABLE_ENUMERATOR) };
#undef REMOTEABLE_ENUMERATOR

#define REMOTEABLE_COUNT(name, symbol, wire) +1
inline constexpr std::size_t binary_op_count = 0 REMOTEABLE_BINARY_OPS(REMOTEABLE_COUNT);
inline constexpr std::size_t unary_op_count = 0 REMOTEABLE_UNARY_OPS(REMOTEABLE_COUNT);
#undef REMOTEABLE_COUNT

/// The operator as C++ (and the CLI) spell it: "+", "<<", "!".
constexpr std::string_view spelling(BinaryOp op) noexcept {
  switch (op) {
#define REMOTEABLE_SPELLING(name, symbol, wire) \
  case BinaryOp::name: return #symbol;
    REMOTEABLE_BINARY_OPS(REMOTEABLE_SPELLING)
#undef REMOTEABLE_SPELLING
  }
  return "?";
}
constexpr std::string_view spelling(UnaryOp op) noexcept {
  switch (op) {
#define REMOTEABLE_SPELLING(name, symbol, wire) \
  case UnaryOp::name: return #symbol;
    REMOTEABLE_UNARY_OPS(REMOTEABLE_SPELLING)
#undef REMOTEABLE_SPELLING
  }
  return "?";
}

/// The binary operator spelled `symbol`, if there is one.
constexpr std::optional<BinaryOp> binary_op(std::string_view symbol) noexcept {
#define REMOTEABLE_PARSE(name, sym, wire) \
  if (symbol == #sym) return BinaryOp::name;
  REMOTEABLE_BINARY_OPS(REMOTEABLE_PARSE)
#undef REMOTEABLE_PARSE
  return std::nullopt;
}

}  // namespace remoteable
