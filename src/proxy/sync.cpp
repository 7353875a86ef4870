#include "proxy/sync.hpp"

#include <asio/use_future.hpp>

namespace remoteable::sync {

Client::Client(Endpoint endpoint, ClientOptions options)
    : context_(std::make_shared<asio::io_context>(1)), work_(std::in_place, context_->get_executor()) {
  thread_ = std::thread([context = context_] { context->run(); });
  try {
    auto connect = [](asio::any_io_executor ex, Endpoint ep,
                      ClientOptions opts) -> asio::awaitable<std::optional<remoteable::Client>> {
      co_return co_await remoteable::Client::connect(ex, std::move(ep), std::move(opts));
    };
    client_ = asio::co_spawn(*context_, connect(context_->get_executor(), std::move(endpoint), std::move(options)),
                             asio::use_future)
                  .get();
  } catch (...) {
    work_.reset();
    thread_.join();
    throw;
  }
}

Client::~Client() { close(); }

void Client::close() {
  if (client_) {
    client_->close();
    // Let the loop run the close before the thread goes.
    asio::co_spawn(*context_, []() -> asio::awaitable<void> { co_return; }, asio::use_future).get();
    client_.reset();
  }
  work_.reset();
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> Client::browse() const {
  return asio::co_spawn(*context_, client_->browse(), asio::use_future).get();
}

void Client::attach(const Handle& handle, std::string_view name) const {
  asio::co_spawn(*context_, client_->attach(handle.async(), name), asio::use_future).get();
}

void Client::detach(std::string_view name) const {
  asio::co_spawn(*context_, client_->detach(name), asio::use_future).get();
}

}  // namespace remoteable::sync
