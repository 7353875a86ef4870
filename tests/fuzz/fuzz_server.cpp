// libFuzzer target: arbitrary bytes on a fresh loopback connection to an in-process server.
//
// The server starts once (LLVMFuzzerInitialize). Per input: connect, write the bytes, wait
// (bounded) for the answers to the questions the input asks, half-close, and wait (bounded) for
// the server to close its end. A server that neither answers nor closes is a hang: abort. Every
// 256 inputs or second, a healthy client on its own connection must get real answers and the
// server must be back to one connection and its baseline of live capabilities.
//
// With REMOTEABLE_FUZZ_MAKE_CORPUS=DIR it writes the seed corpus to DIR instead and exits:
// client sessions captured through a recording proxy, plus hand-built and broken messages.

#include <arpa/inet.h>
#include <sys/stat.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "counted.hpp"
#include "fuzz/wire.hpp"
#include "node.hpp"
#include <remoteable/remoteable.hpp>

using namespace wire_test;

namespace {

std::int64_t add_ints(std::int64_t a, std::int64_t b) { return a + b; }

/// The fuzzed server's surface: the walkthrough's Node without the tree-changing methods (a
/// fuzzer could otherwise build reference cycles of its own, which are not server leaks), the
/// counted type, plain values of every kind, and a function.
void register_types(remoteable::Registry& types) {
  types.class_<example::Node>("Node")
      .constructor<std::int64_t>()
      .field("value", &example::Node::value)
      .method("child", &example::Node::child)
      .method("child_count", &example::Node::child_count);
  test::register_counted(types);
}

void export_surface(remoteable::Server& server) {
  auto root = std::make_shared<example::Node>(1);
  root->add_child(std::make_shared<example::Node>(2));
  server.export_object(root, "root");
  server.export_object(root->children[0], "child", remoteable::same_actor_as{"root"});
  server.export_class<example::Node>("Node");
  server.export_class<test::Counted>("Counted");
  server.export_value(std::int64_t{5}, "five");
  server.export_value(2.5, "half");
  server.export_value(std::string("text"), "text");
  server.export_value(std::vector<std::int64_t>{1, 2, 3}, "list");
  server.export_value(std::map<std::string, std::int64_t>{{"a", 1}, {"b", 2}}, "map");
  server.export_function("add", &add_ints);
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "remoteable_fuzz: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

/// Connects on `executor` (parameters, not captures: GCC 12).
asio::awaitable<std::optional<remoteable::Client>> connect_to(asio::any_io_executor executor, remoteable::Endpoint endpoint) {
  co_return co_await remoteable::Client::connect(executor, std::move(endpoint));
}

/// Runs `aw` on `context` until it completes or `limit` passes. Nullopt on timeout; rethrows.
template <class T>
std::optional<T> run_bounded(asio::io_context& context, asio::awaitable<T> aw, std::chrono::milliseconds limit) {
  auto result = std::make_shared<std::optional<T>>();
  auto error = std::make_shared<std::exception_ptr>();
  auto done = std::make_shared<bool>(false);
  asio::co_spawn(context, std::move(aw), [result, error, done](std::exception_ptr e, T value) {
    *error = e;
    if (!e) result->emplace(std::move(value));
    *done = true;
  });
  context.restart();
  auto deadline = Clock::now() + limit;
  while (!*done && Clock::now() < deadline) context.run_one_for(deadline - Clock::now());
  if (!*done) return std::nullopt;
  if (*error) std::rethrow_exception(*error);
  return std::move(*result);
}

/// What the healthy client checks: real answers from immutable exports.
asio::awaitable<bool> healthy_answers(remoteable::Client client) {
  auto ten = client.fetch("five") * 2;
  auto eight = client.fetch("Node")(7).attr("value") + 1;
  auto a = co_await ten.as<std::int64_t>();
  auto b = co_await eight.as<std::int64_t>();
  co_return a == 10 && b == 8;
}

struct Harness {
  Harness() {
    register_types(types);
    remoteable::ServerOptions options;
    options.actor_threads = 2;
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types, options);
    export_surface(server->server());
    base_handles = server->server().live_handles();
    auto connected = run_bounded(context, connect_to(context.get_executor(), endpoint()), 20s);
    if (!connected || !*connected) die("cannot connect the healthy client");
    healthy.emplace(std::move(**connected));
    check();
  }
  remoteable::Endpoint endpoint() const { return {"127.0.0.1", server->port()}; }

  /// The server still serves, holds one connection (the healthy one) and no capability that
  /// the raw connections held.
  void check() {
    std::optional<bool> ok;
    try {
      ok = run_bounded(context, healthy_answers(*healthy), 10s);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "remoteable_fuzz: healthy client failed: %s\n", e.what());
      die("the server stopped serving a healthy client");
    }
    if (!ok) die("the healthy client's evaluation timed out");
    if (!*ok) die("the healthy client got a wrong answer");
    bool settled = test::eventually(context, [&] {
      return server->server().connections() == 1 && server->server().live_handles() == base_handles;
    }, 10s);
    if (!settled) {
      std::fprintf(stderr, "remoteable_fuzz: connections=%zu live_handles=%zu (baseline 1, %zu)\n",
                   server->server().connections(), server->server().live_handles(), base_handles);
      die("a closed connection left connections or capabilities behind");
    }
    last_check = Clock::now();
  }

  remoteable::Registry types;
  std::optional<remoteable::ThreadedServer> server;
  std::size_t base_handles = 0;
  asio::io_context context;
  std::optional<remoteable::Client> healthy;
  Clock::time_point last_check;
  std::uint64_t inputs = 0;
};

/// libFuzzer's C interface leaves no owner but the process: the harness lives until exit.
Harness* harness = nullptr;

/// One message of the input, as far as the input parses as a stream of RPC messages.
struct Piece {
  std::size_t end;     ///< byte offset just past the message
  bool question;       ///< a Bootstrap or Call whose results go to the caller: the server owes a Return
  bool needs_answers;  ///< names a capability the server exports only in a Return
};

/// Splits the input into messages until it stops parsing; the rest is sent as it is.
std::vector<Piece> pieces_of(const std::uint8_t* data, std::size_t size) {
  std::vector<Piece> pieces;
  auto words = kj::heapArray<capnp::word>(size / sizeof(capnp::word));
  if (words.size() > 0) std::memcpy(words.begin(), data, words.size() * sizeof(capnp::word));
  kj::ArrayPtr<const capnp::word> rest = words.asPtr();
  try {
    while (rest.size() > 0 && pieces.size() < 4096) {
      capnp::ReaderOptions options;
      options.traversalLimitInWords = 1 << 20;
      capnp::FlatArrayMessageReader reader(rest, options);
      auto m = reader.getRoot<capnp::rpc::Message>();
      Piece piece{0, m.isBootstrap() || m.isCall(), m.isRelease() || m.isDisembargo()};
      if (m.isCall()) {
        auto call = m.getCall();
        // Results kept by the server for a tail call (sendResultsTo.yourself) are answered
        // only once the caller finishes the question: no Return is owed before that.
        if (!call.getSendResultsTo().isCaller()) piece.question = false;
        piece.needs_answers = call.getTarget().isImportedCap() || call.getParams().getCapTable().size() > 0;
      }
      auto end = reader.getEnd();
      if (end <= rest.begin() || end > rest.end()) break;
      piece.end = static_cast<std::size_t>(end - words.begin()) * sizeof(capnp::word);
      pieces.push_back(piece);
      rest = kj::ArrayPtr<const capnp::word>(end, rest.end());
    }
  } catch (const kj::Exception&) {
  }
  return pieces;
}

/// Reads replies until `returns` reaches `owed`, the server closes, or `deadline` passes.
void await_returns(RawConnection& raw, std::size_t owed, std::size_t& returns, Clock::time_point deadline) {
  while (returns < owed && !raw.peer_closed()) {
    auto reply = raw.read_message(deadline);
    if (!reply) return;
    try {
      auto m = reply->message();
      if (m.isReturn()) {
        ++returns;
        if (std::getenv("REMOTEABLE_FUZZ_VERBOSE"))
          std::fprintf(stderr, "remoteable_fuzz: return %u (%s)\n", m.getReturn().getAnswerId(),
                       m.getReturn().isException() ? m.getReturn().getException().getReason().cStr() : "results");
      }
      if (m.isAbort() && std::getenv("REMOTEABLE_FUZZ_VERBOSE"))
        std::fprintf(stderr, "remoteable_fuzz: abort: %s\n", m.getAbort().getReason().cStr());
    } catch (const kj::Exception&) {
      die("the server sent a message that does not parse");
    }
  }
}

// ---- the seed corpus --------------------------------------------------------------------------

/// A one-shot TCP proxy that records what the client sends. Blocking sockets on its own thread;
/// `captured` is read only after join().
class Recorder {
 public:
  explicit Recorder(std::uint16_t server_port) : server_port_(server_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listener_, 1) != 0)
      die("recorder: cannot listen");
    socklen_t length = sizeof a;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &length);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { pump(); });
  }
  ~Recorder() {
    if (thread_.joinable()) thread_.join();
    ::close(listener_);
  }
  std::uint16_t port() const { return port_; }
  std::string finish() {
    thread_.join();
    return captured_;
  }

 private:
  void pump() {
    int client = ::accept(listener_, nullptr, nullptr);
    int server = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(server_port_);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (client < 0 || ::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("recorder: cannot connect");
    pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    char buffer[65536];
    bool open = true;
    while (open && ::poll(fds, 2, 20000) > 0) {
      for (int i = 0; i < 2 && open; ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        auto n = ::recv(fds[i].fd, buffer, sizeof buffer, 0);
        if (n <= 0) {
          open = false;
          break;
        }
        if (i == 0) captured_.append(buffer, static_cast<std::size_t>(n));
        ::send(fds[1 - i].fd, buffer, static_cast<std::size_t>(n), MSG_NOSIGNAL);
      }
    }
    ::close(client);
    ::close(server);
  }

  std::uint16_t server_port_;
  std::uint16_t port_ = 0;
  int listener_ = -1;
  std::thread thread_;
  std::string captured_;
};

// Client sessions to capture. Each awaits its steps in order; results are not checked here
// (the tests do that), only recorded.
asio::awaitable<bool> session_walkthrough(remoteable::Client c) {
  auto names = co_await c.browse();
  auto root = c.fetch("root");
  auto v = co_await root.attr("value").as<std::int64_t>();
  auto child = root.call("child", 0);
  auto chained = child.attr("value") + 4;
  auto six = co_await chained.as<std::int64_t>();
  auto same = child == c.fetch("child");
  auto is_same = co_await same.truthy();
  auto ref = c.store(5);
  co_await c.attach(ref, "exported_by_client");
  auto fetched = c.fetch("exported_by_client") == ref;
  auto equal = co_await fetched.truthy();
  co_await c.detach("exported_by_client");
  auto node = c.fetch("Node")(3);
  auto d = co_await node.describe();
  auto s = co_await node.attr("value").str();
  co_return !names.empty() && v == 1 && six == 6 && is_same && equal && !d.members.empty() && s == "3";
}

asio::awaitable<bool> session_errors(remoteable::Client c) {
  int failures = 0;
  auto missing = c.fetch("nope");
  try {
    co_await missing.get();
  } catch (const remoteable::RemoteError&) {
    ++failures;
  }
  auto out_of_range = c.fetch("root").call("child", 99);
  try {
    co_await out_of_range.get();
  } catch (const remoteable::RemoteError&) {
    ++failures;
  }
  auto divide = c.fetch("five") / 0;
  try {
    co_await divide.get();
  } catch (const remoteable::RemoteError&) {
    ++failures;
  }
  auto wrong_args = c.fetch("add")(1);
  try {
    co_await wrong_args.get();
  } catch (const remoteable::RemoteError&) {
    ++failures;
  }
  co_return failures == 4;
}

asio::awaitable<bool> session_counted(remoteable::Client c) {
  auto counted = c.fetch("Counted")(10);
  auto added = co_await counted.call("add", 5).as<std::int64_t>();
  auto twin = counted.call("twin");
  co_await twin.set("value", 1);
  auto value = co_await twin.attr("value").as<std::int64_t>();
  co_return added == 15 && value == 1;
}

asio::awaitable<bool> capture(remoteable::Endpoint endpoint, int which) {
  auto executor = co_await asio::this_coro::executor;
  auto client = co_await remoteable::Client::connect(executor, endpoint);
  bool ok = false;
  if (which == 0) ok = co_await session_walkthrough(client);
  else if (which == 1) ok = co_await session_errors(client);
  else ok = co_await session_counted(client);
  client.close();
  co_return ok;
}

/// One pipelined session touching every Registry and Handle method, on promised answers only
/// (so it replays exactly).
std::string every_method() {
  namespace w = remoteable::wire;
  using A = capnp::AnyPointer::Builder;
  auto text = [](const char* t) { return capnp::Text::Reader(t); };
  std::string s = bootstrap(0) + call(1, 0, std::nullopt, registry::browse, [](A c) { c.initAs<w::Registry::BrowseParams>(); });
  s += fetch(2, 0, "Counted");
  s += call(3, 2, std::uint16_t{0}, handle::invoke, [](A c) { c.initAs<w::Handle::InvokeParams>().initArgs(1)[0].setInt64(4); });
  s += call(4, 3, std::uint16_t{0}, handle::set_attr, [&](A c) {
    auto p = c.initAs<w::Handle::SetAttrParams>();
    p.setName(text("value"));
    p.initValue().setInt64(9);
  });
  s += call_method(5, 3, "add", {1});
  s += call(6, 5, std::uint16_t{0}, handle::unary, [](A c) { c.initAs<w::Handle::UnaryParams>().setOp(w::UnaryOp::NEG); });
  s += handle_call(7, 6, handle::str) + handle_call(8, 3, handle::describe) + handle_call(9, 5, handle::truthy);
  s += store(10, 0, [](w::Value::Builder v) {
    auto map = v.initMap(2);
    map[0].setKey("k");
    map[0].initValue().setText("v");
    map[1].setKey("b");
    map[1].initValue().setBytes(capnp::Data::Reader(reinterpret_cast<const kj::byte*>("xy"), 2));
  });
  s += call(11, 10, std::uint16_t{0}, handle::item, [&](A c) { c.initAs<w::Handle::ItemParams>().initKey().setText(text("k")); });
  s += call(12, 10, std::uint16_t{0}, handle::set_item, [&](A c) {
    auto p = c.initAs<w::Handle::SetItemParams>();
    p.initKey().setText(text("n"));
    p.initValue().setFloat64(0.5);
  });
  s += handle_call(13, 10, handle::len) + handle_call(14, 10, handle::get);
  s += call(15, 0, std::nullopt, registry::attach, [&](A c) {
    // A name and no handle (a null capability): the error path of attach.
    c.initAs<w::Registry::AttachParams>().setName(text("seed"));
  });
  s += call(16, 0, std::nullopt, registry::detach, [&](A c) { c.initAs<w::Registry::DetachParams>().setName(text("seed")); });
  s += call(17, 5, std::uint16_t{0}, handle::binary, [](A c) {
    auto p = c.initAs<w::Handle::BinaryParams>();
    p.setOp(w::BinaryOp::SHL);
    p.setReflected(true);
    p.initOperand().setBool(true);
  });
  s += handle_call(18, 17, handle::get);
  // A chain of every step kind on the Counted (the steps fail where the kinds do not fit), and
  // one kept and used.
  s += chain(19, 3, 7, [&](unsigned i, w::Handle::Step::Builder step) {
    switch (i) {
      case 0: step.initCall().setName(text("twin")); break;
      case 1: step.setAttr(text("value")); break;
      case 2: {
        auto b = step.initBinary();
        b.setOp(w::BinaryOp::MUL);
        b.initOperand().setInt64(3);
        break;
      }
      case 3: step.setUnary(w::UnaryOp::NEG); break;
      case 4: step.initItem().setInt64(0); break;
      case 5: step.setLen(); break;
      default: step.initInvoke(1)[0].setNone(); break;
    }
  });
  s += chain(20, 3, 2, [&](unsigned i, w::Handle::Step::Builder step) {
    if (i == 0) step.setAttr(text("value"));
    else step.setUnary(w::UnaryOp::INVERT);
  }, w::Handle::Fetch::TEXT, true);
  s += handle_call(21, 20, handle::get);
  return s;
}

void write_file(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::ofstream out(dir + "/" + name, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) die("cannot write a corpus file");
}

void make_corpus(const std::string& dir) {
  ::mkdir(dir.c_str(), 0755);
  const char* sessions[] = {"session-walkthrough", "session-errors", "session-counted"};
  for (int i = 0; i < 3; ++i) {
    Recorder recorder(harness->server->port());
    asio::io_context context;
    auto ok = run_bounded(context, capture({"127.0.0.1", recorder.port()}, i), 20s);
    context.restart();
    context.poll();  // lets the close go out
    if (!ok || !*ok) die("a captured session did not give the expected answers");
    write_file(dir, sessions[i], recorder.finish());
  }
  const auto simple = bootstrap(0) + fetch(1, 0, "five") + handle_call(2, 1, handle::get);
  write_file(dir, "raw-fetch-get", simple);
  write_file(dir, "raw-pipelined-chain", bootstrap(0) + fetch(1, 0, "root") + call_method(2, 1, "child", {0}) +
                                             attr(3, 2, "value") + add(4, 3, 4) + handle_call(5, 4, handle::get));
  write_file(dir, "raw-every-method", every_method());
  write_file(dir, "raw-nested-20", bootstrap(0) + store(1, 0, [](remoteable::wire::Value::Builder v) { nest(v, 20); }) +
                                       handle_call(2, 1, handle::len));
  write_file(dir, "raw-amplified-list", bootstrap(0) + store_amplified_list(1, 0, 1000) + handle_call(2, 1, handle::len));
  // Just inside the traversal limit: refused for its zero-sized elements, not for its length.
  write_file(dir, "raw-amplified-near-limit", bootstrap(0) + store_amplified_list(1, 0, 8'000'000) + handle_call(2, 1, handle::get));
  write_file(dir, "raw-finish-early", simple + finish(0) + finish(1));
  write_file(dir, "truncated-table", simple.substr(0, 6));
  write_file(dir, "truncated-body", simple.substr(0, simple.size() - 9));
  write_file(dir, "header-100mb", segment_table({100u * 1024 * 1024 / 8}));
  const char garbage[] = "\x03\x00\x00\x00\xff\xff\xff\x7f garbage \x01\x02\x03\x04";
  write_file(dir, "garbage", std::string(garbage, sizeof garbage - 1));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  harness = new Harness;
  if (const char* dir = std::getenv("REMOTEABLE_FUZZ_MAKE_CORPUS")) {
    make_corpus(dir);
    std::printf("remoteable_fuzz: corpus written to %s\n", dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto pieces = pieces_of(data, size);
  {
    RawConnection raw(harness->server->port());
    // Send message by message as a real client would: a message that names a capability the
    // server exports in a Return waits (bounded) until the questions before it are answered.
    // What does not parse goes out as it is, at the end.
    const auto deadline = Clock::now() + 3s;
    std::size_t sent = 0, owed = 0, returns = 0;
    bool open = true;
    for (const auto& piece : pieces) {
      if (piece.needs_answers) await_returns(raw, owed, returns, deadline);
      open = raw.write(bytes.substr(sent, piece.end - sent), 5s);
      if (!open) break;
      sent = piece.end;
      owed += piece.question;
    }
    if (open && sent < size) open = raw.write(bytes.substr(sent), 5s);
    if (open) await_returns(raw, owed, returns, deadline);  // let the calls run before the end
    raw.shutdown_write();
    if (!raw.wait_closed(10s)) die("the server neither answered nor closed the connection (hang)");
    if (std::getenv("REMOTEABLE_FUZZ_VERBOSE"))
      std::fprintf(stderr, "remoteable_fuzz: %zu bytes, %zu messages, %zu questions, %zu answered, %zu bytes back\n",
                   size, pieces.size(), owed, returns, raw.bytes_received());
  }
  if (++harness->inputs % 256 == 0 || Clock::now() - harness->last_check > 1s) harness->check();
  return 0;
}
