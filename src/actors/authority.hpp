#pragma once
// Authentication and authority on the server (ServerOptions::auth, Server::set_read_only):
// what a principal may do, the token check and its rate limit, and the objects reached through
// read-only handles. Internal.

#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <remoteable/auth.hpp>
#include <remoteable/detail/object.hpp>

namespace spdlog { class logger; }

namespace remoteable::detail {

/// A principal and its authority, shared by the registries scoped to it. Immutable.
struct Grant {
  std::string principal;  ///< empty: the server has no authentication
  Authority authority;
  bool may_see(std::string_view name) const { return !authority.exports || authority.exports->contains(name); }
};

/// Everything, as a server without authentication grants it.
const std::shared_ptr<const Grant>& full_grant();

/// The token check and the per-address rate limit of failed attempts.
///
/// Owned by the ServerCore, made at its construction from ServerOptions::auth (which it checks:
/// std::invalid_argument for a bad entry). The token and certificate look-ups are const and may
/// run on any thread; the failure records are [loop].
class Authenticator {
 public:
  explicit Authenticator(const ServerAuth& auth);

  const ServerAuth& options() const { return options_; }
  /// The principal of `token`, or null when no token matches. Every token's digest is compared,
  /// in constant time, whatever matches: the time taken says nothing of the token. A token
  /// longer than max_token_bytes is refused without being hashed.
  std::shared_ptr<const Grant> check_token(std::string_view token) const;
  /// The principal a client certificate's subject maps to, or null.
  std::shared_ptr<const Grant> for_certificate(std::string_view subject) const;

  /// True when `address` has used up its failures in the current window: the attempt is to be
  /// refused unchecked. Logs one warning per window per address. [loop]
  bool limited(const std::string& address, std::chrono::steady_clock::time_point now, spdlog::logger& log);
  /// Records a failed attempt from `address`. [loop]
  void failed(const std::string& address, std::chrono::steady_clock::time_point now);
  /// Addresses with failures remembered (for tests). [loop]
  std::size_t tracked() const { return failures_.size(); }

 private:
  using Digest = std::array<unsigned char, 32>;
  static Digest digest(std::string_view text);
  std::shared_ptr<const Grant> grant_for(const std::string& principal);

  ServerAuth options_;
  std::unordered_map<std::string, std::shared_ptr<const Grant>> grants_;  // by principal
  std::vector<std::pair<Digest, std::shared_ptr<const Grant>>> tokens_;
  std::unordered_map<std::string, std::shared_ptr<const Grant>> certificates_;

  struct Failures {
    std::size_t count = 0;
    std::chrono::steady_clock::time_point window_start;
    bool reported = false;  ///< the limit was logged in this window
  };
  std::unordered_map<std::string, Failures> failures_;  // [loop]
};

/// Objects that a client passed back to the server through a read-only handle (as an argument,
/// to store or attach): from then on they are read-only whichever handle reaches them, since the
/// server cannot tell the paths apart. Held weakly: an entry goes with its object. [loop]
class ReadOnlyObjects {
 public:
  bool contains(const Object& o) const {
    if (entries_.empty()) return false;  // the common case: one branch
    auto it = entries_.find(Key{o.ptr.get(), o.type});
    return it != entries_.end() && !it->second.expired();
  }
  bool any_of(const std::vector<Object>& objects) const {
    if (entries_.empty()) return false;
    for (auto& o : objects)
      if (contains(o)) return true;
    return false;
  }
  void add(const Object& o);
  std::size_t size() const { return entries_.size(); }

 private:
  struct Key {
    const void* address;
    const TypeInfo* type;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept {
      return std::hash<const void*>()(k.address) ^ (std::hash<const void*>()(k.type) << 1);
    }
  };
  std::unordered_map<Key, std::weak_ptr<void>, KeyHash> entries_;
  std::size_t sweep_at_ = 1024;
};

}  // namespace remoteable::detail
