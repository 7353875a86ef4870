#pragma once
// Outcome: what an operation on an actor hands back to the network loop (plain data only). Internal.

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

#include <remoteable/description.hpp>
#include <remoteable/detail/builtins.hpp>
#include <remoteable/detail/object.hpp>
#include <remoteable/error.hpp>
#include "schemas/remoteable.capnp.h"

namespace remoteable::detail {

/// An operation's result that starts a new actor (a constructed object, DESIGN §4 rule 1).
struct FreshObject {
  Object object;
};

/// A result and its evaluation, for a step sent with `fetch` (made on the actor's strand, right
/// after the step).
struct Fetched {
  Object object;
  std::variant<Plain, std::string, bool> value;  ///< as get, str or truthy
  bool fresh = false;  ///< the object starts a new actor
};

/// What an operation on an actor sends back to the network loop: plain data only.
using Outcome = std::variant<None, Object, FreshObject, Plain, std::string, bool, Description, Fetched>;

template <class T>
T take(Outcome& o) {
  return std::get<T>(std::move(o));
}

/// What an operation that made `result` hands to the loop: evaluated as `fetch` asks, and
/// marked when it starts a new actor. [actor]
inline Outcome object_outcome(Object result, wire::Handle::Fetch fetch, bool fresh, int max_depth) {
  // A method may wrap what it was given (return [x]): depth built one call at a time is bounded
  // here, where each result is made, as the decoder bounds what arrives.
  if (auto depth = builtin::shape(result).depth; depth > static_cast<std::uint32_t>(max_depth))
    throw RemoteError(ErrorKind::value, "the result is nested " + std::to_string(depth) + " lists or maps deep, more than " +
                                            std::to_string(max_depth) + " (limit max_nesting)");
  switch (fetch) {
    case wire::Handle::Fetch::NONE: break;
    case wire::Handle::Fetch::TEXT: {
      auto text = ops::str(result);
      return Fetched{std::move(result), std::move(text), fresh};
    }
    case wire::Handle::Fetch::TRUTH: {
      bool truth = ops::truthy(result);
      return Fetched{std::move(result), truth, fresh};
    }
    default: {
      auto value = ops::get(result);
      return Fetched{std::move(result), std::move(value), fresh};
    }
  }
  if (fresh) return FreshObject{std::move(result)};
  return result;
}

}  // namespace remoteable::detail
