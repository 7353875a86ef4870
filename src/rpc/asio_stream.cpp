#include "rpc/asio_stream.hpp"

#include <kj/debug.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <climits>
#include <vector>

namespace remoteable::detail {

struct AsioStream::Shared {
  Shared(std::shared_ptr<KjLoop> l, asio::ip::tcp::socket s) : loop(std::move(l)), socket(std::move(s)) {}
  std::shared_ptr<KjLoop> loop;
  asio::ip::tcp::socket socket;
  bool read_aborted = false;

  int fd() { return socket.is_open() ? socket.native_handle() : -1; }
};

namespace {

kj::Exception disconnected(const char* what, int error) {
  return KJ_EXCEPTION(DISCONNECTED, what, strerror(error));
}

}  // namespace

class AsioStream::ReadOp {
 public:
  ReadOp(kj::PromiseFulfiller<size_t>& fulfiller, std::shared_ptr<Shared> shared, kj::byte* buffer,
         size_t min_bytes, size_t max_bytes, size_t already)
      : fulfiller_(fulfiller), shared_(std::move(shared)), buffer_(buffer), min_(min_bytes), max_(max_bytes), got_(already) {
    wait();
  }
  ~ReadOp() { *alive_ = false; }

 private:
  void pump() {
    while (true) {
      int fd = shared_->fd();
      if (fd < 0 || shared_->read_aborted) return fulfiller_.fulfill(size_t(got_));
      ssize_t n = ::recv(fd, buffer_ + got_, max_ - got_, MSG_DONTWAIT);
      if (n > 0) {
        got_ += static_cast<size_t>(n);
        if (got_ >= min_) return fulfiller_.fulfill(size_t(got_));
        continue;
      }
      if (n == 0) return fulfiller_.fulfill(size_t(got_));  // EOF: fewer than min bytes
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return wait();
      return fulfiller_.reject(disconnected("read failed", errno));
    }
  }
  void wait() {
    // The handler holds the liveness flag, not the op: KJ may destroy the op (dropping the
    // promise) before the socket becomes readable; then the handler does nothing.
    shared_->socket.async_wait(asio::socket_base::wait_read,
                               asio::bind_executor(shared_->loop->strand(), [this, alive = alive_, loop = shared_->loop](std::error_code ec) {
                                 if (!*alive) return;
                                 KjLoop::Scope scope(*loop);
                                 if (ec) fulfiller_.fulfill(size_t(got_));  // socket closed
                                 else pump();
                                 loop->drive();
                               }));
  }

  kj::PromiseFulfiller<size_t>& fulfiller_;
  std::shared_ptr<Shared> shared_;
  kj::byte* buffer_;
  size_t min_, max_, got_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

class AsioStream::WriteOp {
 public:
  WriteOp(kj::PromiseFulfiller<void>& fulfiller, std::shared_ptr<Shared> shared, std::vector<iovec> pieces)
      : fulfiller_(fulfiller), shared_(std::move(shared)), pieces_(std::move(pieces)) {
    wait();
  }
  ~WriteOp() { *alive_ = false; }

  /// Writes as much as the socket takes without blocking. Returns true when all is written;
  /// throws on a broken connection.
  static bool write_some(int fd, std::vector<iovec>& pieces, size_t& first) {
    while (first < pieces.size()) {
      if (fd < 0) throw disconnected("write on closed socket", EPIPE);
      msghdr msg{};
      msg.msg_iov = pieces.data() + first;
      msg.msg_iovlen = std::min<size_t>(pieces.size() - first, IOV_MAX);
      ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
        throw disconnected("write failed", errno);
      }
      auto left = static_cast<size_t>(n);
      while (first < pieces.size() && left >= pieces[first].iov_len) left -= pieces[first++].iov_len;
      if (left > 0) {
        pieces[first].iov_base = static_cast<char*>(pieces[first].iov_base) + left;
        pieces[first].iov_len -= left;
      }
    }
    return true;
  }

 private:
  void pump() {
    try {
      if (write_some(shared_->fd(), pieces_, first_)) fulfiller_.fulfill();
      else wait();
    } catch (kj::Exception& e) {
      fulfiller_.reject(kj::mv(e));
    }
  }
  void wait() {
    shared_->socket.async_wait(asio::socket_base::wait_write,
                               asio::bind_executor(shared_->loop->strand(), [this, alive = alive_, loop = shared_->loop](std::error_code ec) {
                                 if (!*alive) return;
                                 KjLoop::Scope scope(*loop);
                                 if (ec) fulfiller_.reject(KJ_EXCEPTION(DISCONNECTED, "socket closed during write"));
                                 else pump();
                                 loop->drive();
                               }));
  }

  kj::PromiseFulfiller<void>& fulfiller_;
  std::shared_ptr<Shared> shared_;
  std::vector<iovec> pieces_;
  size_t first_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

AsioStream::AsioStream(std::shared_ptr<KjLoop> loop, asio::ip::tcp::socket socket)
    : shared_(std::make_shared<Shared>(std::move(loop), std::move(socket))) {
  shared_->socket.non_blocking(true);
  shared_->socket.set_option(asio::ip::tcp::no_delay(true));
}

AsioStream::~AsioStream() noexcept(false) { close(); }

void AsioStream::close() {
  std::error_code ignored;
  shared_->socket.close(ignored);
}

kj::Promise<size_t> AsioStream::tryRead(void* buffer, size_t min_bytes, size_t max_bytes) {
  auto* bytes = static_cast<kj::byte*>(buffer);
  size_t got = 0;
  // Try first: data is often already there, and then no promise machinery is needed.
  while (got < min_bytes || (got == 0 && max_bytes > 0)) {
    int fd = shared_->fd();
    if (fd < 0 || shared_->read_aborted) return got;
    ssize_t n = ::recv(fd, bytes + got, max_bytes - got, MSG_DONTWAIT);
    if (n > 0) {
      got += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) return got;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    return disconnected("read failed", errno);
  }
  if (got >= min_bytes) return got;
  return kj::newAdaptedPromise<size_t, ReadOp>(shared_, bytes, min_bytes, max_bytes, got);
}

kj::Promise<void> AsioStream::write(const void* buffer, size_t size) {
  auto piece = kj::arrayPtr(static_cast<const kj::byte*>(buffer), size);
  return write(kj::arrayPtr(&piece, 1));
}

kj::Promise<void> AsioStream::write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) {
  std::vector<iovec> iov;
  iov.reserve(pieces.size());
  for (auto& p : pieces)
    if (p.size() > 0) iov.push_back(iovec{const_cast<kj::byte*>(p.begin()), p.size()});
  size_t first = 0;
  if (WriteOp::write_some(shared_->fd(), iov, first)) return kj::READY_NOW;
  iov.erase(iov.begin(), iov.begin() + static_cast<std::ptrdiff_t>(first));
  return kj::newAdaptedPromise<void, WriteOp>(shared_, std::move(iov));
}

kj::Promise<void> AsioStream::whenWriteDisconnected() { return kj::NEVER_DONE; }

void AsioStream::shutdownWrite() {
  std::error_code ignored;
  shared_->socket.shutdown(asio::socket_base::shutdown_send, ignored);
}

void AsioStream::abortRead() {
  shared_->read_aborted = true;
  std::error_code ignored;
  shared_->socket.shutdown(asio::socket_base::shutdown_receive, ignored);
}

void AsioStream::getsockopt(int level, int option, void* value, uint* length) {
  socklen_t len = *length;
  KJ_SYSCALL(::getsockopt(shared_->fd(), level, option, value, &len));
  *length = len;
}
void AsioStream::setsockopt(int level, int option, const void* value, uint length) {
  KJ_SYSCALL(::setsockopt(shared_->fd(), level, option, value, length));
}
void AsioStream::getsockname(struct sockaddr* addr, uint* length) {
  socklen_t len = *length;
  KJ_SYSCALL(::getsockname(shared_->fd(), addr, &len));
  *length = len;
}
void AsioStream::getpeername(struct sockaddr* addr, uint* length) {
  socklen_t len = *length;
  KJ_SYSCALL(::getpeername(shared_->fd(), addr, &len));
  *length = len;
}

}  // namespace remoteable::detail
