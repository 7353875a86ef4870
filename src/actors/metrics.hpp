#pragma once
// ServerMetrics: a server's Prometheus metrics and the /metrics endpoint that serves them
// (ServerOptions::metrics). Internal: no prometheus-cpp type shows beyond src/actors/metrics.cpp.

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include <asio/ip/address.hpp>

#include <remoteable/detail/builtins.hpp>
#include <remoteable/detail/object.hpp>
#include <remoteable/endpoint.hpp>
#include <remoteable/error.hpp>

namespace prometheus {
class Collectable;
class Counter;
class Exposer;
class Histogram;
class Registry;
template <class T> class Family;
}  // namespace prometheus
namespace spdlog { class logger; }

namespace remoteable::detail {

struct ByteCounts;

/// The operations counted as calls, one list: the `op` label. Each is one operation handed to an
/// actor (each step of a chain is one).
#define REMOTEABLE_CALL_OPS(X) \
  X(attr) X(call) X(invoke) X(item) X(len) X(binary) X(unary) X(set_attr) X(set_item) X(get) X(str) X(truthy) X(describe) X(slice) X(iterate) X(next)
enum class CallOp {
#define REMOTEABLE_CALL_OP_ENUM(op) op,
  REMOTEABLE_CALL_OPS(REMOTEABLE_CALL_OP_ENUM)
#undef REMOTEABLE_CALL_OP_ENUM
};
#define REMOTEABLE_COUNT_ONE(...) +1
inline constexpr std::size_t call_op_count = 0 REMOTEABLE_CALL_OPS(REMOTEABLE_COUNT_ONE);
inline constexpr std::size_t error_kind_count = 0 REMOTEABLE_ERROR_KINDS(REMOTEABLE_COUNT_ONE);

/// The limits counted in remoteable_limit_breaches_total, by their ServerOptions names: the
/// `limit` label. Each is counted where it refuses or drops something.
#define REMOTEABLE_LIMITS(X)                                                                           \
  X(max_connections) X(max_handles_per_connection) X(max_calls_per_connection) X(max_outbound_bytes) \
  X(max_attached_per_connection) X(max_attached) X(idle_timeout) X(max_remote_handles_per_connection) \
  X(max_cursors_per_connection) X(max_snapshot_bytes_per_connection)
enum class Limit {
#define REMOTEABLE_LIMIT_ENUM(limit) limit,
  REMOTEABLE_LIMITS(REMOTEABLE_LIMIT_ENUM)
#undef REMOTEABLE_LIMIT_ENUM
};
inline constexpr std::size_t limit_count = 0 REMOTEABLE_LIMITS(REMOTEABLE_COUNT_ONE);
#undef REMOTEABLE_COUNT_ONE

class ServerMetrics;

/// The metrics of one (op, member) pair: its calls, errors by kind and latency. Made once, on
/// the first call of the pair, and kept as long as the ServerMetrics. Recorded on any network
/// thread (the prometheus-cpp types it points to are thread-safe: the endpoint's threads read
/// them).
class CallSeries {
 public:
  /// A call that succeeded, `took` after it was handed to its actor.
  void ended(std::chrono::steady_clock::duration took);
  /// A call that failed with `kind` (cancelled: the client cancelled or went away).
  void failed(ErrorKind kind, std::chrono::steady_clock::duration took);

 private:
  friend class ServerMetrics;
  CallSeries(ServerMetrics& owner, CallOp op, std::string member);
  ServerMetrics& owner_;
  const CallOp op_;
  const std::string member_;
  std::string key_name_;  ///< what ServerMetrics' table key views
  prometheus::Counter* calls_;
  prometheus::Histogram* duration_;
  /// Made on the first error of each kind (Family::Add gives two racing threads the same one).
  std::array<std::atomic<prometheus::Counter*>, error_kind_count> errors_{};
};

/// The metrics of one server, and the HTTP endpoint (prometheus-cpp's Exposer, on civetweb's
/// threads) that serves them in Prometheus' text format on GET /metrics.
///
/// Owned by the ServerCore (null when ServerOptions::metrics is unset); made at its
/// construction, which binds the endpoint; destroying it stops the endpoint and joins its
/// threads. series() runs on the loop; breach() and connection_opened() on any thread.
class ServerMetrics {
 public:
  /// What the endpoint reads at each scrape: the server's own counts.
  struct Gauges {
    const std::atomic<std::size_t>& connections;
    const std::atomic<std::size_t>& live_handles;
    const std::atomic<std::size_t>& calls_in_flight;
  };
  /// Serves /metrics on `endpoint` (port 0: any free port) at once and logs "metrics on
  /// http://ADDRESS:PORT/metrics" at info. Throws std::system_error naming the address if it
  /// cannot.
  ServerMetrics(const Endpoint& endpoint, Gauges gauges, spdlog::logger& log);
  ~ServerMetrics();
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  /// The port the endpoint listens on.
  std::uint16_t port() const { return port_; }

  /// The series of `op` on `self`; `name` is the member for attr, call and set_attr. The member
  /// label is only ever a name the server registered: "Class.member" for a registered member
  /// (otherwise "(unknown)", which no client can multiply), the function's or class's name for
  /// invoke, the object's type for the other operations. Looked up in a table after the first
  /// call of each; a name the server does not know adds nothing to it. Any thread (the
  /// network threads share the table, under a mutex).
  CallSeries* series(CallOp op, const Object& self, std::string_view name = {}) {
    auto key = key_of(op, self, name);
    std::lock_guard lock(series_mutex_);
    if (auto it = series_.find(key); it != series_.end()) return it->second.get();
    return add_series(op, self, key);
  }
  /// Counts a limit that refused or dropped something.
  void breach(Limit limit);
  /// Counts a connection accepted and set up.
  void connection_opened();
  /// The socket byte counts shared by the server's connections.
  const std::shared_ptr<ByteCounts>& bytes() const { return bytes_; }

 private:
  friend class CallSeries;
  struct Key {
    CallOp op;
    const void* type;
    std::string_view name;  ///< into the table's own copy once stored
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept {
      return std::hash<std::string_view>{}(k.name) ^ (std::hash<const void*>{}(k.type) * 31 + static_cast<std::size_t>(k.op));
    }
  };
  static Key key_of(CallOp op, const Object& self, std::string_view name);
  CallSeries* add_series(CallOp op, const Object& self, Key key);
  prometheus::Counter& error_counter(CallOp op, const std::string& member, ErrorKind kind);

  spdlog::logger& log_;
  std::shared_ptr<ByteCounts> bytes_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* calls_;
  prometheus::Family<prometheus::Counter>* errors_;
  prometheus::Family<prometheus::Histogram>* duration_;
  prometheus::Counter* connections_opened_;
  std::array<prometheus::Counter*, limit_count> breaches_{};
  // (op, type, name) to its series, for names the server registered only; each key's name
  // views the series' own copy (CallSeries::key_name_). [series_mutex_]
  std::mutex series_mutex_;
  std::unordered_map<Key, std::unique_ptr<CallSeries>, KeyHash> series_;
  std::array<std::unique_ptr<CallSeries>, call_op_count> unknown_{};  ///< "(unknown)" members [series_mutex_]
  std::shared_ptr<prometheus::Collectable> gauges_;  ///< read at each scrape
  std::uint16_t port_ = 0;
  asio::ip::address wake_address_;  ///< where the destructor connects to stop the endpoint at once
  std::unique_ptr<prometheus::Exposer> exposer_;  // last: stopped first, before what it reads
};

std::string_view to_string(CallOp op) noexcept;
std::string_view to_string(Limit limit) noexcept;

inline ServerMetrics::Key ServerMetrics::key_of(CallOp op, const Object& self, std::string_view name) {
  switch (op) {
    case CallOp::attr:
    case CallOp::call:
    case CallOp::set_attr: return {op, self.type, name};
    case CallOp::invoke:
      // By name, not by object: a function's or bound method's name is the server's.
      if (self.is(builtin::function_type())) return {op, self.type, self.as<builtin::Function>().name};
      if (self.is(builtin::class_type())) return {op, self.as<builtin::ClassObject>().type, {}};
      return {op, self.type, {}};
    default: return {op, self.type, {}};
  }
}

}  // namespace remoteable::detail
