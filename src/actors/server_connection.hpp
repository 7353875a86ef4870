#pragma once
// ServerConnection: one accepted client connection, and the limits checked on it. Internal.

#include <kj/async.h>

#include <asio/ip/tcp.hpp>

#include <chrono>
#include <list>
#include <memory>
#include <string>

#include "actors/detail/server_core.hpp"
#include "rpc/connection.hpp"

namespace remoteable::detail {

/// One accepted client connection. Owned by the task that waits for its disconnect. Lives on
/// its lane's loop, where everything of it runs. [loop]
class ServerConnection {
 public:
  /// `address`: the peer's IP; `subject`: its verified TLS client certificate's, if any.
  ServerConnection(ServerCore& core, LaneTicket ticket, Connected connected, std::string peer, std::string address,
                   const std::string& subject);
  ~ServerConnection();
  /// Resolves when the peer disconnects or the server closes the connection.
  kj::Promise<void> on_disconnect();
  /// Closes the socket and ends the connection's task, whether or not RPC is reading now.
  void close();
  /// Ends the connection telling the peer why (an Abort with a `disconnected` error saying "the
  /// server closed the connection: REASON"); the RPC system shuts the stream down. A second
  /// call, or one with RPC gone, closes at once.
  void end_with(std::string reason);
  /// True when nothing waits to be written to the peer.
  bool flushed();
  /// Folds this connection's most bytes queued into the server's high-water mark.
  void note_peak();
  /// Closes the connection if it broke a limit: idle too long, not reading its answers, or not
  /// authenticated in time (ServerAuth::timeout).
  void check(std::chrono::steady_clock::time_point now);

 private:
  ServerCore& core_;
  LaneTicket ticket_;
  std::string peer_;
  std::shared_ptr<Budget> budget_;
  kj::Maybe<RpcConnection> rpc_;
  kj::Own<kj::PromiseFulfiller<void>> close_;
  bool ending_ = false;  // end_with() ran: the RPC system is ending the connection
  std::list<ServerConnection*>& list_;  // its lane's connections (for the sweep)
  std::list<ServerConnection*>::iterator self_;
};

}  // namespace remoteable::detail
