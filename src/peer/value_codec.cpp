// The client's side of encoding values (rpc/codec.hpp): PeerConnection::encode. Handles in a
// value must belong to this connection.

#include "peer/detail/value_codec.hpp"

namespace remoteable::detail {

void PeerConnection::encode(wire::Value::Builder out, const Value& value) {
  auto cap = [this](const Handle& h) -> wire::Handle::Client& { return cap_of(h); };
  encode_value(out, value, cap, options_.max_nesting);
}

}  // namespace remoteable::detail
