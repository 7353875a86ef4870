#pragma once
// Checks on received values that Cap'n Proto's own limits do not make.

#include <capnp/any.h>

#include <string>

#include <remoteable/error.hpp>

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

/// The Cap'n Proto nesting limit (pointer levels) that lets a value nest `value_levels` lists or
/// maps deep: a list level costs two pointer levels (the list, its struct element), a map level
/// three (the list, the entry, the entry's value), and the RPC envelope a few. Both sides set it
/// from their `max_nesting` (counted in value levels) and check value levels themselves, so a
/// value too deep is refused with a typed error before Cap'n Proto's own limit is reached.
inline int reader_nesting_limit(int value_levels) { return 3 * value_levels + 32; }

/// The largest `max_nesting` either side accepts: every walk of a value recurses once per level,
/// and this keeps that well inside a thread's stack.
inline constexpr int max_nesting_limit = 1000;

/// The value error for such a list.
inline RemoteError zero_sized_error(std::size_t claimed) {
  return RemoteError(ErrorKind::value, "a list on the wire has zero-sized elements (" + std::to_string(claimed) +
                                           " claimed in no space); no encoder of the schema writes one");
}

}  // namespace remoteable::detail
