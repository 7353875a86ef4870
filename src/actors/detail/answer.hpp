#pragma once
// What the capability servers share about a call's parameters and its answer. Internal.

#include <capnp/message.h>

#include <string>

#include <remoteable/error.hpp>
#include "rpc/kj_error.hpp"
#include "schemas/remoteable.capnp.h"

namespace remoteable::detail {

/// `fetch` as received, refused (a value error) if it is no code of the schema.
inline wire::Handle::Fetch checked(wire::Handle::Fetch fetch) {
  auto code = static_cast<unsigned>(fetch);
  if (code > static_cast<unsigned>(wire::Handle::Fetch::TRUTH))
    throw to_kj(RemoteError(ErrorKind::value, "unknown fetch code " + std::to_string(code)));
  return fetch;
}

// A size hint for results that are a handle and little else: Cap'n Proto keeps the results
// message of an answer that carries a capability until the client sends Finish, and without a
// hint its first segment is 1024 words (8 KiB) however little it holds.
inline constexpr capnp::MessageSize small_results{16, 1};

}  // namespace remoteable::detail
