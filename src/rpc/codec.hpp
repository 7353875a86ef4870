#pragma once
// The one codec of both sides: operators, steps and values between their C++ form and the
// generated wire types of schemas/remoteable.capnp. Internal.
//
// The mappings come from the lists in <remoteable/operators.hpp> and rpc/steps.hpp and are
// checked here against the generated enums: an operator or step missing on either side is a
// compile error.

#include <capnp/list.h>
#include <capnp/message.h>
#include <kj/common.h>

#include <concepts>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include <remoteable/value.hpp>
#include "rpc/kj_error.hpp"
#include "rpc/steps.hpp"
#include "rpc/wire_checks.hpp"
#include "schemas/remoteable.capnp.h"

namespace remoteable::detail {

// ---- operators and step kinds ----------------------------------------------------------------

#define REMOTEABLE_CHECK_OP(Enum, name, symbol, wire_name)                                 \
  static_assert(static_cast<unsigned>(wire::Enum::wire_name) == static_cast<unsigned>(Enum::name), \
                #Enum "::" #name " is not wire::" #Enum "::" #wire_name);
#define REMOTEABLE_CHECK_BINARY(name, symbol, wire_name) REMOTEABLE_CHECK_OP(BinaryOp, name, symbol, wire_name)
#define REMOTEABLE_CHECK_UNARY(name, symbol, wire_name) REMOTEABLE_CHECK_OP(UnaryOp, name, symbol, wire_name)
REMOTEABLE_BINARY_OPS(REMOTEABLE_CHECK_BINARY)
REMOTEABLE_UNARY_OPS(REMOTEABLE_CHECK_UNARY)
#undef REMOTEABLE_CHECK_BINARY
#undef REMOTEABLE_CHECK_UNARY
#undef REMOTEABLE_CHECK_OP
#define REMOTEABLE_CHECK_STEP(name, wire_name)                                                         \
  static_assert(static_cast<unsigned>(wire::Handle::Step::wire_name) == static_cast<unsigned>(StepKind::name), \
                "StepKind::" #name " is not wire::Handle::Step::" #wire_name);
REMOTEABLE_STEPS(REMOTEABLE_CHECK_STEP)
#undef REMOTEABLE_CHECK_STEP

inline wire::BinaryOp to_wire(BinaryOp op) noexcept { return static_cast<wire::BinaryOp>(op); }
inline wire::UnaryOp to_wire(UnaryOp op) noexcept { return static_cast<wire::UnaryOp>(op); }

// Enums arrive as raw 16-bit codes: a peer may send one this schema does not know.
inline BinaryOp from_wire(wire::BinaryOp op) {
  auto code = static_cast<unsigned>(op);
  if (code >= binary_op_count) throw to_kj(RemoteError(ErrorKind::value, "unknown binary operator code " + std::to_string(code)));
  return static_cast<BinaryOp>(code);
}
inline UnaryOp from_wire(wire::UnaryOp op) {
  auto code = static_cast<unsigned>(op);
  if (code >= unary_op_count) throw to_kj(RemoteError(ErrorKind::value, "unknown unary operator code " + std::to_string(code)));
  return static_cast<UnaryOp>(code);
}

inline std::string text(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }
inline capnp::Text::Reader text(const std::string& s) { return capnp::Text::Reader(s.data(), s.size()); }

// ---- values ----------------------------------------------------------------------------------

/// The value error for a value deeper than max_nesting; `what` says which way it went.
inline RemoteError too_deep(int limit, std::string_view what) {
  return RemoteError(ErrorKind::value, "a value nested more than " + std::to_string(limit) + " lists or maps deep " +
                                           std::string(what) + " (limit max_nesting)");
}

/// Writes `value` into `out`. A handle in it becomes the capability `cap(handle)` returns. A list
/// or map deeper than `max_depth` levels throws a value error before anything of it is written.
template <class H, class Cap>
void encode_value(wire::Value::Builder out, const BasicValue<H>& value, Cap& cap, int max_depth, int depth = 0) {
  using V = BasicValue<H>;
  std::visit(
      [&](const auto& x) {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::same_as<X, None>) out.setNone();
        else if constexpr (std::same_as<X, bool>) out.setBool(x);
        else if constexpr (std::same_as<X, std::int64_t>) out.setInt64(x);
        else if constexpr (std::same_as<X, double>) out.setFloat64(x);
        else if constexpr (std::same_as<X, std::string>) out.setText(text(x));
        else if constexpr (std::same_as<X, Bytes>)
          out.setBytes(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(x.data()), x.size()));
        else if constexpr (std::same_as<X, typename V::List>) {
          if (depth >= max_depth) throw too_deep(max_depth, "cannot be sent");
          auto list = out.initList(static_cast<unsigned>(x.size()));
          for (unsigned i = 0; i < x.size(); ++i) encode_value(list[i], x[i], cap, max_depth, depth + 1);
        } else if constexpr (std::same_as<X, typename V::Map>) {
          if (depth >= max_depth) throw too_deep(max_depth, "cannot be sent");
          auto map = out.initMap(static_cast<unsigned>(x.size()));
          unsigned i = 0;
          for (auto& [k, e] : x) {
            map[i].setKey(text(k));
            encode_value(map[i].initValue(), e, cap, max_depth, depth + 1);
            ++i;
          }
        } else if constexpr (std::same_as<X, H>) {
          out.setHandle(cap(x));
        }
      },
      value.storage());
}

/// What a side decodes values into. `Out` is its value type; `List` and `Map` its containers.
///   int max_depth(); [[noreturn]] void too_deep();
///   void set(Out& slot, S scalar)    for None, bool, std::int64_t, double, std::string, Bytes
///   void set_list(Out& slot, List&&), void set_map(Out& slot, Map&&)
///   Out& map_slot(Map&, std::string key)     (a repeated key: the side's rule)
///   void handle(Out& slot, wire::Handle::Client)
template <class S>
concept ValueSink = requires(S s, typename S::Out& slot, typename S::Map& map) {
  { s.max_depth() } -> std::convertible_to<int>;
  s.set(slot, None{});
  s.set_list(slot, typename S::List(0));
  s.set_map(slot, typename S::Map());
  { s.map_slot(map, std::string()) } -> std::same_as<typename S::Out&>;
  s.handle(slot, std::declval<wire::Handle::Client>());
};

/// Reads `v`, `depth` lists or maps deep, into `slot`, in one pass over the message (Cap'n
/// Proto charges every read against the traversal limit, so each pointer is read once). Refuses
/// a list or map deeper than the sink's max_depth before recursing further, so the stack is
/// bounded by it, and lists that claim zero-sized elements (see zero_sized_elements).
template <ValueSink Sink>
void decode_value(wire::Value::Reader v, typename Sink::Out& slot, Sink& sink, int depth = 0) {
  switch (v.which()) {
    case wire::Value::NONE: sink.set(slot, None{}); return;
    case wire::Value::BOOL: sink.set(slot, v.getBool()); return;
    case wire::Value::INT64: sink.set(slot, static_cast<std::int64_t>(v.getInt64())); return;
    case wire::Value::FLOAT64: sink.set(slot, v.getFloat64()); return;
    case wire::Value::TEXT: sink.set(slot, text(v.getText())); return;
    case wire::Value::BYTES: {
      auto d = v.getBytes();
      Bytes b(d.size());
      if (!b.empty()) std::memcpy(b.data(), d.begin(), d.size());
      sink.set(slot, std::move(b));
      return;
    }
    case wire::Value::LIST: {
      if (depth >= sink.max_depth()) sink.too_deep();
      auto list = v.getList();
      if (zero_sized_elements(list)) throw to_kj(zero_sized_error(list.size()));
      typename Sink::List out(list.size());  // sized once: a sink may keep pointers into it
      for (unsigned i = 0; i < list.size(); ++i) decode_value(list[i], out[i], sink, depth + 1);
      sink.set_list(slot, std::move(out));
      return;
    }
    case wire::Value::MAP: {
      if (depth >= sink.max_depth()) sink.too_deep();
      auto map = v.getMap();
      if (zero_sized_elements(map)) throw to_kj(zero_sized_error(map.size()));
      typename Sink::Map out;
      for (auto e : map) decode_value(e.getValue(), sink.map_slot(out, text(e.getKey())), sink, depth + 1);
      sink.set_map(slot, std::move(out));
      return;
    }
    case wire::Value::HANDLE: sink.handle(slot, v.getHandle()); return;
  }
  throw to_kj(RemoteError(ErrorKind::type, "unknown value kind on the wire"));
}

// ---- steps -----------------------------------------------------------------------------------

/// Fills what `step` carries into `p`: the parameters of the Handle method of the step's kind,
/// or a chain step's CallStep or BinaryStep. Each operand goes through `operand(builder, value)`.
template <class P, class V, class Operand>
void encode_fields(P&& p, const BasicStep<V>& step, Operand& operand) {
  if constexpr (requires { p.setName(capnp::Text::Reader()); }) p.setName(text(step.name));
  if constexpr (requires { p.initArgs(0u); }) {
    auto args = p.initArgs(static_cast<unsigned>(step.operands.size()));
    for (unsigned i = 0; i < args.size(); ++i) operand(args[i], step.operands[i]);
  }
  if constexpr (requires { p.initKey(); }) operand(p.initKey(), step.operands.at(0));
  if constexpr (requires { p.initOperand(); }) operand(p.initOperand(), step.operands.at(0));
  if constexpr (requires { p.setReflected(true); }) p.setReflected(step.reflected);
  if constexpr (requires { p.setStart(0); }) {
    p.setStart(step.start);
    p.setStop(step.stop);
  }
  if constexpr (requires { p.setOp(wire::BinaryOp{}); }) p.setOp(to_wire(step.binary_op));
  else if constexpr (requires { p.setOp(wire::UnaryOp{}); }) p.setOp(to_wire(step.unary_op));
}

/// Writes `step` as one element of a Handle.chain call.
template <class V, class Operand>
void encode_step(wire::Handle::Step::Builder out, const BasicStep<V>& step, Operand& operand) {
  switch (step.kind) {
    case StepKind::attr: out.setAttr(text(step.name)); return;
    case StepKind::call: encode_fields(out.initCall(), step, operand); return;
    case StepKind::invoke: {
      auto args = out.initInvoke(static_cast<unsigned>(step.operands.size()));
      for (unsigned i = 0; i < args.size(); ++i) operand(args[i], step.operands[i]);
      return;
    }
    case StepKind::item: operand(out.initItem(), step.operands.at(0)); return;
    case StepKind::len: out.setLen(); return;
    case StepKind::binary: encode_fields(out.initBinary(), step, operand); return;
    case StepKind::unary: out.setUnary(to_wire(step.unary_op)); return;
    case StepKind::slice: encode_fields(out.initSlice(), step, operand); return;
  }
  throw RemoteError(ErrorKind::type, "unknown step");
}

/// The words a step takes in a request, roughly: a few per step and operand.
template <class V>
std::uint64_t step_words(const BasicStep<V>& step) {
  return 8 + step.name.size() / 8 + 8 * step.operands.size();
}
/// The first segment to ask for a request whose steps take `words` (Cap'n Proto's default is
/// 8 KiB, zeroed for each call): a small call zeroes and sends little; bigger values get further
/// segments as they need them.
inline capnp::MessageSize request_size(std::uint64_t words) { return capnp::MessageSize{8 + words, 0}; }

/// Makes the request of the Handle method for `step` on `target`, fills it, and returns
/// `send(request)` (a generic callable: each method has its own request type).
template <class V, class Operand, class Send>
decltype(auto) request_step(wire::Handle::Client& target, const BasicStep<V>& step, Operand& operand, Send&& send) {
  switch (step.kind) {
#define REMOTEABLE_REQUEST(name, wire_name)                              \
  case StepKind::name: {                                                 \
    auto request = target.name##Request(request_size(step_words(step))); \
    encode_fields(request, step, operand);                               \
    return send(request);                                                \
  }
    REMOTEABLE_STEPS(REMOTEABLE_REQUEST)
#undef REMOTEABLE_REQUEST
  }
  throw RemoteError(ErrorKind::type, "unknown step");
}

/// A step read off the wire, its operands not yet decoded: the server decodes them (resolving
/// the handles among them) into `step.operands` before it runs the step.
template <class V>
struct ReadStep {
  BasicStep<V> step;
  kj::Maybe<capnp::List<wire::Value>::Reader> args;  ///< call, invoke
  kj::Maybe<wire::Value::Reader> operand;            ///< item: the key; binary: the operand
};

/// Reads what a Handle method's parameters (or a chain step's CallStep or BinaryStep) carry.
template <class V, class P>
ReadStep<V> read_fields(StepKind kind, P p) {
  ReadStep<V> r{};
  r.step.kind = kind;
  if constexpr (requires { p.getName(); }) r.step.name = text(p.getName());
  if constexpr (requires { p.getArgs(); }) r.args = p.getArgs();
  if constexpr (requires { p.getKey(); }) r.operand = p.getKey();
  if constexpr (requires { p.getOperand(); }) r.operand = p.getOperand();
  if constexpr (requires { p.getReflected(); }) r.step.reflected = p.getReflected();
  if constexpr (requires { p.getStart(); }) {
    r.step.start = p.getStart();
    r.step.stop = p.getStop();
  }
  if constexpr (requires { { p.getOp() } -> std::same_as<wire::BinaryOp>; }) r.step.binary_op = from_wire(p.getOp());
  else if constexpr (requires { { p.getOp() } -> std::same_as<wire::UnaryOp>; }) r.step.unary_op = from_wire(p.getOp());
  return r;
}

/// Reads one element of a Handle.chain call.
template <class V>
ReadStep<V> read_step(wire::Handle::Step::Reader s) {
  ReadStep<V> r{BasicStep<V>{StepKind::len}, nullptr, nullptr};
  switch (s.which()) {
    case wire::Handle::Step::ATTR: r.step.kind = StepKind::attr; r.step.name = text(s.getAttr()); return r;
    case wire::Handle::Step::CALL: return read_fields<V>(StepKind::call, s.getCall());
    case wire::Handle::Step::INVOKE: r.step.kind = StepKind::invoke; r.args = s.getInvoke(); return r;
    case wire::Handle::Step::ITEM: r.step.kind = StepKind::item; r.operand = s.getItem(); return r;
    case wire::Handle::Step::LEN: return r;
    case wire::Handle::Step::BINARY: return read_fields<V>(StepKind::binary, s.getBinary());
    case wire::Handle::Step::UNARY: r.step.kind = StepKind::unary; r.step.unary_op = from_wire(s.getUnary()); return r;
    case wire::Handle::Step::SLICE: return read_fields<V>(StepKind::slice, s.getSlice());
  }
  throw to_kj(RemoteError(ErrorKind::value, "unknown chain step kind " + std::to_string(static_cast<unsigned>(s.which()))));
}

}  // namespace remoteable::detail
