#pragma once
// Authentication and authority on the server (ServerOptions::auth, Server::set_read_only):
// what a principal may do, the token check and its rate limit, and the objects reached through
// read-only handles. Internal.

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
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
/// run on any thread; the failure records are guarded by a mutex (connections on every network
/// thread share them).
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
  /// refused unchecked. Logs one warning per window per address. Any thread.
  bool limited(const std::string& address, std::chrono::steady_clock::time_point now, spdlog::logger& log);
  /// Records a failed attempt from `address`. Any thread.
  void failed(const std::string& address, std::chrono::steady_clock::time_point now);
  /// limited() and failed() as one step: false when `address` is limited, else the attempt is
  /// counted as a failure at once (until succeeded() takes it back), so that attempts from one
  /// address on several network threads at once cannot pass the check together. Any thread.
  bool attempt(const std::string& address, std::chrono::steady_clock::time_point now, spdlog::logger& log);
  /// Takes back the failure attempt() counted, for an attempt that succeeded. Any thread.
  void succeeded(const std::string& address);
  /// Addresses with failures remembered (for tests). Any thread.
  std::size_t tracked() const {
    std::lock_guard lock(failures_mutex_);
    return failures_.size();
  }

 private:
  using Digest = std::array<unsigned char, 32>;
  static Digest digest(std::string_view text);
  std::shared_ptr<const Grant> grant_for(const std::string& principal);
  bool limited_locked(const std::string& address, std::chrono::steady_clock::time_point now, spdlog::logger& log);
  void failed_locked(const std::string& address, std::chrono::steady_clock::time_point now);

  ServerAuth options_;
  std::unordered_map<std::string, std::shared_ptr<const Grant>> grants_;  // by principal
  std::vector<std::pair<Digest, std::shared_ptr<const Grant>>> tokens_;
  std::unordered_map<std::string, std::shared_ptr<const Grant>> certificates_;

  struct Failures {
    std::size_t count = 0;
    std::chrono::steady_clock::time_point window_start;
    bool reported = false;  ///< the limit was logged in this window
  };
  mutable std::mutex failures_mutex_;
  std::unordered_map<std::string, Failures> failures_;  // [failures_mutex_]
};

/// Objects that a client passed back to the server through a read-only handle (as an argument,
/// to store or attach): from then on they are read-only whichever handle reaches them, since the
/// server cannot tell the paths apart. Held weakly: an entry goes with its object.
///
/// Threads: any (connections on every network thread share it); a mutex guards the entries,
/// taken only once there is one (the common case is an atomic load).
class ReadOnlyObjects {
 public:
  bool contains(const Object& o) const {
    if (count_.load(std::memory_order_acquire) == 0) return false;  // the common case: one load
    std::lock_guard lock(mutex_);
    return contains_locked(o);
  }
  bool any_of(const std::vector<Object>& objects) const {
    if (count_.load(std::memory_order_acquire) == 0) return false;
    std::lock_guard lock(mutex_);
    for (auto& o : objects)
      if (contains_locked(o)) return true;
    return false;
  }
  void add(const Object& o);
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }

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
  bool contains_locked(const Object& o) const {
    auto it = entries_.find(Key{o.ptr.get(), o.type});
    return it != entries_.end() && !it->second.expired();
  }
  mutable std::mutex mutex_;
  std::atomic<std::size_t> count_{0};  ///< entries_.size(), read without the lock
  std::unordered_map<Key, std::weak_ptr<void>, KeyHash> entries_;  // [mutex_]
  std::size_t sweep_at_ = 1024;                                     // [mutex_]
};

}  // namespace remoteable::detail
