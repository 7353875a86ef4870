#pragma once
// The client's side of the value codec (rpc/codec.hpp). Decoding is here, inline: it runs for
// every evaluation that fetches a value (PeerConnection::decode; include this header where it
// is called). Encoding is in proxy/value_codec.cpp. Internal.

#include <string>
#include <utility>

#include "peer/detail/access.hpp"
#include "peer/detail/peer_connection.hpp"
#include "rpc/codec.hpp"
#include "rpc/kj_error.hpp"

namespace remoteable::detail {

/// The client's side of decoding: a Value tree; capabilities become new handles.
struct ValueDecoding {
  using Out = Value;
  using List = Value::List;
  using Map = Value::Map;
  PeerConnection& connection;
  int limit;
  int max_depth() const { return limit; }
  [[noreturn]] void too_deep() const { throw to_kj(detail::too_deep(limit, "from the server is refused")); }
  template <class S> void set(Value& slot, S&& scalar) { slot = Value(std::forward<S>(scalar)); }
  void set_list(Value& slot, List&& list) { slot = Value(std::move(list)); }
  void set_map(Value& slot, Map&& map) { slot = Value(std::move(map)); }
  Value& map_slot(Map& map, std::string key) { return map[std::move(key)]; }  // a repeated key: the last wins
  void handle(Value& slot, wire::Handle::Client cap) {
    auto state = connection.new_handle();
    connection.set_cap(state->id, kj::mv(cap));
    slot = access::handle(std::move(state));
  }
};

inline Value PeerConnection::decode(wire::Value::Reader v) {
  Value out;
  ValueDecoding sink{*this, options_.max_nesting};
  decode_value(v, out, sink);
  return out;
}

}  // namespace remoteable::detail
