// Streams (issue 13): flow-controlled sequences of calls to a sink object's method, both ways
// (a client writing to a server's object, server code writing to an object a client shared), with
// a bounded window of bytes in flight; errors end the stream on both ends. Over real sockets.

#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include <remoteable/stream.hpp>

#include "counted.hpp"
#include "heap.hpp"
#include "process.hpp"
#include "stream_sink.hpp"
#include "support.hpp"

namespace {

using namespace std::chrono_literals;
using remoteable::ErrorKind;
using remoteable::Handle;
using remoteable::RemoteError;
using test::Sink;

/// On the server: pushes to a sink the client passes in, with a writer of its own.
struct Pump {
  /// Streams 0..n-1 to `sink`'s put_int with a small window, closes (end), and answers "ok", or
  /// the kind of the error the stream ended with.
  asio::awaitable<std::string> push(Handle sink, std::int64_t n) {
    auto w = remoteable::stream(sink, "put_int", {.window_bytes = 4096, .end_method = "end"});
    try {
      for (std::int64_t i = 0; i < n; ++i) co_await w.write(i);
      co_await w.close();
    } catch (const RemoteError& e) {
      co_return std::string(remoteable::to_string(e.kind()));
    }
    co_return std::string("ok");
  }
};

struct Fixture {
  Fixture() {
    Sink::register_type(server_types);
    server_types.class_<Pump>("Pump").method("push", &Pump::push);
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, server_types);
    server->server().export_object(sink, "sink");
    server->server().export_object(std::make_shared<Pump>(), "pump");
    client_types = std::make_shared<remoteable::Registry>();
    Sink::register_type(*client_types);
    remoteable::ClientOptions options;
    options.registry = client_types;
    client.emplace(test::connect(context, {"127.0.0.1", server->port()}, options));
  }
  ~Fixture() {
    client->close();
    context.restart();
    context.poll();
  }
  template <class T> T run(asio::awaitable<T> aw) { return test::await(context, std::move(aw), 120s); }
  void run(asio::awaitable<void> aw) { test::await(context, std::move(aw), 120s); }
  bool eventually(auto pred) { return test::eventually(context, pred); }

  remoteable::Registry server_types;
  std::shared_ptr<Sink> sink = std::make_shared<Sink>();
  std::optional<remoteable::ThreadedServer> server;
  std::shared_ptr<remoteable::Registry> client_types;
  asio::io_context context;
  std::optional<remoteable::Client> client;
};

/// Writes 0..n-1 to `w` and closes it.
asio::awaitable<void> write_ints(remoteable::StreamWriter w, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) co_await w.write(i);
  co_await w.close();
}

/// Another process's resident set, in bytes, from /proc/PID/status.
std::size_t rss_of(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

std::string tool(const char* name) { return std::string(REMOTEABLE_TEST_TOOLS) + "/" + name; }

/// Under AddressSanitizer, freed memory waits in a quarantine (256 MiB by default) before it is
/// reused, and stays resident meanwhile: a child started after this runs without one, so that
/// its RSS measures what it holds. (Harmless without ASan.)
void without_asan_quarantine() {
  const char* env = std::getenv("ASAN_OPTIONS");
  std::string options = env ? env : "";
  if (options.find("quarantine_size_mb") != std::string::npos) return;
  options += options.empty() ? "quarantine_size_mb=0" : ":quarantine_size_mb=0";
  ::setenv("ASAN_OPTIONS", options.c_str(), 1);
}

/// A sink_server process (tools/sink_server.cpp), and the port it listens on.
struct SinkProcess {
  explicit SinkProcess(std::vector<std::string> args = {}) : process([&] {
      without_asan_quarantine();
      args.insert(args.begin(), tool("sink_server"));
      return test::Process(args);
    }()) {
    auto line = process.read_line();
    REQUIRE(line);
    REQUIRE(line->rfind("port ", 0) == 0);
    port = static_cast<std::uint16_t>(std::stoi(line->substr(5)));
  }
  std::size_t rss() const { return rss_of(std::to_string(process.pid())); }
  test::Process process;
  std::uint16_t port = 0;
};

remoteable::Bytes chunk(std::size_t n) {
  remoteable::Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>(i * 31);
  return b;
}

}  // namespace

TEST_CASE("a client streams 10,000 ints to a server's sink: all arrive, in order, and end runs after the last") {
  Fixture f;
  auto w = remoteable::stream(f.client->fetch("sink"), "put_int", {.window_bytes = 8192, .end_method = "end"});
  f.run(write_ints(std::move(w), 10'000));
  auto got = f.sink->ints();
  REQUIRE(got.size() == 10'000);
  for (std::int64_t i = 0; i < 10'000; ++i) REQUIRE(got[static_cast<std::size_t>(i)] == i);
  CHECK(f.sink->ended());
  CHECK(f.sink->end_saw() == 10'000);
}

TEST_CASE("server code streams to a sink the client shared, through the same writer") {
  Fixture f;
  auto mine = std::make_shared<Sink>();
  CHECK(f.run(f.client->fetch("pump").call("push", f.client->share(mine), 5'000).as<std::string>()) == "ok");
  auto got = mine->ints();
  REQUIRE(got.size() == 5'000);
  for (std::int64_t i = 0; i < 5'000; ++i) REQUIRE(got[static_cast<std::size_t>(i)] == i);
  CHECK(mine->ended());
  CHECK(mine->end_saw() == 5'000);
}

TEST_CASE("a sink that fails in the middle: the writer throws its kind, and no later write is delivered") {
  Fixture f;
  f.sink->fail_at(100);
  auto w = remoteable::stream(f.client->fetch("sink"), "put_int", {.window_bytes = 4096, .end_method = "end"});
  // The writes pipelined behind the bad one are sent before its error comes back; the writer
  // reports the error at the next write, or at close.
  std::int64_t written = 0;
  auto kind = test::error_of(f.context, [](remoteable::StreamWriter& w, std::int64_t& written) -> asio::awaitable<void> {
    for (std::int64_t i = 0; i < 100'000; ++i) {
      co_await w.write(i);
      ++written;
    }
    co_await w.close();
  }(w, written));
  CHECK(kind == ErrorKind::value);
  CHECK(written < 100'000);
  // Once the error is known, close reports it too (after every write in flight is answered).
  CHECK(test::error_of(f.context, w.close()) == ErrorKind::value);
  CHECK(f.sink->calls() == 101);  // the 100 good ones and the bad one; none after it ran
  CHECK(f.sink->ints().size() == 100);
  CHECK_FALSE(f.sink->ended());
}

TEST_CASE("a client's sink that fails in the middle ends the server's stream with its kind") {
  Fixture f;
  auto mine = std::make_shared<Sink>();
  mine->fail_at(10);
  CHECK(f.run(f.client->fetch("pump").call("push", f.client->share(mine), 5'000).as<std::string>()) == "value");
  CHECK(mine->calls() == 11);
  CHECK_FALSE(mine->ended());
}

TEST_CASE("the writer fails the stream: the sink's fail method gets the kind and the message, after the writes before it") {
  Fixture f;
  auto w = remoteable::stream(f.client->fetch("sink"), "put_int", {.window_bytes = 4096, .end_method = "end", .fail_method = "fail"});
  f.run([](remoteable::StreamWriter& w) -> asio::awaitable<void> {
    for (std::int64_t i = 0; i < 500; ++i) co_await w.write(i);
    co_await w.fail(ErrorKind::value, "the input file is truncated");
  }(w));
  CHECK(f.sink->failure() == "value: the input file is truncated");
  CHECK(f.sink->fail_saw() == 500);
  CHECK_FALSE(f.sink->ended());
  // The writer's own error ends the stream on its side too.
  CHECK(test::error_of(f.context, w.write(std::int64_t{1})) == ErrorKind::value);
  CHECK(f.sink->calls() == 500);
}

TEST_CASE("a writer dropped before close: the sink learns the stream was cancelled") {
  Fixture f;
  {
    auto w = remoteable::stream(f.client->fetch("sink"), "put_int", {.fail_method = "fail"});
    f.run([](remoteable::StreamWriter& w) -> asio::awaitable<void> {
      for (std::int64_t i = 0; i < 10; ++i) co_await w.write(i);
    }(w));
  }
  CHECK(f.eventually([&] { return !f.sink->failure().empty(); }));
  CHECK(f.sink->failure().rfind("cancelled: ", 0) == 0);
  CHECK(f.sink->calls() == 10);
}

TEST_CASE("a sink's method the sink does not have fails the first write with an attribute error") {
  Fixture f;
  auto w = remoteable::stream(f.client->fetch("sink"), "no_such_method");
  // The first write is sent at once (the window is empty); its answer fails the next operation.
  f.run(w.write(std::int64_t{1}));
  CHECK(test::error_of(f.context, w.close()) == ErrorKind::attribute);
}

TEST_CASE("a reader that stops reading stalls the writer at the window; released, every write arrives") {
  Fixture f;
  constexpr std::size_t size = 64 * 1024;
  constexpr std::size_t window = 1 << 20;
  constexpr std::int64_t total = 200;
  auto w = remoteable::stream(f.client->fetch("sink"), "put_gated", {.window_bytes = window});
  std::int64_t returned = 0;
  bool done = false;
  std::exception_ptr error;
  asio::co_spawn(f.context, [](remoteable::StreamWriter& w, std::int64_t& returned) -> asio::awaitable<void> {
    auto data = chunk(size);
    for (std::int64_t i = 0; i < total; ++i) {
      co_await w.write(data);
      ++returned;
    }
    co_await w.close();
  }(w, returned), [&](std::exception_ptr e) {
    error = e;
    done = true;
  });
  // The sink is stuck in its first call; the writer fills the window and waits.
  constexpr auto fit = static_cast<std::int64_t>(window / size);  // writes of a bit more than 64 KiB each
  REQUIRE(f.eventually([&] { return f.sink->calls() == 1 && returned >= fit - 1; }));
  // Give it every chance to go on (a bounded look, not a synchronisation): it does not.
  f.context.restart();
  f.context.run_for(300ms);
  CHECK(returned <= fit);
  CHECK(f.sink->calls() == 1);
  CHECK(w.bytes_in_flight() <= window);
  CHECK(w.writes_answered() == 0);
  CHECK_FALSE(done);
  // Released: everything arrives, in full.
  f.sink->valve->open();
  REQUIRE(f.eventually([&] { return done; }));
  CHECK_FALSE(error);
  CHECK(returned == total);
  CHECK(f.sink->calls() == total);
  CHECK(f.sink->bytes() == static_cast<std::int64_t>(total * size));
}

TEST_CASE("a 1 GiB upload through a sink with a 1 MiB window keeps the receiver's memory bounded") {
  // REMOTEABLE_STREAM_TEST_MIB sets the size (1024 by default).
  std::size_t mib = 1024;
  if (const char* env = std::getenv("REMOTEABLE_STREAM_TEST_MIB")) mib = std::stoull(env);
  SinkProcess server;
  asio::io_context context;
  auto client = test::connect(context, {"127.0.0.1", server.port});
  auto sink = client.fetch("sink");
  // Once connected and the sink reached, the server's memory is at its starting level.
  CHECK(test::await(context, sink.call("calls").as<std::int64_t>()) == 0);
  std::size_t before = server.rss();
  REQUIRE(before > 0);
  constexpr std::size_t size = 64 * 1024;
  const auto writes = static_cast<std::int64_t>(mib * 1024 * 1024 / size);
  std::size_t peak = before;
  test::await(context, [](remoteable::StreamWriter w, std::int64_t writes, SinkProcess& server, std::size_t& peak) -> asio::awaitable<void> {
    auto data = chunk(size);
    for (std::int64_t i = 0; i < writes; ++i) {
      co_await w.write(data);
      if (i % 64 == 0) peak = std::max(peak, server.rss());
    }
    co_await w.close();
  }(remoteable::stream(sink, "put", {.window_bytes = 1 << 20}), writes, server, peak), 600s);
  CHECK(test::await(context, sink.call("bytes").as<std::int64_t>()) == static_cast<std::int64_t>(mib * 1024 * 1024));
  peak = std::max(peak, server.rss());
  INFO("server RSS before " << before / 1024 << " KiB, peak " << peak / 1024 << " KiB");
  CHECK(peak - before < 64u * 1024 * 1024);
  client.close();
  context.restart();
  context.poll();
}

TEST_CASE("a writer that ignores the window cannot make the server hold more than max_inflight_call_bytes") {
  // The server stops reading a connection with more than 4 MiB of calls unanswered; the writer
  // sends 96 MiB with a window large enough for all of it, to a sink stuck in its first call.
  SinkProcess server({std::to_string(4 * 1024 * 1024)});
  asio::io_context context;
  auto writer = test::connect(context, {"127.0.0.1", server.port});
  auto other = test::connect(context, {"127.0.0.1", server.port});  // its calls are read: another connection
  CHECK(test::await(context, other.fetch("sink").call("calls").as<std::int64_t>()) == 0);
  CHECK(test::await(context, other.fetch("valve").call("entered").as<std::int64_t>()) == 0);
  std::size_t before = server.rss();
  constexpr std::size_t size = 64 * 1024;
  constexpr std::int64_t total = 96 * 16;
  std::int64_t returned = 0;
  bool done = false;
  std::exception_ptr error;
  asio::co_spawn(context, [](remoteable::StreamWriter w, std::int64_t& returned) -> asio::awaitable<void> {
    auto data = chunk(size);
    for (std::int64_t i = 0; i < total; ++i) {
      co_await w.write(data);
      ++returned;
    }
    co_await w.close();
  }(remoteable::stream(writer.fetch("sink"), "put_gated", {.window_bytes = std::size_t{1} << 30}), returned), [&](std::exception_ptr e) {
    error = e;
    done = true;
  });
  // Every write is handed to the connection at once (the window allows it)...
  REQUIRE(test::eventually(context, [&] { return returned == total; }));
  // ...and the server, stuck, reads a few MiB of them and no more. A bounded look at its memory.
  std::size_t peak = before;
  auto until = std::chrono::steady_clock::now() + 500ms;
  while (std::chrono::steady_clock::now() < until) {
    context.restart();
    context.run_for(20ms);
    peak = std::max(peak, server.rss());
  }
  INFO("server RSS before " << before / 1024 << " KiB, peak " << peak / 1024 << " KiB");
  CHECK(peak - before < 32u * 1024 * 1024);
  CHECK(test::await(context, other.fetch("valve").call("entered").as<std::int64_t>()) == 1);
  // Released, every write arrives.
  test::await(context, other.fetch("valve").call("open").get());
  REQUIRE(test::eventually(context, [&] { return done; }, 60s));
  CHECK_FALSE(error);
  CHECK(test::await(context, other.fetch("sink").call("bytes").as<std::int64_t>()) == static_cast<std::int64_t>(total * size));
  writer.close();
  other.close();
  context.restart();
  context.poll();
}

TEST_CASE("server code that ignores the window cannot make a client hold more than its max_inflight_call_bytes") {
  // The client stops reading once 4 MiB of the server's calls to its objects are unanswered; the
  // server streams 48 MiB (under its own max_outbound_bytes) with a 1 GiB window to the
  // client's sink, stuck in its first call.
  SinkProcess server;
  asio::io_context context;
  auto types = std::make_shared<remoteable::Registry>();
  Sink::register_type(*types);
  remoteable::ClientOptions options;
  options.registry = types;
  options.max_inflight_call_bytes = 4 * 1024 * 1024;
  auto client = test::connect(context, {"127.0.0.1", server.port}, options);
  // Over its limit the client reads nothing on that connection, answers included: the test
  // asks how far the server got over another.
  auto observer = test::connect(context, {"127.0.0.1", server.port});
  auto mine = std::make_shared<Sink>();
  constexpr std::int64_t total = 48 * 16;
  CHECK(test::await(context, observer.fetch("pumped")().as<std::int64_t>()) == 0);
  // What the client holds: its heap in use (this process runs under AddressSanitizer in
  // scripts/test, whose quarantine keeps freed memory resident: its RSS grows with what the
  // client read and freed, not with what it holds).
  std::size_t before = test::heap_in_use();
  std::optional<std::int64_t> answer;
  std::exception_ptr error;
  asio::co_spawn(context, client.fetch("pump").call("flood", client.share(mine), total).as<std::int64_t>(),
                 [&](std::exception_ptr e, std::int64_t n) {
                   error = e;
                   answer = n;
                 });
  // The server's writer hands every write to its connection at once (asked round trip by round
  // trip: a bounded wait on an event, no sleep)...
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (test::await(context, observer.fetch("pumped")().as<std::int64_t>()) != total)
    REQUIRE(std::chrono::steady_clock::now() < deadline);
  // ...and the client, its sink stuck, reads a few MiB of them and no more.
  std::size_t peak = before;
  auto until = std::chrono::steady_clock::now() + 500ms;
  while (std::chrono::steady_clock::now() < until) {
    context.restart();
    context.run_for(20ms);
    peak = std::max(peak, test::heap_in_use());
  }
  INFO("client heap in use before " << before / 1024 << " KiB, peak " << peak / 1024 << " KiB");
  CHECK(peak - before < 16u * 1024 * 1024);  // 4 MiB read, and what reading them costs; all 48 without the bound
  CHECK(mine->valve->entered() == 1);
  // Released, every write arrives.
  mine->valve->open();
  REQUIRE(test::eventually(context, [&] { return answer.has_value(); }, 60s));
  CHECK_FALSE(error);
  CHECK(*answer == total);
  CHECK(mine->bytes() == total * 64 * 1024);
  client.close();
  observer.close();
  context.restart();
  context.poll();
}

TEST_CASE("open streams count as live handles: past max_handles_per_connection a new one fails overloaded") {
  remoteable::Registry types;
  Sink::register_type(types);
  remoteable::ServerOptions options;
  options.max_handles_per_connection = 4;
  remoteable::ThreadedServer server({"127.0.0.1", 0}, types, options);
  auto sink = std::make_shared<Sink>();
  server.server().export_object(sink, "sink");
  asio::io_context context;
  auto client = test::connect(context, {"127.0.0.1", server.port()});
  auto h = client.fetch("sink");
  CHECK(test::await(context, h.call("calls").as<std::int64_t>()) == 0);  // the sink's handle: 1
  std::vector<remoteable::StreamWriter> open;
  for (std::int64_t i = 0; i < 3; ++i) {
    open.push_back(remoteable::stream(h, "put_int"));
    test::await(context, open.back().write(i));
  }
  REQUIRE(test::eventually(context, [&] { return sink->ints().size() == 3; }));
  CHECK(server.server().live_handles() == 4);
  auto extra = remoteable::stream(h, "put_int");
  try {
    test::await(context, extra.write(99));  // (sent at once: the window has room)
    test::await(context, extra.close());
    FAIL("a fifth live handle was allowed");
  } catch (const RemoteError& e) {
    CHECK(e.kind() == ErrorKind::overloaded);
  }
  CHECK(sink->ints().size() == 3);
  // A stream closed and dropped frees its place.
  test::await(context, open.back().close());
  open.pop_back();
  REQUIRE(test::eventually(context, [&] { return server.server().live_handles() == 3; }));
  auto again = remoteable::stream(h, "put_int");
  test::await(context, again.write(7));
  test::await(context, again.close());
  CHECK(sink->ints().size() == 4);
  open.clear();
  client.close();
  context.restart();
  context.poll();
}
