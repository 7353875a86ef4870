#include "actors/metrics.hpp"

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <spdlog/spdlog.h>

#include <future>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include "rpc/asio_stream.hpp"

namespace remoteable::detail {

namespace {

// Seconds, from 10 µs (an inline call) to 10 s.
const prometheus::Histogram::BucketBoundaries& duration_buckets() {
  static const prometheus::Histogram::BucketBoundaries buckets{
      0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,   0.05,     0.1,     0.25,   0.5,     1,      2.5,   5,      10};
  return buckets;
}

double seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

/// What the server already counts, read at each scrape: nothing on a call's path.
class ScrapeGauges final : public prometheus::Collectable {
 public:
  ScrapeGauges(ServerMetrics::Gauges gauges, std::shared_ptr<ByteCounts> bytes) : gauges_(gauges), bytes_(std::move(bytes)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    auto add = [&](const char* name, const char* help, prometheus::MetricType type, double value) {
      prometheus::MetricFamily f{name, help, type, {}};
      prometheus::ClientMetric m;
      if (type == prometheus::MetricType::Counter) m.counter.value = value;
      else m.gauge.value = value;
      f.metric.push_back(std::move(m));
      out.push_back(std::move(f));
    };
    using T = prometheus::MetricType;
    add("remoteable_connections", "Open client connections.", T::Gauge, static_cast<double>(gauges_.connections.load()));
    add("remoteable_live_handles", "Live handles (capabilities) held by clients.", T::Gauge,
        static_cast<double>(gauges_.live_handles.load()));
    add("remoteable_calls_in_flight", "Calls received and not yet ended, on every connection.", T::Gauge,
        static_cast<double>(gauges_.calls_in_flight.load()));
    add("remoteable_received_bytes_total", "Bytes received from clients' sockets.", T::Counter,
        static_cast<double>(bytes_->received.load(std::memory_order_relaxed)));
    add("remoteable_sent_bytes_total", "Bytes sent to clients' sockets.", T::Counter,
        static_cast<double>(bytes_->sent.load(std::memory_order_relaxed)));
    return out;
  }

 private:
  ServerMetrics::Gauges gauges_;
  std::shared_ptr<ByteCounts> bytes_;
};

/// Why `address`:`port` cannot be listened on, as the system says when we try (civetweb only
/// says that it failed).
std::error_code bind_error(const asio::ip::address& address, std::uint16_t port) {
  asio::io_context io;
  asio::ip::tcp::acceptor probe(io);
  asio::ip::tcp::endpoint ep(address, port);
  std::error_code ec;
  probe.open(ep.protocol(), ec);
  if (!ec) probe.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) probe.bind(ep, ec);
  if (!ec) probe.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) return std::make_error_code(std::errc::address_not_available);  // it binds for us: say no more than civetweb
  if (ec.category() == asio::error::get_system_category()) ec = std::error_code(ec.value(), std::system_category());
  return ec;
}

}  // namespace

std::string_view to_string(CallOp op) noexcept {
  switch (op) {
#define REMOTEABLE_CALL_OP_NAME(op) \
  case CallOp::op: return #op;
    REMOTEABLE_CALL_OPS(REMOTEABLE_CALL_OP_NAME)
#undef REMOTEABLE_CALL_OP_NAME
  }
  return "unknown";
}

std::string_view to_string(Limit limit) noexcept {
  switch (limit) {
#define REMOTEABLE_LIMIT_NAME(limit) \
  case Limit::limit: return #limit;
    REMOTEABLE_LIMITS(REMOTEABLE_LIMIT_NAME)
#undef REMOTEABLE_LIMIT_NAME
  }
  return "unknown";
}

CallSeries::CallSeries(ServerMetrics& owner, CallOp op, std::string member)
    : owner_(owner), op_(op), member_(std::move(member)) {
  prometheus::Labels labels{{"op", std::string(to_string(op_))}, {"member", member_}};
  calls_ = &owner_.calls_->Add(labels);
  duration_ = &owner_.duration_->Add(labels, duration_buckets());
}

void CallSeries::ended(std::chrono::steady_clock::duration took) {
  calls_->Increment();
  duration_->Observe(seconds(took));
}

void CallSeries::failed(ErrorKind kind, std::chrono::steady_clock::duration took) {
  ended(took);
  auto& slot = errors_[static_cast<std::size_t>(kind)];
  auto* counter = slot.load(std::memory_order_acquire);
  if (!counter) {
    counter = &owner_.error_counter(op_, member_, kind);
    slot.store(counter, std::memory_order_release);
  }
  counter->Increment();
}

ServerMetrics::ServerMetrics(const Endpoint& endpoint, Gauges gauges, spdlog::logger& log)
    : log_(log), bytes_(std::make_shared<ByteCounts>()), registry_(std::make_shared<prometheus::Registry>()) {
  calls_ = &prometheus::BuildCounter()
                .Name("remoteable_calls_total")
                .Help("Calls ended (succeeded or failed), by operation and member.")
                .Register(*registry_);
  errors_ = &prometheus::BuildCounter()
                 .Name("remoteable_call_errors_total")
                 .Help("Calls failed, by operation, member and error kind.")
                 .Register(*registry_);
  duration_ = &prometheus::BuildHistogram()
                   .Name("remoteable_call_duration_seconds")
                   .Help("Time from a call handed to its actor until its result is back on the network thread.")
                   .Register(*registry_);
  connections_opened_ = &prometheus::BuildCounter()
                             .Name("remoteable_connections_opened_total")
                             .Help("Client connections accepted and set up.")
                             .Register(*registry_)
                             .Add({});
  auto& breaches = prometheus::BuildCounter()
                       .Name("remoteable_limit_breaches_total")
                       .Help("Times a ServerOptions limit refused or dropped something, by limit.")
                       .Register(*registry_);
  for (std::size_t i = 0; i < limit_count; ++i)
    breaches_[i] = &breaches.Add({{"limit", std::string(to_string(static_cast<Limit>(i)))}});
  gauges_ = std::make_shared<ScrapeGauges>(gauges, bytes_);

  // civetweb takes addresses, not names: resolve (an IPv4 address first), then listen.
  auto what = "cannot serve metrics on " + endpoint.to_string();
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  std::error_code ec;
  auto results = resolver.resolve(endpoint.host, std::to_string(endpoint.port), asio::ip::tcp::resolver::passive, ec);
  if (ec) throw std::system_error(ec, what + ": cannot resolve '" + endpoint.host + "'");
  std::optional<asio::ip::address> address;
  for (const auto& entry : results) {
    auto a = entry.endpoint().address();
    if (!address || (a.is_v4() && !address->is_v4())) address = a;
  }
  if (!address) throw std::system_error(std::make_error_code(std::errc::address_not_available), what);
  auto text = address->is_v4() ? address->to_string() : "[" + address->to_string() + "]";
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
        "listening_ports", text + ":" + std::to_string(endpoint.port),
        "num_threads", "2",
        // A client that opens a connection and sends nothing holds a thread this long at most.
        "request_timeout_ms", "10000"});
  } catch (const std::exception&) {
    throw std::system_error(bind_error(*address, endpoint.port), what);
  }
  exposer_->RegisterCollectable(registry_);
  exposer_->RegisterCollectable(gauges_);
  auto ports = exposer_->GetListeningPorts();
  port_ = ports.empty() ? endpoint.port : static_cast<std::uint16_t>(ports.front());
  wake_address_ = *address;
  if (wake_address_.is_unspecified())
    wake_address_ = wake_address_.is_v4() ? asio::ip::address(asio::ip::address_v4::loopback()) : asio::ip::address(asio::ip::address_v6::loopback());
  log_.info("metrics on http://{}:{}/metrics", text, port_);
}

ServerMetrics::~ServerMetrics() {
  if (!exposer_) return;
  // civetweb's listener waits for connections in 2 s slices and sees that it should stop only
  // between them: stopping would take up to 2 s. A connection of our own ends the wait at once.
  std::future<void> stopping;
  try {
    stopping = std::async(std::launch::async, [this] { exposer_.reset(); });
  } catch (const std::system_error&) {  // no thread to spare: stop it the slow way
    exposer_.reset();
    return;
  }
  asio::io_context io;
  while (stopping.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
    asio::ip::tcp::socket wake(io);
    std::error_code ignored;
    wake.connect({wake_address_, port_}, ignored);
  }
  stopping.get();
}

CallSeries* ServerMetrics::add_series(CallOp op, const Object& self, Key key) {
  // The member label: only ever a name the server registered.
  std::string member;
  switch (op) {
    case CallOp::attr:
    case CallOp::call:
    case CallOp::set_attr:
      if (!self.type || !self.type->members.contains(key.name)) {
        // Not stored under its name: a client sending made-up names grows nothing.
        auto& unknown = unknown_[static_cast<std::size_t>(op)];
        if (!unknown) unknown.reset(new CallSeries(*this, op, "(unknown)"));
        return unknown.get();
      }
      member = self.type->name + "." + std::string(key.name);
      break;
    case CallOp::invoke:
      member = !key.name.empty() ? std::string(key.name) : key.type ? static_cast<const TypeInfo*>(key.type)->name : "(unknown)";
      break;
    default: member = self.type ? self.type->name : "(unknown)"; break;
  }
  auto series = std::unique_ptr<CallSeries>(new CallSeries(*this, op, std::move(member)));
  series->key_name_ = std::string(key.name);
  key.name = series->key_name_;
  return series_.emplace(key, std::move(series)).first->second.get();
}

prometheus::Counter& ServerMetrics::error_counter(CallOp op, const std::string& member, ErrorKind kind) {
  return errors_->Add({{"op", std::string(to_string(op))}, {"member", member}, {"kind", std::string(to_string(kind))}});
}

void ServerMetrics::breach(Limit limit) { breaches_[static_cast<std::size_t>(limit)]->Increment(); }

void ServerMetrics::connection_opened() { connections_opened_->Increment(); }

}  // namespace remoteable::detail
