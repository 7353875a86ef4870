// A member of a chat_server's room: the member is an object here, on the client, which the
// server calls whenever anyone speaks (no polling: the calls run on the client's actor thread).
//   chat_client HOST:PORT NAME
// Joins the room as NAME, sends each line of standard input as a message, and prints every
// message the room pushes to it as "FROM: TEXT" (its own too). At the end of its input it leaves
// the room and exits 0. Each message is sent once the one before it has been delivered: `say`
// returns only after the server has pushed the message to every member and each has taken it,
// which is what makes "the last message was delivered" hold at exit (more robust than waiting
// for our own message to come back, which a full room or a dropped membership would never do).
// A line the room refuses (see chat_server.cpp for its limits) is reported on stderr and the
// client goes on; a lost connection ends it with status 1.

#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/read_until.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <iostream>
#include <memory>
#include <string>

#include <remoteable/remoteable.hpp>

namespace {

/// What the room calls. Its calls run one at a time on the client's actor thread.
struct Member {
  void hear(std::string from, std::string text) { std::cout << from << ": " << text << std::endl; }
};

asio::awaitable<void> chat(remoteable::Endpoint endpoint, std::string name) {
  auto types = std::make_shared<remoteable::Registry>();
  types->class_<Member>("Member").method("hear", &Member::hear);
  remoteable::ClientOptions options;
  options.registry = types;
  auto executor = co_await asio::this_coro::executor;
  auto client = co_await remoteable::Client::connect(executor, endpoint, options);

  auto me = client.fetch("room").call("join", name, client.share(std::make_shared<Member>()));
  (void)co_await me.describe();  // fails here if the room refuses us (name taken, room full)

  // Standard input, read without blocking the thread that runs the connection.
  asio::posix::stream_descriptor input(executor, ::dup(STDIN_FILENO));
  std::string buffer;
  for (;;) {
    std::error_code error;
    std::size_t n = co_await asio::async_read_until(input, asio::dynamic_buffer(buffer), '\n',
                                                    asio::redirect_error(asio::use_awaitable, error));
    if (error && buffer.empty()) break;   // end of input (or a read error)
    if (error) n = buffer.size();         // a last line without a line break
    std::string line = buffer.substr(0, n);
    buffer.erase(0, n);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    try {
      co_await me.call("say", line).get();
    } catch (const remoteable::RemoteError& e) {
      if (e.kind() == remoteable::ErrorKind::disconnected) throw;
      std::cerr << "chat_client: not sent: " << e.what() << std::endl;
    }
  }
  co_await me.call("leave").get();
  client.close();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: chat_client HOST:PORT NAME   (messages on standard input, one a line)" << std::endl;
    return 2;
  }
  int status = 0;
  try {
    asio::io_context context;
    asio::co_spawn(context, chat(remoteable::Endpoint::parse(argv[1]), argv[2]), [&](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& error) {
        std::cerr << "chat_client: " << error.what() << std::endl;
        status = 1;
      }
    });
    context.run();
  } catch (const std::exception& e) {
    std::cerr << "chat_client: " << e.what() << std::endl;
    return 1;
  }
  return status;
}
