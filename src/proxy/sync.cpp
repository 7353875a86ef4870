#include <remoteable/sync.hpp>

#include <asio/use_future.hpp>

namespace remoteable::sync {

Client::Client(Endpoint endpoint, ClientOptions options)
    : runner_(std::make_shared<detail::Runner>()), work_(std::in_place, runner_->context.get_executor()) {
  thread_ = std::thread([runner = runner_] { runner->context.run(); });
  runner_->set_thread(thread_.get_id());
  try {
    // co_spawn needs a default-constructible result, hence the optional.
    auto connect = [](asio::any_io_executor ex, Endpoint ep,
                      ClientOptions opts) -> asio::awaitable<std::optional<remoteable::Client>> {
      co_return co_await remoteable::Client::connect(ex, std::move(ep), std::move(opts));
    };
    client_ = runner_->wait(connect(runner_->context.get_executor(), std::move(endpoint), std::move(options)));
  } catch (...) {
    runner_->close();
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
    runner_->wait([]() -> asio::awaitable<void> { co_return; }());
    client_.reset();
  }
  runner_->close();
  work_.reset();
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> Client::browse() const {
  if (!client_) throw RemoteError(ErrorKind::disconnected, "the sync client is closed");
  return runner_->wait(client_->browse());
}

void Client::attach(const Handle& handle, std::string_view name) const {
  if (!client_) throw RemoteError(ErrorKind::disconnected, "the sync client is closed");
  runner_->wait(client_->attach(handle.async(), name));
}

void Client::detach(std::string_view name) const {
  if (!client_) throw RemoteError(ErrorKind::disconnected, "the sync client is closed");
  runner_->wait(client_->detach(name));
}

const remoteable::Client& Client::async() const {
  if (!client_) throw RemoteError(ErrorKind::disconnected, "the sync client is closed");
  return *client_;
}

}  // namespace remoteable::sync
