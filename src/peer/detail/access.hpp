#pragma once
// detail::access: how the client's internals outside Client and PeerConnection reach a
// Handle's state, which is no public member (Boost.MySQL's detail::access).

#include <memory>
#include <utility>

#include <remoteable/handle.hpp>

namespace remoteable::detail {

struct access {
  static const std::shared_ptr<HandleState>& state(const Handle& handle) noexcept { return handle.state_; }
  static Handle handle(std::shared_ptr<HandleState> state) { return Handle(std::move(state)); }
};

}  // namespace remoteable::detail
