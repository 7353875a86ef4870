#pragma once
// Checks on received values that Cap'n Proto's own limits do not make.

#include <capnp/any.h>

#include <string>

#include "rpc/error.hpp"

namespace remoteable::detail {

/// The most steps one Handle.chain call may carry (the client splits a longer chain).
inline constexpr std::size_t max_chain_steps = 1024;

/// True if `list` (a List of structs) claims elements of no size. Such a list costs a few bytes
/// on the wire however many elements it claims, and Cap'n Proto charges it only one word per
/// element against the traversal limit, so one small message could decode as millions of values.
/// No encoder of the schema writes one: a Value's union tag is in its data section, and a map
/// entry's key is a pointer.
template <class List>
bool zero_sized_elements(const List& list) {
  if (list.size() == 0) return false;
  capnp::AnyStruct::Reader first = list[0];
  return first.getDataSection().size() == 0 && first.getPointerSection().size() == 0;
}

/// The value error for such a list.
inline RemoteError zero_sized_error(std::size_t claimed) {
  return RemoteError(ErrorKind::value, "a list on the wire has zero-sized elements (" + std::to_string(claimed) +
                                           " claimed in no space); no encoder of the schema writes one");
}

}  // namespace remoteable::detail
