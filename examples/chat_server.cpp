// A chat room whose members are objects on the clients: the server keeps a handle to each
// member and pushes every message to all of them (see chat_client.cpp for the other side).
//   chat_server HOST:PORT        (port 0: any free port; the line "serving room on HOST:PORT"
//                                 says which, once it listens)
// Stops cleanly on SIGINT or SIGTERM.
//
// What one client can make the server hold is bounded: at most 64 members in the room (joining
// a full room fails with an overloaded error), names of 1 to 32 bytes, messages of at most 1,000
// bytes (longer fails with a value error), neither with a line break; 256 connections, each
// holding at most 8 handles to its objects. A member that does not take a message within 10 s,
// or whose connection is gone (killed: its pushes fail with a disconnected error), is dropped.

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <remoteable/remoteable.hpp>

namespace {

using namespace std::chrono_literals;
using remoteable::Handle;

constexpr std::size_t max_members = 64;
constexpr std::size_t max_name = 32;
constexpr std::size_t max_text = 1000;
constexpr auto delivery_limit = 10s;

void check_text(const std::string& what, const std::string& s, std::size_t limit) {
  if (s.size() > limit)
    throw std::invalid_argument(what + " is longer than " + std::to_string(limit) + " bytes");
  if (s.find_first_of("\r\n") != std::string::npos) throw std::invalid_argument(what + " has a line break");
}

class Membership;

/// The room: its members are handles to objects on the clients, each with a `hear(from, text)`.
class Room : public std::enable_shared_from_this<Room> {
 public:
  /// Adds `member` as `name`. The Membership it returns is how that member speaks and leaves,
  /// so no one can speak under another's name.
  std::shared_ptr<Membership> join(std::string name, Handle member);

  /// Pushes the message to every member at once, then waits until each has taken it (so that
  /// a caller knows its message was delivered), dropping those that fail or take too long.
  /// The actor runs other calls while this one waits; the pushes of each message are sent
  /// before the next message's, so every member hears them in the same order.
  asio::awaitable<void> broadcast(std::string from, std::string text) {
    std::vector<std::pair<std::uint64_t, Handle>> pushes;
    for (auto& [id, member] : members_) pushes.emplace_back(id, member.object.call("hear", from, text));
    for (auto& [id, push] : pushes) {
      try {
        auto delivered = std::move(push).get();
        co_await remoteable::with_timeout(std::move(delivered), delivery_limit);
      } catch (const remoteable::RemoteError& e) {
        drop(id, e.what());
      }
    }
  }

  void leave(std::uint64_t id) { members_.erase(id); }

 private:
  void drop(std::uint64_t id, const std::string& why) {
    if (auto it = members_.find(id); it != members_.end()) {
      std::cerr << "chat_server: dropped " << it->second.name << " (" << why << ")" << std::endl;
      members_.erase(it);
    }
  }

  struct Member {
    std::string name;
    Handle object;  // on the member's client
  };
  std::map<std::uint64_t, Member> members_;  // by join number
  std::uint64_t joined_ = 0;
};

/// One member's place in the room, handed to that member only.
class Membership {
 public:
  Membership(std::shared_ptr<Room> room, std::string name, std::uint64_t id)
      : room_(std::move(room)), name_(std::move(name)), id_(id) {}

  /// Sends `text` to every member; returns once each has taken it.
  asio::awaitable<void> say(std::string text) {
    check_text("a message", text, max_text);
    if (!room_) throw std::invalid_argument("you have left the room");
    auto room = room_;  // the actor may run leave() while this waits
    co_await room->broadcast(name_, std::move(text));
  }

  void leave() {
    if (room_) room_->leave(id_);
    room_.reset();
  }

 private:
  std::shared_ptr<Room> room_;
  std::string name_;
  std::uint64_t id_;
};

std::shared_ptr<Membership> Room::join(std::string name, Handle member) {
  if (name.empty()) throw std::invalid_argument("a name is needed");
  check_text("the name", name, max_name);
  for (auto& [id, m] : members_)
    if (m.name == name) throw std::invalid_argument("the name " + name + " is taken");
  if (members_.size() >= max_members)
    throw remoteable::RemoteError(remoteable::ErrorKind::overloaded,
                                  "the room is full (" + std::to_string(max_members) + " members)");
  members_.emplace(++joined_, Member{name, std::move(member)});
  return std::make_shared<Membership>(shared_from_this(), std::move(name), joined_);
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string usage =
      "usage: chat_server HOST:PORT\n"
      "  limits: 64 members, names of 1 to 32 bytes, messages of at most 1000 bytes (no line breaks),\n"
      "  256 connections; a member that does not take a message within 10 s is dropped";
  if (argc != 2) {
    std::cerr << usage << std::endl;
    return 2;
  }
  auto endpoint = remoteable::Endpoint::parse(argv[1]);

  remoteable::Registry types;
  types.class_<Room>("Room").method("join", &Room::join);
  types.class_<Membership>("Membership").method("say", &Membership::say).method("leave", &Membership::leave);

  remoteable::ServerOptions options;
  options.max_connections = 256;
  options.max_remote_handles_per_connection = 8;

  // The handlers go in before "serving" is printed: whoever waits for that line may signal at once.
  asio::io_context signals_context;
  asio::signal_set signals(signals_context, SIGINT, SIGTERM);
  remoteable::ThreadedServer server{endpoint, types, options};
  server->export_object(std::make_shared<Room>(), "room");
  signals.async_wait([&](std::error_code, int) { server.stop(); });

  std::cout << "serving room on " << endpoint.host << ':' << server.port() << std::endl;
  signals_context.run();  // the server runs on its own threads
  return 0;
} catch (const std::exception& e) {
  std::cerr << "chat_server: " << e.what() << std::endl;
  return 1;
}
