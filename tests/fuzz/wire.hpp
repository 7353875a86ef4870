#pragma once
// Raw wire access for the bad-input tests and the fuzzer: a plain POSIX loopback socket, and
// hand-built Cap'n Proto RPC messages for the remoteable schema. Nothing here uses the library's
// client; the point is to say exactly which bytes go to the server.
//
// Ownership and threads: a RawConnection owns its socket and is used by one thread. Every wait
// is bounded by a deadline.

#include <capnp/message.h>
#include <capnp/rpc.capnp.h>
#include <capnp/serialize.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "schemas/remoteable.capnp.h"

namespace wire_test {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// ---- messages ---------------------------------------------------------------------------------

/// The bytes of one framed message (segment table + segments), as the stream carries them.
inline std::string frame(capnp::MessageBuilder& message) {
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

/// A segment table alone: the first bytes of a message announcing segments of `sizes` words.
inline std::string segment_table(const std::vector<std::uint32_t>& sizes) {
  std::vector<std::uint32_t> table;
  table.push_back(static_cast<std::uint32_t>(sizes.size() - 1));
  table.insert(table.end(), sizes.begin(), sizes.end());
  if (table.size() % 2) table.push_back(0);
  return std::string(reinterpret_cast<const char*>(table.data()), table.size() * 4);
}

inline std::string bootstrap(std::uint32_t question) {
  capnp::MallocMessageBuilder message;
  message.initRoot<capnp::rpc::Message>().initBootstrap().setQuestionId(question);
  return frame(message);
}

inline std::string finish(std::uint32_t question) {
  capnp::MallocMessageBuilder message;
  auto f = message.initRoot<capnp::rpc::Message>().initFinish();
  f.setQuestionId(question);
  f.setReleaseResultCaps(true);
  return frame(message);
}

/// Which method a call names, on which interface.
struct Method {
  std::uint64_t interface_id;
  std::uint16_t method_id;
};
namespace registry {
inline constexpr Method fetch{remoteable::wire::Registry::_capnpPrivate::typeId, 0};
inline constexpr Method browse{remoteable::wire::Registry::_capnpPrivate::typeId, 1};
inline constexpr Method store{remoteable::wire::Registry::_capnpPrivate::typeId, 2};
inline constexpr Method attach{remoteable::wire::Registry::_capnpPrivate::typeId, 3};
inline constexpr Method detach{remoteable::wire::Registry::_capnpPrivate::typeId, 4};
}  // namespace registry
namespace handle {
constexpr std::uint64_t id = remoteable::wire::Handle::_capnpPrivate::typeId;
inline constexpr Method attr{id, 0}, set_attr{id, 1}, call{id, 2}, invoke{id, 3}, item{id, 4}, set_item{id, 5},
    len{id, 6}, binary{id, 7}, unary{id, 8}, get{id, 9}, str{id, 10}, truthy{id, 11}, describe{id, 12}, chain{id, 13};
}  // namespace handle

/// A call to the answer of question `target` (the bootstrap when `field` is empty, else the
/// capability in its results' pointer field). `fill` writes the parameters.
inline std::string call(std::uint32_t question, std::uint32_t target, std::optional<std::uint16_t> field,
                        Method method, const std::function<void(capnp::AnyPointer::Builder)>& fill) {
  capnp::MallocMessageBuilder message;
  auto c = message.initRoot<capnp::rpc::Message>().initCall();
  c.setQuestionId(question);
  c.setInterfaceId(method.interface_id);
  c.setMethodId(method.method_id);
  auto promised = c.initTarget().initPromisedAnswer();
  promised.setQuestionId(target);
  if (field) promised.initTransform(1)[0].setGetPointerField(*field);
  auto params = c.initParams();
  if (fill) fill(params.getContent());
  return frame(message);
}

/// A Handle method with no parameters (len, get, str, truthy, describe) on the handle returned
/// by question `target`.
inline std::string handle_call(std::uint32_t question, std::uint32_t target, Method method) {
  return call(question, target, std::uint16_t{0}, method, [method](capnp::AnyPointer::Builder content) {
    // Every parameterless method still takes an (empty) params struct.
    if (method.method_id == handle::len.method_id) content.initAs<remoteable::wire::Handle::LenParams>();
    else if (method.method_id == handle::get.method_id) content.initAs<remoteable::wire::Handle::GetParams>();
    else if (method.method_id == handle::str.method_id) content.initAs<remoteable::wire::Handle::StrParams>();
    else if (method.method_id == handle::truthy.method_id) content.initAs<remoteable::wire::Handle::TruthyParams>();
    else content.initAs<remoteable::wire::Handle::DescribeParams>();
  });
}

inline std::string fetch(std::uint32_t question, std::uint32_t bootstrap_question, std::string_view name) {
  return call(question, bootstrap_question, std::nullopt, registry::fetch, [name](capnp::AnyPointer::Builder content) {
    content.initAs<remoteable::wire::Registry::FetchParams>().setName(capnp::Text::Reader(name.data(), name.size()));
  });
}

inline std::string attr(std::uint32_t question, std::uint32_t target, std::string_view name) {
  return call(question, target, std::uint16_t{0}, handle::attr, [name](capnp::AnyPointer::Builder content) {
    content.initAs<remoteable::wire::Handle::AttrParams>().setName(capnp::Text::Reader(name.data(), name.size()));
  });
}

/// Calls method `name` on the handle of question `target` with int64 arguments.
inline std::string call_method(std::uint32_t question, std::uint32_t target, std::string_view name,
                               const std::vector<std::int64_t>& args) {
  return call(question, target, std::uint16_t{0}, handle::call, [&](capnp::AnyPointer::Builder content) {
    auto p = content.initAs<remoteable::wire::Handle::CallParams>();
    p.setName(capnp::Text::Reader(name.data(), name.size()));
    auto list = p.initArgs(static_cast<unsigned>(args.size()));
    for (unsigned i = 0; i < list.size(); ++i) list[i].setInt64(args[i]);
  });
}

/// `handle(target) + operand`.
inline std::string add(std::uint32_t question, std::uint32_t target, std::int64_t operand) {
  return call(question, target, std::uint16_t{0}, handle::binary, [operand](capnp::AnyPointer::Builder content) {
    auto p = content.initAs<remoteable::wire::Handle::BinaryParams>();
    p.setOp(remoteable::wire::BinaryOp::ADD);
    p.initOperand().setInt64(operand);
  });
}

/// Handle.chain on the handle of question `target`: `count` steps, step i written by `fill`.
inline std::string chain(std::uint32_t question, std::uint32_t target, unsigned count,
                         const std::function<void(unsigned, remoteable::wire::Handle::Step::Builder)>& fill,
                         remoteable::wire::Handle::Fetch fetch = remoteable::wire::Handle::Fetch::VALUE, bool keep = false) {
  return call(question, target, std::uint16_t{0}, handle::chain, [&](capnp::AnyPointer::Builder content) {
    auto p = content.initAs<remoteable::wire::Handle::ChainParams>();
    auto steps = p.initSteps(count);
    for (unsigned i = 0; i < count; ++i) fill(i, steps[i]);
    p.setFetch(fetch);
    p.setKeep(keep);
  });
}

/// Registry.store with a value built by `build`.
inline std::string store(std::uint32_t question, std::uint32_t bootstrap_question,
                         const std::function<void(remoteable::wire::Value::Builder)>& build) {
  return call(question, bootstrap_question, std::nullopt, registry::store, [&](capnp::AnyPointer::Builder content) {
    build(content.initAs<remoteable::wire::Registry::StoreParams>().initValue());
  });
}

/// A list nested `depth` deep with an int at the bottom: [[[...[1]...]]].
inline void nest(remoteable::wire::Value::Builder value, int depth) {
  for (int i = 0; i < depth; ++i) value = value.initList(1)[0];
  value.setInt64(1);
}

/// Registry.store of a list whose encoding claims `elements` zero-sized elements: a few words
/// on the wire that decode as that many `none` values (Cap'n Proto charges such "amplified"
/// lists one word per element against the traversal limit).
inline std::string store_amplified_list(std::uint32_t question, std::uint32_t bootstrap_question,
                                        std::uint32_t elements) {
  constexpr std::uint32_t marker = 7;  // build a 7-element list, then rewrite its tag word
  auto bytes = store(question, bootstrap_question,
                     [](remoteable::wire::Value::Builder v) { v.initList(marker); });
  using V = remoteable::wire::Value::_capnpPrivate;
  auto tag = [](std::uint32_t count, std::uint16_t data, std::uint16_t ptrs) {
    std::uint64_t word = static_cast<std::uint64_t>(count) << 2;  // struct pointer, offset = count
    word |= static_cast<std::uint64_t>(data) << 32;
    word |= static_cast<std::uint64_t>(ptrs) << 48;
    return word;
  };
  const std::uint64_t original = tag(marker, V::dataWordSize, V::pointerCount);
  const std::uint64_t patched = tag(elements, 0, 0);
  bool found = false;
  for (std::size_t at = 0; at + 8 <= bytes.size(); at += 8) {
    std::uint64_t word;
    std::memcpy(&word, bytes.data() + at, 8);
    if (word == original) {
      std::memcpy(bytes.data() + at, &patched, 8);
      found = true;
      break;
    }
  }
  if (!found) throw std::logic_error("store_amplified_list: tag word not found");
  return bytes;
}

// ---- replies ----------------------------------------------------------------------------------

/// One message from the server, with its words kept alive for the reader.
struct Reply {
  kj::Array<capnp::word> words;
  capnp::rpc::Message::Reader message() const {
    if (!reader_) reader_ = std::make_shared<capnp::FlatArrayMessageReader>(words.asPtr(), options());
    return reader_->getRoot<capnp::rpc::Message>();
  }
  static capnp::ReaderOptions options() {
    capnp::ReaderOptions o;
    o.traversalLimitInWords = 1ull << 30;
    return o;
  }

 private:
  // Shared so that a Reply stays movable; it reads `words`, whose buffer a move keeps in place.
  mutable std::shared_ptr<capnp::FlatArrayMessageReader> reader_;
};

/// How the server answered one question.
struct Answer {
  enum Kind { results, exception, canceled, other, aborted, closed, timeout } kind = timeout;
  std::string reason;  ///< the exception's or abort's reason
  Reply reply;         ///< the Return, when there was one
};

// ---- the socket ------------------------------------------------------------------------------

/// A blocking-free loopback connection with bounded reads and writes.
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port, std::chrono::milliseconds limit = 10s) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 && errno != EINPROGRESS) {
      ::close(fd_);
      throw std::runtime_error("connect failed");
    }
    pollfd p{fd_, POLLOUT, 0};
    int error = 0;
    socklen_t length = sizeof error;
    if (::poll(&p, 1, static_cast<int>(limit.count())) != 1 ||
        ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
      ::close(fd_);
      throw std::runtime_error("connect timed out or failed");
    }
  }
  ~RawConnection() { close(); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  /// Closes with a reset rather than a FIN, so that no TIME_WAIT is left behind.
  void close() {
    if (fd_ < 0) return;
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd_);
    fd_ = -1;
  }

  /// Writes all of `bytes`, reading whatever the server sends meanwhile (so neither side can
  /// block the other). False if the server closed or reset the connection first, or `limit`
  /// passed (then `timed_out()`).
  bool write(std::string_view bytes, std::chrono::milliseconds limit = 10s) {
    auto deadline = Clock::now() + limit;
    std::size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;  // EPIPE, ECONNRESET
      if (!wait(POLLOUT | POLLIN, deadline)) {
        timed_out_ = true;
        return false;
      }
      pump();
      if (peer_closed_) return false;
    }
    return true;
  }

  /// Ends our side of the stream: the server reads EOF after the bytes already sent.
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

  /// Reads the next message, or reports that the stream closed or `deadline` passed.
  std::optional<Reply> read_message(Clock::time_point deadline) {
    while (true) {
      if (auto reply = take_message()) return reply;
      if (peer_closed_) return std::nullopt;
      if (!wait(POLLIN, deadline)) {
        timed_out_ = true;
        return std::nullopt;
      }
      pump();
    }
  }

  /// Reads messages until the Return for `question` (or an Abort, the end of the stream, or the
  /// deadline). Returns for other questions read meanwhile are kept for a later call: Cap'n Proto
  /// orders calls, not their answers.
  Answer answer(std::uint32_t question, std::chrono::milliseconds limit = 20s) {
    if (auto kept = kept_.find(question); kept != kept_.end()) {
      auto reply = std::move(kept->second);
      kept_.erase(kept);
      return returned(std::move(reply));
    }
    auto deadline = Clock::now() + limit;
    Answer a;
    while (auto reply = read_message(deadline)) {
      auto m = reply->message();
      if (m.isAbort()) {
        a.kind = Answer::aborted;
        a.reason = m.getAbort().getReason().cStr();
        return a;
      }
      if (!m.isReturn()) continue;
      auto id = m.getReturn().getAnswerId();
      if (id == question) return returned(std::move(*reply));
      kept_.insert_or_assign(id, std::move(*reply));
    }
    a.kind = peer_closed_ ? Answer::closed : Answer::timeout;
    return a;
  }

  /// Reads messages until `count` Returns have come, whatever their questions, those kept by
  /// answer() first (which forgets them); how many came (fewer: an Abort, the end of the stream,
  /// or the deadline).
  std::size_t returns(std::size_t count, std::chrono::milliseconds limit = 20s) {
    auto deadline = Clock::now() + limit;
    std::size_t got = std::min(count, kept_.size());
    kept_.clear();
    while (got < count) {
      auto reply = read_message(deadline);
      if (!reply) break;
      auto m = reply->message();
      if (m.isAbort()) break;
      if (m.isReturn()) ++got;
    }
    return got;
  }

  /// Reads and discards until the server closes the connection; false if `limit` passes first.
  bool wait_closed(std::chrono::milliseconds limit = 20s) {
    auto deadline = Clock::now() + limit;
    while (!peer_closed_) {
      if (!wait(POLLIN, deadline)) {
        timed_out_ = true;
        return false;
      }
      pump();
      buffer_.clear();  // discard: only the close matters here
    }
    return true;
  }

  bool peer_closed() const { return peer_closed_; }
  bool timed_out() const { return timed_out_; }
  std::size_t bytes_received() const { return received_; }

 private:
  /// Waits for `events`; false once `deadline` passes.
  bool wait(short events, Clock::time_point deadline) {
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd_, events, 0};
      int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
      if (n != 0) return true;  // ready, or EINTR: the caller tries again
    }
  }
  /// The Answer a Return makes.
  static Answer returned(Reply reply) {
    Answer a;
    auto r = reply.message().getReturn();
    if (r.isResults()) a.kind = Answer::results;
    else if (r.isException()) {
      a.kind = Answer::exception;
      a.reason = r.getException().getReason().cStr();
    } else if (r.isCanceled()) a.kind = Answer::canceled;
    else a.kind = Answer::other;
    a.reply = std::move(reply);
    return a;
  }
  /// Reads what is there. True if anything was read.
  bool pump() {
    bool any = false;
    char chunk[65536];
    while (true) {
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, MSG_DONTWAIT);
      if (n > 0) {
        buffer_.append(chunk, static_cast<std::size_t>(n));
        received_ += static_cast<std::size_t>(n);
        any = true;
        continue;
      }
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) peer_closed_ = true;
      return any;
    }
  }
  /// A whole message from the front of the buffer, if one is there.
  std::optional<Reply> take_message() {
    if (buffer_.size() < 8) return std::nullopt;
    std::uint32_t count;
    std::memcpy(&count, buffer_.data(), 4);
    if (count >= 512) throw std::runtime_error("server sent a malformed segment table");
    ++count;
    std::size_t table_words = (count + 2) / 2;  // 1 + count u32, rounded up to words
    if (buffer_.size() < table_words * 8) return std::nullopt;
    std::size_t total = 0;
    for (std::uint32_t i = 0; i < count; ++i) {
      std::uint32_t size;
      std::memcpy(&size, buffer_.data() + 4 + 4 * i, 4);
      total += size;
    }
    std::size_t bytes = (table_words + total) * 8;
    if (buffer_.size() < bytes) return std::nullopt;
    Reply reply;
    reply.words = kj::heapArray<capnp::word>(table_words + total);
    std::memcpy(reply.words.begin(), buffer_.data(), bytes);
    buffer_.erase(0, bytes);
    return reply;
  }

  int fd_ = -1;
  std::string buffer_;
  std::map<std::uint32_t, Reply> kept_;  // Returns read before answer() asked for them
  std::size_t received_ = 0;
  bool peer_closed_ = false;
  bool timed_out_ = false;
};

}  // namespace wire_test
