#include "rpc/tls_stream.hpp"

#include <asio/bind_executor.hpp>
#include <asio/ssl/error.hpp>
#include <kj/debug.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "rpc/asio_stream.hpp"
#include "rpc/connection.hpp"
#include "rpc/kj_error.hpp"

namespace remoteable::detail {

// asio::ssl::stream keeps the bytes it read from the socket but has not yet handed to OpenSSL in
// its private stream_core (`input_`). After the handshake the stream reads the socket itself, so
// it must take those bytes over. Asio offers no accessor: an explicit instantiation may name a
// private member, and this one hands out a reference to it. Tied to Asio's layout by name
// (Debian's 1.22): a change there fails to compile, it cannot misread silently.
asio::ssl::detail::stream_core& stream_core_of(TlsSocket& stream);
template <asio::ssl::detail::stream_core TlsSocket::*Core>
struct StreamCoreAccess {
  friend asio::ssl::detail::stream_core& stream_core_of(TlsSocket& stream) { return stream.*Core; }
};
template struct StreamCoreAccess<&TlsSocket::core_>;

namespace {

// Plaintext is read through a buffer of this size (a TLS record's plaintext at most), so that
// one SSL_read usually brings in several messages; larger reads decrypt straight into the
// caller's buffer.
constexpr size_t read_buffer_size = 16 * 1024;
// Ciphertext an Asio receive brings in while the stream waits: a record and its header.
constexpr size_t raw_buffer_size = 17 * 1024;
// Buffered writes go out at once when this much has gathered.
constexpr size_t flush_now = 32 * 1024;

/// OpenSSL wants its error queue empty before a call whose errors are then read. Clearing an
/// empty queue costs a few hundred instructions (it resets every slot); looking costs less, and
/// it is empty nearly always.
void clear_errors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

kj::Exception disconnected(const char* what, int error) { return KJ_EXCEPTION(DISCONNECTED, what, strerror(error)); }

/// A TLS error from OpenSSL's queue (an alert from the peer: it refused our certificate, say):
/// a security error, in OpenSSL's words as Asio gives them.
kj::Exception tls_failure(const char* what, unsigned long code) {
  std::error_code ec(static_cast<int>(code), asio::error::get_ssl_category());
  return to_kj(RemoteError(ErrorKind::security, std::string("TLS ") + what + " failed: " + ec.message()));
}

}  // namespace

struct TlsStream::Shared : IdleTask, std::enable_shared_from_this<Shared> {
  Shared(std::shared_ptr<KjLoop> l, std::unique_ptr<TlsConnection> c)
      : loop(std::move(l)), connection(std::move(c)), ssl(connection->stream.native_handle()) {}
  std::shared_ptr<KjLoop> loop;
  std::unique_ptr<TlsConnection> connection;
  SSL* ssl;  // owned by connection's asio::ssl::stream; reads and writes through our BIO
  std::shared_ptr<WireCounters> counters;
  std::shared_ptr<ByteCounts> byte_counts;  // null: not counted

  asio::ip::tcp::socket& socket() { return connection->stream.next_layer(); }
  int fd() const {
    auto& s = const_cast<asio::ip::tcp::socket&>(connection->stream.next_layer());
    return s.is_open() ? s.native_handle() : -1;
  }

  // Ciphertext received but not yet given to OpenSSL: raw[raw_pos, raw_end). What the handshake
  // read past its end, then what each Asio receive brings.
  std::vector<kj::byte> raw = std::vector<kj::byte>(raw_buffer_size);
  size_t raw_pos = 0, raw_end = 0;
  // The last recv left the socket empty (it filled less than OpenSSL asked): the next read
  // goes straight to Asio, whose receive tries the socket first anyway.
  bool drained = false;
  // An Asio receive into `raw` is in flight (at most one; the BIO leaves the socket alone
  // meanwhile); it wakes `waiter` when it completes.
  bool receiving = false;
  bool socket_eof = false;   // the peer ended the TCP stream
  int recv_errno = 0;        // the socket's read failed
  int send_errno = 0;        // the socket's write failed

  // Plaintext decrypted but not yet read: in[in_pos, in_end).
  std::unique_ptr<kj::byte[]> in = std::make_unique<kj::byte[]>(read_buffer_size);
  size_t in_pos = 0, in_end = 0;
  ReadOp* waiter = nullptr;
  bool read_wants_write = false;  // a read waits for the socket to take OpenSSL's bytes
  kj::Maybe<kj::Exception> read_error;
  bool read_eof = false;
  bool read_aborted = false;

  // Plaintext written but not yet encrypted and sent: out[out_sent, out.size()).
  std::vector<kj::byte> out;
  size_t out_sent = 0;
  // The length of the SSL_write that wants the socket writable; OpenSSL wants it repeated with
  // the same arguments (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets `out` move meanwhile).
  size_t retry_length = 0;
  bool flush_scheduled = false;
  std::uint64_t expedited_in = 0, read_in = 0;  // as AsioStream's
  bool write_blocked = false;  // waiting for the socket to take more
  bool shutdown_after_write = false;
  kj::Maybe<kj::Exception> write_error;
  size_t peak = 0;
  size_t max_unsent = 0;
  std::function<void(std::size_t)> on_breach;

  size_t unsent() const { return out.size() - out_sent; }

  void attach_bio();

  enum class Io { done, want_read, want_write, eof };
  /// One SSL_read into data[0, size): Io::done with `n` bytes, or what it waits for. Throws
  /// (and keeps the error as read_error) on a failed read.
  Io decrypt(kj::byte* data, size_t size, size_t& n) {
    clear_errors();
    if (SSL_read_ex(ssl, data, size, &n) == 1) {
      if (byte_counts) byte_counts->received.fetch_add(n, std::memory_order_relaxed);
      return Io::done;
    }
    switch (SSL_get_error(ssl, 0)) {
      case SSL_ERROR_WANT_READ: return Io::want_read;
      case SSL_ERROR_WANT_WRITE: return Io::want_write;
      case SSL_ERROR_ZERO_RETURN: return Io::eof;  // close_notify
      case SSL_ERROR_SYSCALL:
        if (recv_errno != 0) throw remember(disconnected("read failed", recv_errno));
        if (send_errno != 0) throw remember(disconnected("read failed", send_errno));
        return Io::eof;
      default: {
        unsigned long code = ERR_peek_last_error();
        // The TCP stream ended without close_notify: the end, as for a plain connection.
        if (socket_eof && ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING) return Io::eof;
        if (code == 0) throw remember(KJ_EXCEPTION(DISCONNECTED, "TLS read failed"));
        throw remember(tls_failure("read", code));
      }
    }
  }
  kj::Exception remember(kj::Exception&& e) {
    if (read_error == nullptr) read_error = kj::cp(e);
    return kj::mv(e);
  }

  /// Reads into bytes[got, max) until at least `min` (and at least one) byte is there, from the
  /// buffer first, then through OpenSSL. Throws on a failed read.
  Io read(kj::byte* bytes, size_t& got, size_t min, size_t max) {
    while (true) {
      if (in_pos < in_end && got < max) {  // (a zero-byte read may come with a null buffer)
        auto n = std::min(in_end - in_pos, max - got);
        std::memcpy(bytes + got, in.get() + in_pos, n);
        in_pos += n;
        got += n;
      }
      if (got >= min && (got > 0 || max == 0)) {
        if (got > 0) read_in = loop->scopes();
        return Io::done;
      }
      KJ_IF_MAYBE(e, read_error) { throw kj::cp(*e); }
      if (fd() < 0 || read_aborted || read_eof) return Io::eof;
      // Nothing received and nothing in OpenSSL: the SSL_read would only say WANT_READ.
      if (raw_pos == raw_end && (drained || receiving) && SSL_has_pending(ssl) == 0) return Io::want_read;
      bool direct = max - got >= read_buffer_size;
      size_t n = 0;
      auto r = direct ? decrypt(bytes + got, max - got, n) : decrypt(in.get(), read_buffer_size, n);
      if (r == Io::eof) return read_eof = true, Io::eof;
      if (r != Io::done) return r;
      if (direct) got += n;
      else in_pos = 0, in_end = n;
    }
  }

  /// Encrypts and sends what is buffered; waits for the socket when it is full. [loop]
  void flush() {
    flush_scheduled = false;
    send_buffered();
  }
  void send_buffered() {
    if (write_blocked || unsent() == 0 || write_error != nullptr) return;
    while (unsent() > 0) {
      size_t length = retry_length > 0 ? retry_length : unsent();
      size_t n = 0;
      clear_errors();
      if (SSL_write_ex(ssl, out.data() + out_sent, length, &n) == 1) {
        // With SSL_MODE_ENABLE_PARTIAL_WRITE, each call sends a record or so.
        retry_length = 0;
        out_sent += n;
        if (byte_counts) byte_counts->sent.fetch_add(n, std::memory_order_relaxed);
        continue;
      }
      switch (SSL_get_error(ssl, 0)) {
        case SSL_ERROR_WANT_WRITE:
          retry_length = length;
          return wait_writable();
        case SSL_ERROR_SYSCALL:
          return fail(disconnected("write failed", send_errno != 0 ? send_errno : EPIPE));
        default: {
          // (SSL_ERROR_WANT_READ cannot come: renegotiation is off, see make_context.)
          unsigned long code = ERR_peek_last_error();
          return fail(code != 0 ? tls_failure("write", code) : KJ_EXCEPTION(DISCONNECTED, "TLS write failed"));
        }
      }
    }
    out.clear();
    out_sent = 0;
    if (out.capacity() > 4 * flush_now) out.shrink_to_fit();
    if (shutdown_after_write) {
      std::error_code ignored;
      socket().shutdown(asio::socket_base::shutdown_send, ignored);
    }
  }
  void fail(kj::Exception&& e) {
    out.clear();
    out_sent = 0;
    retry_length = 0;
    write_error = kj::mv(e);
  }
  /// As AsioStream: more than max_unsent bytes wait for a peer that does not read.
  kj::Exception overflow() {
    auto queued = unsent();
    fail(KJ_EXCEPTION(DISCONNECTED, "the peer does not read its answers (too many bytes queued)"));
    std::vector<kj::byte>().swap(out);
    std::error_code ignored;
    socket().close(ignored);
    if (auto breached = std::move(on_breach)) breached(queued);
    return kj::cp(KJ_ASSERT_NONNULL(write_error));
  }
  void wait_writable() {
    write_blocked = true;
    socket().async_wait(asio::socket_base::wait_write,
                        asio::bind_executor(loop->strand(), [weak = weak_from_this()](std::error_code ec) {
                          auto self = weak.lock();
                          if (!self) return;
                          KjLoop::HandlerScope scope(*self->loop);
                          self->write_blocked = false;
                          if (ec) self->fail(KJ_EXCEPTION(DISCONNECTED, "socket closed during write"));
                          else self->flush();
                          self->loop->drive();
                        }));
  }
  void schedule_flush() {
    if (flush_scheduled) return;
    flush_scheduled = true;
    loop->at_idle(weak_from_this());
  }
  void on_idle() override { flush(); }

  /// Waits for what the read wants (`r`: Io::want_read or Io::want_write), then wakes `waiter`.
  void wait_for(Io r) {
    if (r == Io::want_write) {
      if (read_wants_write) return;
      read_wants_write = true;
      socket().async_wait(asio::socket_base::wait_write,
                          asio::bind_executor(loop->strand(), [self = shared_from_this()](std::error_code ec) {
                            KjLoop::HandlerScope scope(*self->loop);
                            self->read_wants_write = false;
                            if (ec) self->read_eof = true;
                            self->wake();
                            self->loop->drive();
                          }));
      return;
    }
    drained = false;  // the receive below tries the socket itself
    if (receiving) return;
    KJ_ASSERT(raw_pos == raw_end, "waiting for the socket with ciphertext not yet read");
    receiving = true;
    socket().async_receive(
        asio::buffer(raw), asio::bind_executor(loop->strand(), [self = shared_from_this()](std::error_code ec, std::size_t n) {
          // The handler holds the stream's shared state (and so the buffer), never the op.
          KjLoop::HandlerScope scope(*self->loop);
          self->receiving = false;
          if (n > 0) {
            self->raw_pos = 0;
            self->raw_end = n;
            self->drained = n < self->raw.size();
          } else if (ec == asio::error::eof) {
            self->socket_eof = true;
          } else if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) {
            self->read_eof = true;
          } else if (ec) {
            self->recv_errno = ec.value();
          }
          self->wake();
          self->loop->drive();
        }));
  }
  void wake();

  // The BIO OpenSSL reads and writes the socket through. [loop]
  int bio_read(char* data, size_t size, size_t* n) {
    if (raw_pos < raw_end) {
      *n = std::min(raw_end - raw_pos, size);
      std::memcpy(data, raw.data() + raw_pos, *n);
      raw_pos += *n;
      return 1;
    }
    if (socket_eof || recv_errno != 0) return 0;
    int descriptor = fd();
    if (descriptor < 0) return socket_eof = true, 0;
    if (drained || receiving) return retry_read();
    while (true) {
      ssize_t got = ::recv(descriptor, data, size, MSG_DONTWAIT);
      if (got > 0) {
        drained = static_cast<size_t>(got) < size;
        *n = static_cast<size_t>(got);
        return 1;
      }
      if (got == 0) return socket_eof = true, 0;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return retry_read();
      recv_errno = errno;
      return 0;
    }
  }
  int bio_write(const char* data, size_t size, size_t* n) {
    int descriptor = fd();
    if (descriptor < 0) return send_errno = EPIPE, 0;
    while (true) {
      ssize_t sent = ::send(descriptor, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent >= 0) {
        if (counters) counters->count_write();
        *n = static_cast<size_t>(sent);
        return 1;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        BIO_set_retry_write(bio);
        return 0;
      }
      send_errno = errno;
      return 0;
    }
  }
  int retry_read() {
    BIO_set_retry_read(bio);
    return 0;
  }
  static const BIO_METHOD* bio_method();
  BIO* bio = nullptr;
};

/// The method of TlsStream's BIO: reads and writes go to its Shared (BIO_get_data). Made once
/// and never changed after (each BIO points to it). Control commands are refused, BIO_CTRL_EOF
/// too: the end of the TCP stream then reads as SSL_ERROR_SYSCALL, which leaves OpenSSL able
/// to write (the peer may only have shut down its side), where an end that OpenSSL saw would
/// fail the connection both ways.
const BIO_METHOD* TlsStream::Shared::bio_method() {
  static const BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "remoteable TLS stream");
    KJ_ASSERT(m != nullptr);
    BIO_meth_set_read_ex(m, [](BIO* b, char* data, size_t size, size_t* n) {
      BIO_clear_retry_flags(b);
      return static_cast<TlsStream::Shared*>(BIO_get_data(b))->bio_read(data, size, n);
    });
    BIO_meth_set_write_ex(m, [](BIO* b, const char* data, size_t size, size_t* n) {
      BIO_clear_retry_flags(b);
      return static_cast<TlsStream::Shared*>(BIO_get_data(b))->bio_write(data, size, n);
    });
    BIO_meth_set_ctrl(m, [](BIO*, int cmd, long, void*) -> long { return cmd == BIO_CTRL_FLUSH ? 1 : 0; });
    BIO_meth_set_create(m, [](BIO* b) {
      BIO_set_init(b, 1);
      return 1;
    });
    return m;
  }();
  return method;
}

/// Moves OpenSSL from Asio's engine (a memory BIO pair Asio fills from the socket) onto the
/// socket itself, through our BIO, keeping the order of the bytes Asio already took in.
void TlsStream::Shared::attach_bio() {
  // Ciphertext past the handshake (the client's first request may come with its Finished):
  // first what sits in the BIO pair, then what Asio read but has not yet given it.
  BIO* pair = SSL_get_rbio(ssl);
  auto& core = stream_core_of(connection->stream);
  size_t in_pair = BIO_ctrl_pending(pair);
  size_t in_asio = core.input_.size();
  if (in_pair + in_asio > raw.size()) raw.resize(in_pair + in_asio);
  while (raw_end < in_pair) {
    int n = BIO_read(pair, raw.data() + raw_end, static_cast<int>(in_pair - raw_end));
    KJ_ASSERT(n > 0, "cannot take the TLS bytes Asio kept");
    raw_end += static_cast<size_t>(n);
  }
  std::memcpy(raw.data() + raw_end, core.input_.data(), in_asio);
  raw_end += in_asio;
  core.input_ = asio::const_buffer();
  // Asio's handshake sends all it wrote before it completes; check that nothing is left.
  KJ_ASSERT(BIO_wpending(pair) == 0, "Asio's TLS engine kept bytes to send");

  bio = BIO_new(bio_method());
  KJ_ASSERT(bio != nullptr);
  BIO_set_data(bio, this);
  SSL_set_bio(ssl, bio, bio);  // frees the pair's inner half; Asio's engine frees the other
  // One recv brings in all the records there are; keep OpenSSL's buffers between records
  // (Asio asks to release them when idle: a malloc and a free per record).
  SSL_set_read_ahead(ssl, 1);
  SSL_clear_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
  // AUTO_RETRY (OpenSSL's default, made sure of): a post-handshake message (a session ticket)
  // is read past, so WANT_READ means that OpenSSL took all there was (see wait_for).
  SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_AUTO_RETRY);
}

class TlsStream::ReadOp {
 public:
  ReadOp(kj::PromiseFulfiller<size_t>& fulfiller, std::shared_ptr<Shared> shared, kj::byte* buffer, size_t min_bytes,
         size_t max_bytes, size_t already, Shared::Io want)
      : fulfiller_(fulfiller), shared_(std::move(shared)), buffer_(buffer), min_(min_bytes), max_(max_bytes), got_(already) {
    wait(want);
  }
  ~ReadOp() {
    if (shared_->waiter == this) shared_->waiter = nullptr;
  }
  /// What the read waited for came (bytes, the end or an error are in the stream). [loop]
  void ready() {
    shared_->waiter = nullptr;
    try {
      auto r = shared_->read(buffer_, got_, min_, max_);
      if (r == Shared::Io::want_read || r == Shared::Io::want_write) return wait(r);
      fulfiller_.fulfill(size_t(got_));  // done, or the end with fewer than min bytes
    } catch (kj::Exception& e) {
      fulfiller_.reject(kj::mv(e));
    }
  }

 private:
  void wait(Shared::Io want) {
    shared_->waiter = this;
    shared_->wait_for(want);
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
  shared_->socket().non_blocking(true, ignored);
  shared_->socket().set_option(asio::ip::tcp::no_delay(true), ignored);
  shared_->attach_bio();
}

TlsStream::~TlsStream() noexcept(false) { close(); }

void TlsStream::close() {
  std::error_code ignored;
  shared_->socket().close(ignored);
}

kj::Promise<size_t> TlsStream::tryRead(void* buffer, size_t min_bytes, size_t max_bytes) {
  auto* bytes = static_cast<kj::byte*>(buffer);
  size_t got = 0;
  // Try first: a record is often already there, and then no promise machinery is needed.
  auto r = shared_->read(bytes, got, min_bytes, max_bytes);
  if (r != Shared::Io::want_read && r != Shared::Io::want_write) return got;
  return kj::newAdaptedPromise<size_t, ReadOp>(shared_, bytes, min_bytes, max_bytes, got, r);
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
  if (s.unsent() >= flush_now && !s.write_blocked) s.flush();
  else s.schedule_flush();
  return kj::READY_NOW;
}

void TlsStream::expedite(bool answer) {
  // As AsioStream::expedite; the input still to be read may be plaintext, ciphertext here, or
  // in OpenSSL.
  auto& s = *shared_;
  auto scope = s.loop->scopes();
  if (s.expedited_in == scope || !s.flush_scheduled || (!answer && s.read_in != scope)) return;
  if (s.in_pos < s.in_end || s.raw_pos < s.raw_end || SSL_has_pending(s.ssl) != 0) return;
  s.expedited_in = scope;
  s.send_buffered();
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
  auto& s = *shared_;
  s.flush();
  if (s.write_blocked) {
    s.shutdown_after_write = true;
    return;
  }
  std::error_code ignored;
  s.socket().shutdown(asio::socket_base::shutdown_send, ignored);
}

void TlsStream::abortRead() {
  shared_->read_aborted = true;
  std::error_code ignored;
  shared_->socket().shutdown(asio::socket_base::shutdown_receive, ignored);
}

}  // namespace remoteable::detail
