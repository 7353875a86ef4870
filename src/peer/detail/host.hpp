#pragma once
// PeerHost: this side's objects served to the peer of one connection (a client's shared
// objects). The interface lives here, in the shared layer; the object model that implements it
// is the server library's, reached through the Registry (detail::make_peer_host), so a client
// that shares nothing links no server code. Internal.

#include <capnp/capability.h>

#include <remoteable/detail/object.hpp>
#include "schemas/remoteable.capnp.h"

namespace remoteable::detail {

/// Ownership and threads: owned by the PeerConnection whose peer calls its objects; every
/// method on that connection's loop. close() comes before the RPC system goes.
class PeerHost {
 public:
  virtual ~PeerHost() = default;
  /// A capability for `object`, owned by a new actor (or the one that owns it already),
  /// counted against the host's limits. [loop]
  virtual wire::Handle::Client share(const Object& object) = 0;
  /// Drops every capability and call of the connection; calls still running on actors find
  /// nothing to answer. [loop]
  virtual void close() = 0;
  /// Capabilities to this side's shared objects alive (held by the peer, or by this side's own
  /// handles from share()), for leak checks. Any thread.
  virtual std::size_t live_handles() const = 0;
};

}  // namespace remoteable::detail
