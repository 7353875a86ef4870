#include "rpc/asio_stream.hpp"

#include "rpc/connection.hpp"

#include <kj/debug.h>
#include <kj/vector.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <climits>
#include <utility>
#include <vector>

namespace remoteable::detail {

namespace {

kj::Exception disconnected(const char* what, int error) {
  return KJ_EXCEPTION(DISCONNECTED, what, strerror(error));
}

// Reads go through a buffer of this size, so that one recv() usually brings in several
// messages (Cap'n Proto asks for each message's header and body separately). Larger reads go
// straight to the caller's buffer.
constexpr size_t read_buffer_size = 16 * 1024;
// Writes are copied into a buffer and sent together once the handlers already queued on the
// loop have run (one sendmsg for the messages they all write). Messages at least this large go
// straight from the caller's memory when nothing is queued before them.
constexpr size_t large_write = 64 * 1024;
// Buffered writes go out at once when this much has gathered, without waiting for the loop to
// go idle.
constexpr size_t flush_now = 32 * 1024;

/// Writes as much of `pieces` (from `first`) as the socket takes without blocking. Returns
/// true when all is written; throws on a broken connection.
bool write_some(int fd, std::vector<iovec>& pieces, size_t& first, WireCounters* counters, ByteCounts* bytes) {
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
    if (counters) counters->count_write();
    if (bytes) bytes->sent.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
    auto left = static_cast<size_t>(n);
    while (first < pieces.size() && left >= pieces[first].iov_len) left -= pieces[first++].iov_len;
    if (left > 0) {
      pieces[first].iov_base = static_cast<char*>(pieces[first].iov_base) + left;
      pieces[first].iov_len -= left;
    }
  }
  return true;
}

}  // namespace

struct AsioStream::Shared : IdleTask, std::enable_shared_from_this<Shared> {
  Shared(std::shared_ptr<KjLoop> l, asio::ip::tcp::socket s) : loop(std::move(l)), socket(std::move(s)) {}
  std::shared_ptr<KjLoop> loop;
  asio::ip::tcp::socket socket;
  std::shared_ptr<WireCounters> counters;
  std::shared_ptr<ByteCounts> byte_counts;  // null: not counted
  bool read_aborted = false;

  // Bytes received but not yet read: in[in_pos, in_end).
  std::unique_ptr<kj::byte[]> in = std::make_unique<kj::byte[]>(read_buffer_size);
  size_t in_pos = 0, in_end = 0;
  // The last recv left the socket empty (it filled less than the buffer): the next read goes
  // straight to Asio, whose receive tries the socket first anyway (no recv that is sure to
  // find nothing).
  bool drained = false;
  // An Asio receive into `in` is in flight (at most one); it wakes `waiter` when it completes.
  bool receiving = false;
  // A read waits for the socket while this handler's writes wait for the flush, or while work
  // that is likely to write waits for the end of its turns (a coroutine that resumes with the
  // answer just read): the receive starts after the flush (on_idle), since Asio's receive first
  // tries the socket, which a drained socket answers EAGAIN: a system call the peer would
  // otherwise wait behind. (Idle tasks registered in a handler run at the end of it, or of a
  // later one while handlers are queued.)
  bool receive_after_flush = false;
  ReadOp* waiter = nullptr;
  kj::Maybe<kj::Exception> read_error;
  bool read_eof = false;

  // Bytes written but not yet sent: out[out_sent, out.size()).
  std::vector<kj::byte> out;
  size_t out_sent = 0;
  bool flush_scheduled = false;  // a flush is registered for the end of the loop's turn
  // The loop's scopes() when this stream last sent early (expedite) and last read input.
  std::uint64_t expedited_in = 0, read_in = 0;
  bool write_blocked = false;    // waiting for the socket to take more
  kj::Maybe<kj::Exception> write_error;
  size_t peak = 0;               // the most bytes ever unsent
  size_t max_unsent = 0;         // see limit_unsent(); 0: no bound
  std::function<void(std::size_t)> on_breach;

  int fd() const { return socket.is_open() ? const_cast<asio::ip::tcp::socket&>(socket).native_handle() : -1; }
  size_t unsent() const { return out.size() - out_sent; }

  enum class Read { done, would_block, eof };
  /// Reads into bytes[got, max) until at least `min` (and at least one) byte is there, from the
  /// buffer first. Throws on a failed read.
  Read read(kj::byte* bytes, size_t& got, size_t min, size_t max) {
    while (true) {
      if (in_pos < in_end && got < max) {  // (a zero-byte read may come with a null buffer)
        auto n = std::min(in_end - in_pos, max - got);
        std::memcpy(bytes + got, in.get() + in_pos, n);
        in_pos += n;
        got += n;
      }
      if (got >= min && (got > 0 || max == 0)) {
        if (got > 0) read_in = loop->scopes();
        return Read::done;
      }
      KJ_IF_MAYBE(e, read_error) { throw kj::cp(*e); }
      int descriptor = fd();
      if (descriptor < 0 || read_aborted || read_eof) return Read::eof;
      bool direct = max - got >= read_buffer_size;
      if (drained && !direct) return Read::would_block;
      ssize_t n = direct ? ::recv(descriptor, bytes + got, max - got, MSG_DONTWAIT)
                         : ::recv(descriptor, in.get(), read_buffer_size, MSG_DONTWAIT);
      if (n > 0) {
        if (byte_counts) byte_counts->received.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
        if (direct) got += static_cast<size_t>(n);
        else in_pos = 0, in_end = static_cast<size_t>(n), drained = in_end < read_buffer_size;
        continue;
      }
      if (n == 0) return read_eof = true, Read::eof;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Read::would_block;
      throw disconnected("read failed", errno);
    }
  }

  /// Sends what is buffered; waits for the socket when it is full. [loop]
  void flush() {
    flush_scheduled = false;
    send_buffered();
  }
  void send_buffered() {
    if (write_blocked || unsent() == 0) return;
    std::vector<iovec> piece{iovec{out.data() + out_sent, unsent()}};
    size_t first = 0;
    try {
      bool all = write_some(fd(), piece, first, counters.get(), byte_counts.get());
      out_sent = out.size() - (all ? 0 : piece[0].iov_len);
      if (!all) return wait_writable();
    } catch (kj::Exception& e) {
      return fail(kj::mv(e));
    }
    out.clear();
    out_sent = 0;
    if (out.capacity() > 4 * large_write) out.shrink_to_fit();
  }
  void fail(kj::Exception&& e) {
    out.clear();
    out_sent = 0;
    write_error = kj::mv(e);
  }
  /// More than max_unsent bytes wait for a peer that does not read: drop them and the
  /// connection now, at the write, rather than at the next sweep (which may wait behind the
  /// loop's work while answers keep piling up).
  kj::Exception overflow() {
    auto queued = unsent();
    fail(KJ_EXCEPTION(DISCONNECTED, "the peer does not read its answers (too many bytes queued)"));
    std::vector<kj::byte>().swap(out);  // give the memory back now
    std::error_code ignored;
    socket.close(ignored);
    if (auto breached = std::move(on_breach)) breached(queued);
    return kj::cp(KJ_ASSERT_NONNULL(write_error));
  }
  void note_peak() { peak = std::max(peak, unsent()); }
  void wait_writable() {
    write_blocked = true;
    socket.async_wait(asio::socket_base::wait_write,
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
  /// Flushes once the loop is idle: after the handlers queued now have run, so that the
  /// messages they write go out in the same sendmsg, and at once when none are queued.
  void schedule_flush() {
    if (flush_scheduled) return;
    flush_scheduled = true;
    loop->at_idle(weak_from_this());
  }
  void on_idle() override {
    flush();
    if (std::exchange(receive_after_flush, false) && waiter != nullptr && !receiving) start_receive();
  }
  void start_receive();
};

class AsioStream::ReadOp {
 public:
  ReadOp(kj::PromiseFulfiller<size_t>& fulfiller, std::shared_ptr<Shared> shared, kj::byte* buffer,
         size_t min_bytes, size_t max_bytes, size_t already)
      : fulfiller_(fulfiller), shared_(std::move(shared)), buffer_(buffer), min_(min_bytes), max_(max_bytes), got_(already) {
    wait();
  }
  ~ReadOp() {
    if (shared_->waiter == this) shared_->waiter = nullptr;
  }

  /// The receive completed (bytes, end of stream or an error are in the stream). [loop]
  void ready() {
    shared_->waiter = nullptr;
    try {
      if (shared_->read(buffer_, got_, min_, max_) == Shared::Read::would_block) return wait();
      fulfiller_.fulfill(size_t(got_));  // done, or EOF with fewer than min bytes
    } catch (kj::Exception& e) {
      fulfiller_.reject(kj::mv(e));
    }
  }

 private:
  void wait() {
    auto& s = *shared_;
    s.waiter = this;
    s.drained = false;  // the receive tries the socket itself
    if (s.receiving || s.receive_after_flush) return;
    if (s.flush_scheduled) {
      s.receive_after_flush = true;  // what this handler wrote goes first
    } else if (s.loop->in_loop() && s.loop->resumption_pending()) {
      s.receive_after_flush = true;  // and what it is about to write
      s.loop->at_idle(s.weak_from_this());
    } else {
      s.start_receive();
    }
  }

  kj::PromiseFulfiller<size_t>& fulfiller_;
  std::shared_ptr<Shared> shared_;
  kj::byte* buffer_;
  size_t min_, max_, got_;
};

void AsioStream::Shared::start_receive() {
  receiving = true;
  socket.async_receive(
      asio::buffer(in.get(), read_buffer_size),
      asio::bind_executor(loop->strand(), [shared = shared_from_this()](std::error_code ec, std::size_t n) {
        // The handler holds the stream's shared state (and so the buffer), never the op.
        KjLoop::HandlerScope scope(*shared->loop);
        shared->receiving = false;
        if (n > 0) {
          if (shared->byte_counts) shared->byte_counts->received.fetch_add(n, std::memory_order_relaxed);
          shared->in_pos = 0;
          shared->in_end = n;
          shared->drained = n < read_buffer_size;
        } else if (ec == asio::error::eof || ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) {
          shared->read_eof = true;
        } else if (ec) {
          shared->read_error = disconnected("read failed", ec.value());
        }
        if (auto* op = shared->waiter) op->ready();
        shared->loop->drive();
      }));
}

AsioStream::AsioStream(std::shared_ptr<KjLoop> loop, asio::ip::tcp::socket socket, std::shared_ptr<WireCounters> counters,
                       std::shared_ptr<ByteCounts> bytes)
    : shared_(std::make_shared<Shared>(std::move(loop), std::move(socket))) {
  shared_->counters = std::move(counters);
  shared_->byte_counts = std::move(bytes);
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
  if (shared_->read(bytes, got, min_bytes, max_bytes) != Shared::Read::would_block) return got;
  return kj::newAdaptedPromise<size_t, ReadOp>(shared_, bytes, min_bytes, max_bytes, got);
}

kj::Promise<void> AsioStream::write(const void* buffer, size_t size) {
  auto piece = kj::arrayPtr(static_cast<const kj::byte*>(buffer), size);
  return write(kj::arrayPtr(&piece, 1));
}

kj::Promise<void> AsioStream::write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) {
  // Always complete at once: Cap'n Proto chains each message's write on the previous one, so a
  // write that waited would make every message sent meanwhile one link deeper in a chain that
  // is destroyed recursively. The bytes wait here instead; the server bounds them per
  // connection (ServerOptions::max_outbound_bytes counts unsent()).
  auto& s = *shared_;
  KJ_IF_MAYBE(e, s.write_error) { return kj::cp(*e); }
  if (s.max_unsent > 0 && s.unsent() > s.max_unsent) return s.overflow();
  size_t total = 0;
  for (auto& p : pieces) total += p.size();
  if (total >= large_write && s.unsent() == 0 && !s.write_blocked) {
    // A large message with nothing queued before it: send what the socket takes from the
    // caller's memory, and keep only the rest.
    std::vector<iovec> iov;
    iov.reserve(pieces.size());
    for (auto& p : pieces)
      if (p.size() > 0) iov.push_back(iovec{const_cast<kj::byte*>(p.begin()), p.size()});
    size_t first = 0;
    if (write_some(s.fd(), iov, first, s.counters.get(), s.byte_counts.get())) return kj::READY_NOW;
    for (size_t i = first; i < iov.size(); ++i) {
      auto* b = static_cast<const kj::byte*>(iov[i].iov_base);
      s.out.insert(s.out.end(), b, b + iov[i].iov_len);
    }
    s.note_peak();
    s.wait_writable();
    return kj::READY_NOW;
  }
  for (auto& p : pieces) s.out.insert(s.out.end(), p.begin(), p.end());
  s.note_peak();
  // Enough for a full segment: send it now, and let the peer start on it.
  if (s.unsent() >= flush_now && !s.write_blocked) s.flush();
  else s.schedule_flush();
  return kj::READY_NOW;
}

void AsioStream::expedite(bool answer) {
  // Once per handler, and not while more of its input waits to be read (its answers would go
  // out one send each): the rest of what the handler writes goes at its end, as before (the
  // flush registered for that end stays).
  auto& s = *shared_;
  auto scope = s.loop->scopes();
  if (s.expedited_in == scope || !s.flush_scheduled || s.in_pos < s.in_end || (!answer && s.read_in != scope)) return;
  s.expedited_in = scope;
  s.send_buffered();
}

std::size_t AsioStream::unsent() const { return shared_->unsent(); }
std::size_t AsioStream::peak_unsent() const { return shared_->peak; }

void AsioStream::limit_unsent(std::size_t max_bytes, std::function<void(std::size_t)> on_breach) {
  shared_->max_unsent = max_bytes;
  shared_->on_breach = std::move(on_breach);
}

kj::Promise<void> AsioStream::whenWriteDisconnected() { return kj::NEVER_DONE; }

void AsioStream::shutdownWrite() {
  if (!shared_->write_blocked) shared_->flush();  // what was written goes out before the FIN
  std::error_code ignored;
  shared_->socket.shutdown(asio::socket_base::shutdown_send, ignored);
}

void AsioStream::abortRead() {
  shared_->read_aborted = true;
  std::error_code ignored;
  shared_->socket.shutdown(asio::socket_base::shutdown_receive, ignored);
}

int AsioStream::descriptor() const { return shared_->fd(); }

void AsioStream::fail_reads(kj::Exception reason) {
  auto& s = *shared_;
  if (s.read_error == nullptr) s.read_error = kj::mv(reason);
  s.in_pos = s.in_end = 0;  // what the peer sent after this is not read
  if (auto* op = s.waiter) op->ready();
}

kj::Maybe<kj::Exception> AsioStream::failure() const {
  KJ_IF_MAYBE(e, shared_->read_error) { return kj::cp(*e); }
  KJ_IF_MAYBE(e, shared_->write_error) { return kj::cp(*e); }
  return nullptr;
}

}  // namespace remoteable::detail
