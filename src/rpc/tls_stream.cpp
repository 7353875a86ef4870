#include "rpc/tls_stream.hpp"

#include <asio/bind_executor.hpp>
#include <asio/ssl/error.hpp>
#include <asio/write.hpp>
#include <kj/debug.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "rpc/asio_stream.hpp"
#include "rpc/connection.hpp"
#include "rpc/kj_error.hpp"

namespace remoteable::detail {
namespace {

constexpr size_t read_buffer_size = 16 * 1024;  // a TLS record's plaintext at most
constexpr size_t flush_now = 32 * 1024;

/// A failed TLS read or write. TLS's own errors (an alert from the peer: it refused our
/// certificate, say) are security errors; the rest are the connection going away.
kj::Exception tls_failure(const char* what, const std::error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category() && ec != asio::ssl::error::stream_truncated)
    return to_kj(RemoteError(ErrorKind::security, std::string("TLS ") + what + " failed: " + ec.message()));
  return KJ_EXCEPTION(DISCONNECTED, what, ec.message());
}

bool is_end(const std::error_code& ec) {
  return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated || ec == asio::error::operation_aborted ||
         ec == asio::error::bad_descriptor;
}

}  // namespace

struct TlsStream::Shared : IdleTask, std::enable_shared_from_this<Shared> {
  Shared(std::shared_ptr<KjLoop> l, std::unique_ptr<TlsConnection> c) : loop(std::move(l)), connection(std::move(c)) {}
  std::shared_ptr<KjLoop> loop;
  std::unique_ptr<TlsConnection> connection;
  std::shared_ptr<WireCounters> counters;
  std::shared_ptr<ByteCounts> byte_counts;  // null: not counted

  TlsSocket& ssl() { return connection->stream; }
  asio::ip::tcp::socket& socket() { return connection->stream.next_layer(); }
  int fd() const {
    auto& s = const_cast<asio::ip::tcp::socket&>(connection->stream.next_layer());
    return s.is_open() ? s.native_handle() : -1;
  }

  // Reading: in[in_pos, in_end) is decrypted and not yet read.
  std::unique_ptr<kj::byte[]> in = std::make_unique<kj::byte[]>(read_buffer_size);
  size_t in_pos = 0, in_end = 0;
  bool receiving = false;  // an async read into `in` is in flight
  ReadOp* waiter = nullptr;
  kj::Maybe<kj::Exception> read_error;
  bool read_eof = false;
  bool read_aborted = false;

  // Writing: `sending` is in the async write in flight; `out` gathers what comes meanwhile.
  std::vector<kj::byte> out, sending;
  bool writing = false;
  bool flush_scheduled = false;
  bool shutdown_after_write = false;
  kj::Maybe<kj::Exception> write_error;
  size_t peak = 0;
  size_t max_unsent = 0;
  std::function<void(std::size_t)> on_breach;

  size_t unsent() const { return out.size() + sending.size(); }

  /// Copies what is buffered into bytes[got, max). True when the read is complete (at least
  /// `min`, or the end of the stream); throws a read error once the buffer is empty.
  bool take(kj::byte* bytes, size_t& got, size_t min, size_t max) {
    if (in_pos < in_end && got < max) {
      auto n = std::min(in_end - in_pos, max - got);
      std::memcpy(bytes + got, in.get() + in_pos, n);
      in_pos += n;
      got += n;
    }
    if (got >= min && (got > 0 || max == 0)) return true;
    KJ_IF_MAYBE(e, read_error) { throw kj::cp(*e); }
    return read_eof || read_aborted || fd() < 0;
  }

  void start_receive() {
    receiving = true;
    ssl().async_read_some(asio::buffer(in.get(), read_buffer_size),
                          asio::bind_executor(loop->strand(), [self = shared_from_this()](std::error_code ec, std::size_t n) {
                            KjLoop::Scope scope(*self->loop);
                            self->receiving = false;
                            if (n > 0) {
                              if (self->byte_counts)
                                self->byte_counts->received.fetch_add(n, std::memory_order_relaxed);
                              self->in_pos = 0;
                              self->in_end = n;
                            } else if (is_end(ec)) {
                              self->read_eof = true;
                            } else if (ec) {
                              self->read_error = tls_failure("read", ec);
                            }
                            self->wake();
                            self->loop->drive();
                          }));
  }
  void wake();

  void flush() {
    flush_scheduled = false;
    if (writing || out.empty()) return;
    if (write_error != nullptr) return;
    sending.swap(out);
    writing = true;
    if (counters) counters->count_write();
    asio::async_write(ssl(), asio::buffer(sending),
                      asio::bind_executor(loop->strand(), [self = shared_from_this()](std::error_code ec, std::size_t n) {
                        KjLoop::Scope scope(*self->loop);
                        if (self->byte_counts) self->byte_counts->sent.fetch_add(n, std::memory_order_relaxed);
                        self->writing = false;
                        self->sending.clear();
                        if (ec) {
                          self->fail(tls_failure("write", ec));
                        } else if (!self->out.empty()) {
                          self->flush();
                        } else if (self->shutdown_after_write) {
                          std::error_code ignored;
                          self->socket().shutdown(asio::socket_base::shutdown_send, ignored);
                        }
                        self->loop->drive();
                      }));
  }
  void fail(kj::Exception&& e) {
    out.clear();
    write_error = kj::mv(e);
  }
  kj::Exception overflow() {
    auto queued = unsent();
    fail(KJ_EXCEPTION(DISCONNECTED, "the peer does not read its answers (too many bytes queued)"));
    std::vector<kj::byte>().swap(out);
    std::error_code ignored;
    socket().close(ignored);
    if (auto breached = std::move(on_breach)) breached(queued);
    return kj::cp(KJ_ASSERT_NONNULL(write_error));
  }
  void schedule_flush() {
    if (flush_scheduled) return;
    flush_scheduled = true;
    loop->at_idle(weak_from_this());
  }
  void on_idle() override { flush(); }
};

class TlsStream::ReadOp {
 public:
  ReadOp(kj::PromiseFulfiller<size_t>& fulfiller, std::shared_ptr<Shared> shared, kj::byte* buffer, size_t min_bytes,
         size_t max_bytes, size_t already)
      : fulfiller_(fulfiller), shared_(std::move(shared)), buffer_(buffer), min_(min_bytes), max_(max_bytes), got_(already) {
    wait();
  }
  ~ReadOp() {
    if (shared_->waiter == this) shared_->waiter = nullptr;
  }
  /// The read completed: bytes, the end or an error are in the stream. [loop]
  void ready() {
    shared_->waiter = nullptr;
    try {
      if (!shared_->take(buffer_, got_, min_, max_)) return wait();
      fulfiller_.fulfill(size_t(got_));
    } catch (kj::Exception& e) {
      fulfiller_.reject(kj::mv(e));
    }
  }

 private:
  void wait() {
    shared_->waiter = this;
    if (!shared_->receiving) shared_->start_receive();
  }
  kj::PromiseFulfiller<size_t>& fulfiller_;
  std::shared_ptr<Shared> shared_;
  kj::byte* buffer_;
  size_t min_, max_, got_;
};

void TlsStream::Shared::wake() {
  if (auto* op = waiter) op->ready();
}

TlsStream::TlsStream(std::shared_ptr<KjLoop> loop, std::unique_ptr<TlsConnection> connection,
                     std::shared_ptr<WireCounters> counters, std::shared_ptr<ByteCounts> bytes)
    : shared_(std::make_shared<Shared>(std::move(loop), std::move(connection))) {
  shared_->counters = std::move(counters);
  shared_->byte_counts = std::move(bytes);
  std::error_code ignored;
  shared_->socket().set_option(asio::ip::tcp::no_delay(true), ignored);
}

TlsStream::~TlsStream() noexcept(false) { close(); }

void TlsStream::close() {
  std::error_code ignored;
  shared_->socket().close(ignored);
}

kj::Promise<size_t> TlsStream::tryRead(void* buffer, size_t min_bytes, size_t max_bytes) {
  auto* bytes = static_cast<kj::byte*>(buffer);
  size_t got = 0;
  if (shared_->take(bytes, got, min_bytes, max_bytes)) return got;
  return kj::newAdaptedPromise<size_t, ReadOp>(shared_, bytes, min_bytes, max_bytes, got);
}

kj::Promise<void> TlsStream::write(const void* buffer, size_t size) {
  auto piece = kj::arrayPtr(static_cast<const kj::byte*>(buffer), size);
  return write(kj::arrayPtr(&piece, 1));
}

kj::Promise<void> TlsStream::write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) {
  // As AsioStream: complete at once, and let the bytes wait here, counted and bounded.
  auto& s = *shared_;
  KJ_IF_MAYBE(e, s.write_error) { return kj::cp(*e); }
  if (s.fd() < 0) return KJ_EXCEPTION(DISCONNECTED, "write on closed socket");
  if (s.max_unsent > 0 && s.unsent() > s.max_unsent) return s.overflow();
  for (auto& p : pieces) s.out.insert(s.out.end(), p.begin(), p.end());
  s.peak = std::max(s.peak, s.unsent());
  if (s.out.size() >= flush_now) s.flush();
  else s.schedule_flush();
  return kj::READY_NOW;
}

std::size_t TlsStream::unsent() const { return shared_->unsent(); }
std::size_t TlsStream::peak_unsent() const { return shared_->peak; }
int TlsStream::descriptor() const { return shared_->fd(); }

void TlsStream::fail_reads(kj::Exception reason) {
  auto& s = *shared_;
  if (s.read_error == nullptr) s.read_error = kj::mv(reason);
  s.in_pos = s.in_end = 0;  // what the peer sent after this is not read
  s.wake();
}

kj::Maybe<kj::Exception> TlsStream::failure() const {
  KJ_IF_MAYBE(e, shared_->read_error) { return kj::cp(*e); }
  KJ_IF_MAYBE(e, shared_->write_error) { return kj::cp(*e); }
  return nullptr;
}

void TlsStream::limit_unsent(std::size_t max_bytes, std::function<void(std::size_t)> on_breach) {
  shared_->max_unsent = max_bytes;
  shared_->on_breach = std::move(on_breach);
}

kj::Promise<void> TlsStream::whenWriteDisconnected() { return kj::NEVER_DONE; }

void TlsStream::shutdownWrite() {
  // What was written goes out before the end of the stream.
  shared_->flush();
  if (shared_->writing) {
    shared_->shutdown_after_write = true;
    return;
  }
  std::error_code ignored;
  shared_->socket().shutdown(asio::socket_base::shutdown_send, ignored);
}

void TlsStream::abortRead() {
  shared_->read_aborted = true;
  std::error_code ignored;
  shared_->socket().shutdown(asio::socket_base::shutdown_receive, ignored);
}

}  // namespace remoteable::detail
