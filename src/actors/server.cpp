#include <remoteable/server.hpp>

#include <capnp/message.h>
#include <kj/debug.h>
#include <spdlog/spdlog.h>

#include <asio/co_spawn.hpp>

#include <asio/bind_cancellation_slot.hpp>

#include <algorithm>
#include <list>
#include <cstdlib>

#include <remoteable/detail/builtins.hpp>
#include "actors/names.hpp"
#include "rpc/codec.hpp"
#include "rpc/wire_checks.hpp"
#include "actors/detail/server_core.hpp"
#include "rpc/kj_error.hpp"
#include "rpc/log.hpp"

namespace remoteable {
namespace detail {
namespace {

wire::Handle::Fetch checked(wire::Handle::Fetch fetch) {
  auto code = static_cast<unsigned>(fetch);
  if (code > static_cast<unsigned>(wire::Handle::Fetch::TRUTH))
    throw to_kj(RemoteError(ErrorKind::value, "unknown fetch code " + std::to_string(code)));
  return fetch;
}

// A size hint for results that are a handle and little else: Cap'n Proto keeps the results
// message of an answer that carries a capability until the client sends Finish, and without a
// hint its first segment is 1024 words (8 KiB) however little it holds.
constexpr capnp::MessageSize small_results{16, 1};

template <class T>
T take(Outcome& o) {
  return std::get<T>(std::move(o));
}

}  // namespace

// ---- the loop-side state --------------------------------------------------------------------

class PendingCall;

struct ServerCore::Kj {
  Kj() : tasks(errors) {}

  struct Errors final : kj::TaskSet::ErrorHandler {
    ServerCore* core = nullptr;
    void taskFailed(kj::Exception&& e) override {
      if (core) core->log->info("connection ended: {}", e.getDescription().cStr());
    }
  } errors;
  capnp::CapabilityServerSet<wire::Handle> caps;
  // Calls running on actors. Shared with each PendingCall: KJ may destroy a call's promise
  // (held in a fork for pipelining) after this state is gone.
  using Pending = std::unordered_map<std::uint64_t, PendingCall*>;
  std::shared_ptr<Pending> pending_calls = std::make_shared<Pending>();
  Pending& pending = *pending_calls;
  std::uint64_t next_id = 1;
  std::list<ServerConnection*> connections;  // for the sweep; each removes itself
  kj::TaskSet tasks;  // one task per connection: onDisconnect().attach(connection)
};

/// A call handed to an actor, as the promise KJ holds. Destroying it before it completed means
/// the client cancelled (or the connection went): the actor is told, so that a call not yet
/// started is skipped and a coroutine method stops at its next co_await.
class PendingCall {
 public:
  PendingCall(kj::PromiseFulfiller<Outcome>& fulfiller, ServerCore::Kj& kj, std::uint64_t id,
              std::shared_ptr<Budget> budget, std::shared_ptr<CallCancel> cancel, std::shared_ptr<Actor> actor)
      : fulfiller_(fulfiller), pending_(kj.pending_calls), id_(id), budget_(std::move(budget)), cancel_(std::move(cancel)), actor_(std::move(actor)) {
    pending_->emplace(id_, this);
    ++budget_->in_flight;
  }
  ~PendingCall() {
    pending_->erase(id_);
    --budget_->in_flight;
    if (!done_) {
      cancel_->cancelled = true;
      asio::post(actor_->root()->strand(), [cancel = cancel_] { cancel->signal.emit(asio::cancellation_type::all); });
    }
  }
  void fulfill(Outcome&& outcome) {
    done_ = true;
    fulfiller_.fulfill(std::move(outcome));
  }
  void reject(kj::Exception&& e) {
    done_ = true;
    fulfiller_.reject(kj::mv(e));
  }
  /// Rejects the call and stops the work behind it: a call not started is skipped, a coroutine
  /// method stops at its next co_await. For a server tearing down.
  void abort(kj::Exception&& e) {
    if (!done_) {
      cancel_->cancelled = true;
      asio::post(actor_->root()->strand(), [cancel = cancel_] { cancel->signal.emit(asio::cancellation_type::all); });
    }
    reject(kj::mv(e));
  }

 private:
  kj::PromiseFulfiller<Outcome>& fulfiller_;
  std::shared_ptr<ServerCore::Kj::Pending> pending_;
  std::uint64_t id_;
  std::shared_ptr<Budget> budget_;
  std::shared_ptr<CallCancel> cancel_;
  std::shared_ptr<Actor> actor_;
  bool done_ = false;
};

/// One call counted in its connection's budget from the moment it is received until it ends,
/// however it ends (answered, failed, cancelled, or its connection gone): made first thing in
/// each method that can wait (decoding arguments may wait for handles that never resolve), and
/// attached to the call's promise. Past max_calls_per_connection the call is refused. [loop]
class CallSlot {
 public:
  CallSlot(ServerCore& core, const std::shared_ptr<Budget>& budget) : core_(&core), budget_(budget) {
    if (budget_->calls >= core.options.max_calls_per_connection)
      throw to_kj(RemoteError(ErrorKind::overloaded, "too many calls in flight on this connection (limit max_calls_per_connection = " +
                                                         std::to_string(core.options.max_calls_per_connection) + ")"));
    ++budget_->calls;
    core.calls_in_flight.fetch_add(1, std::memory_order_relaxed);
  }
  CallSlot(CallSlot&& other) noexcept : core_(other.core_), budget_(std::move(other.budget_)) {}
  CallSlot& operator=(CallSlot&&) = delete;
  ~CallSlot() {
    if (!budget_) return;
    --budget_->calls;
    core_->calls_in_flight.fetch_sub(1, std::memory_order_relaxed);
  }

 private:
  ServerCore* core_;
  std::shared_ptr<Budget> budget_;
};

ServerCore::Kj& ServerCore::kj() {
  if (!kj_) {
    kj_ = std::make_unique<Kj>();
    kj_->errors.core = this;
  }
  return *kj_;
}

namespace {
/// Times a call that runs inline on the network thread; one that runs past
/// ServerOptions::slow_call is sent to the pool from then on.
class SlowWatch {
 public:
  SlowWatch(ServerCore& core, const void* key, const Object& self, std::string_view name)
      : core_(core), key_(key), self_(self), name_(name),
        timed_(core.options.slow_call.count() > 0 && core.loop->in_loop()) {
    if (timed_) start_ = std::chrono::steady_clock::now();
  }
  ~SlowWatch() {
    if (!timed_) return;
    auto took = std::chrono::steady_clock::now() - start_;
    if (took <= core_.options.slow_call) return;
    std::string what = self_.type ? self_.type->name : "";
    if (self_.is(builtin::function_type())) what = self_.as<builtin::Function>().name;
    else if (self_.is(builtin::class_type())) what = self_.as<builtin::ClassObject>().type->name + " constructor";
    core_.learn_blocking(key_, what, name_, took);
  }
  SlowWatch(const SlowWatch&) = delete;
  SlowWatch& operator=(const SlowWatch&) = delete;

 private:
  ServerCore& core_;
  const void* key_;
  const Object& self_;
  std::string_view name_;
  bool timed_;
  std::chrono::steady_clock::time_point start_;
};

/// A plain value whose get() or str() makes more than this many bytes (Shape::expansion) is
/// worked on off the network thread: an operation on it may take up to ops::max_expansion of
/// work, and inline on the network thread that would hold up every other client meanwhile.
constexpr std::uint64_t inline_expansion_limit = 64u << 10;
bool expansive(const Object& o) { return builtin::is_plain(o) && builtin::shape(o).expansion > inline_expansion_limit; }
bool any_expansive(const std::vector<Object>& objects) {
  for (auto& o : objects)
    if (expansive(o)) return true;
  return false;
}

/// What a call of the object itself is learned under: the function or class object, else the type.
const void* invoke_key(const Object& o) {
  if (o.is(builtin::function_type()) || o.is(builtin::class_type())) return o.ptr.get();
  return o.type;
}
}  // namespace

namespace {
/// What an operation that made `result` hands to the loop: evaluated as `fetch` asks, and
/// marked when it starts a new actor. [actor]
Outcome object_outcome(Object result, wire::Handle::Fetch fetch, bool fresh, int max_depth) {
  // A method may wrap what it was given (return [x]): depth built one call at a time is bounded
  // here, where each result is made, as the decoder bounds what arrives.
  if (auto depth = builtin::shape(result).depth; depth > static_cast<std::uint32_t>(max_depth))
    throw RemoteError(ErrorKind::value, "the result is nested " + std::to_string(depth) + " lists or maps deep, more than " +
                                            std::to_string(max_depth) + " (limit max_nesting)");
  switch (fetch) {
    case wire::Handle::Fetch::NONE: break;
    case wire::Handle::Fetch::TEXT: {
      auto text = ops::str(result);
      return Fetched{std::move(result), std::move(text), fresh};
    }
    case wire::Handle::Fetch::TRUTH: {
      bool truth = ops::truthy(result);
      return Fetched{std::move(result), truth, fresh};
    }
    default: {
      auto value = ops::get(result);
      return Fetched{std::move(result), std::move(value), fresh};
    }
  }
  if (fresh) return FreshObject{std::move(result)};
  return result;
}
}  // namespace

bool ServerCore::learned_blocking(const void* key, std::string_view name) {
  if (!any_learned_.load(std::memory_order_acquire)) return false;
  std::lock_guard lock(learned_mutex_);
  return learned_.find(LearnedLess::Key{key, name}) != learned_.end();
}

void ServerCore::learn_blocking(const void* key, std::string_view type, std::string_view name, std::chrono::nanoseconds took) {
  {
    std::lock_guard lock(learned_mutex_);
    if (!learned_.emplace(key, std::string(name)).second) return;
  }
  any_learned_.store(true, std::memory_order_release);
  log->warn("'{}{}{}' ran {} ms on the network thread; its calls now run on the actor pool "
            "(register it with remoteable::blocking)",
            type, name.empty() ? "" : ".", name, std::chrono::duration_cast<std::chrono::milliseconds>(took).count());
}

/// The capability server of one handle: an object and the actor that owns it.
///
/// Lives on the loop; created by ServerCore::wrap. Holds the core by reference: the core
/// destroys every capability (teardown) before it goes away.
class HandleServer final : public wire::Handle::Server {
 public:
  HandleServer(ServerCore& core, Object object, std::shared_ptr<Actor> actor, std::shared_ptr<Budget> budget)
      : core_(core), object_(std::move(object)), actor_(std::move(actor)), budget_(std::move(budget)) {
    core_.live_handles.fetch_add(1, std::memory_order_relaxed);
    ++budget_->handles;
  }
  ~HandleServer() noexcept(false) {
    core_.live_handles.fetch_sub(1, std::memory_order_relaxed);
    --budget_->handles;
  }

  const Object& object() const { return object_; }
  const std::shared_ptr<Actor>& actor() const { return actor_; }

 protected:
  // The operations that make a new object: each reads its step (rpc/codec.hpp), decodes its
  // operands, runs it and answers.
  kj::Promise<void> attr(AttrContext context) override { return read_and_answer(StepKind::attr, context); }
  kj::Promise<void> call(CallContext context) override { return read_and_answer(StepKind::call, context); }
  kj::Promise<void> invoke(InvokeContext context) override { return read_and_answer(StepKind::invoke, context); }
  kj::Promise<void> item(ItemContext context) override { return read_and_answer(StepKind::item, context); }
  kj::Promise<void> len(LenContext context) override { return read_and_answer(StepKind::len, context); }
  kj::Promise<void> binary(BinaryContext context) override { return read_and_answer(StepKind::binary, context); }
  kj::Promise<void> unary(UnaryContext context) override { return read_and_answer(StepKind::unary, context); }

  kj::Promise<void> setAttr(SetAttrContext context) override {
    context.allowCancellation();
    CallSlot slot(core_, budget_);  // counted from here on (see CallSlot)
    auto params = context.getParams();
    auto name = text(params.getName());
    trace("set", name);
    return core_.decode(params.getValue()).then([this, name = std::move(name)](Object value) {
      return core_.on_actor(budget_, actor_, [self = object_, name, value](Ctx& ctx) -> Outcome {
        ops::set_attr(ctx, self, name, value);
        return None{};
      }, {value});
    }).ignoreResult().attach(kj::mv(slot));
  }

  kj::Promise<void> setItem(SetItemContext context) override {
    context.allowCancellation();
    CallSlot slot(core_, budget_);  // counted from here on (see CallSlot)
    trace("set_item");
    auto params = context.getParams();
    auto values = kj::heapArrayBuilder<kj::Promise<Object>>(2);
    values.add(core_.decode(params.getKey()));
    values.add(core_.decode(params.getValue()));
    return kj::joinPromises(values.finish()).then([this](kj::Array<Object> kv) {
      return core_.on_actor(budget_, actor_, [self = object_, key = kv[0], value = kv[1]](Ctx& ctx) -> Outcome {
        ops::set_item(ctx, self, key, value);
        return None{};
      }, {kv[0], kv[1]});
    }).ignoreResult().attach(kj::mv(slot));
  }

  kj::Promise<void> chain(ChainContext context) override {
    context.allowCancellation();
    CallSlot slot(core_, budget_);  // counted from here on (see CallSlot)
    auto params = context.getParams();
    auto steps = params.getSteps();
    if (zero_sized_elements(steps)) throw to_kj(zero_sized_error(steps.size()));
    if (steps.size() == 0) throw to_kj(RemoteError(ErrorKind::value, "a chain needs at least one step"));
    if (steps.size() > max_chain_steps)
      throw to_kj(RemoteError(ErrorKind::value, "a chain of " + std::to_string(steps.size()) + " steps is longer than the limit of " +
                                                    std::to_string(max_chain_steps)));
    auto fetch = checked(params.getFetch());
    auto chain = std::make_shared<std::vector<Step>>();
    chain->reserve(steps.size());
    // Read every step on the loop, resolving the handles among its operands; then run them.
    kj::Vector<kj::Promise<void>> operands;
    for (auto s : steps) {
      auto read = read_step<Object>(s);
      auto i = chain->size();
      chain->push_back(std::move(read.step));
      if (has_operands(read))
        operands.add(decode_operands(kj::mv(read)).then([chain, i](Step step) { (*chain)[i].operands = std::move(step.operands); }));
    }
    return kj::joinPromises(operands.releaseAsArray()).then([this, context, chain, fetch]() mutable {
      return run_chain(chain, 0, object_, actor_, fetch, context);
    }).attach(kj::mv(slot));
  }

  kj::Promise<void> get(GetContext context) override {
    context.allowCancellation();
    CallSlot slot(core_, budget_);  // counted from here on (see CallSlot)
    trace("get");
    return core_.on_actor(budget_, actor_, [self = object_](Ctx&) -> Outcome { return ops::get(self); }, {}, expansive(object_))
        .then([this, context](Outcome o) mutable {
          core_.encode(context.getResults().initValue(), take<Plain>(o), actor_, budget_);
        }).attach(kj::mv(slot));
  }

  kj::Promise<void> str(StrContext context) override {
    context.allowCancellation();
    CallSlot slot(core_, budget_);  // counted from here on (see CallSlot)
    trace("str");
    return core_.on_actor(budget_, actor_, [self = object_](Ctx&) -> Outcome { return ops::str(self); }, {}, expansive(object_))
        .then([context](Outcome o) mutable { context.getResults().setText(take<std::string>(o)); }).attach(kj::mv(slot));
  }

  kj::Promise<void> truthy(TruthyContext context) override {
    context.allowCancellation();
    CallSlot slot(core_, budget_);  // counted from here on (see CallSlot)
    trace("truthy");
    return core_.on_actor(budget_, actor_, [self = object_](Ctx&) -> Outcome { return ops::truthy(self); })
        .then([context](Outcome o) mutable { context.getResults().setValue(take<bool>(o)); }).attach(kj::mv(slot));
  }

  kj::Promise<void> describe(DescribeContext context) override {
    context.allowCancellation();
    CallSlot slot(core_, budget_);  // counted from here on (see CallSlot)
    trace("describe");
    return core_.on_actor(budget_, actor_, [self = object_](Ctx&) -> Outcome { return ops::describe(self); })
        .then([context](Outcome o) mutable {
          auto d = take<Description>(o);
          auto results = context.getResults();
          results.setTypeName(d.type_name);
          auto members = results.initMembers(static_cast<unsigned>(d.members.size()));
          for (unsigned i = 0; i < members.size(); ++i) {
            members[i].setName(d.members[i].name);
            members[i].setKind(d.members[i].kind);
          }
        }).attach(kj::mv(slot));
  }

 private:
  /// One line per call at trace level: the operation, its name or operator, the object's type
  /// and this handle. Checked first: with trace off a call formats and looks up nothing.
  bool tracing() const { return core_.log->should_log(spdlog::level::trace); }
  void trace(std::string_view op, std::string_view detail = {}) const { trace(op, object_, detail); }
  /// The same for the object a step runs on (a step of a chain runs on the step before's result).
  void trace(std::string_view op, const Object& self, std::string_view detail = {}) const {
    if (!tracing()) return;
    if (detail.empty()) core_.log->trace("{} on {} (handle {})", op, builtin::type_name(self), fmt::ptr(this));
    else core_.log->trace("{} '{}' on {} (handle {})", op, detail, builtin::type_name(self), fmt::ptr(this));
  }

  /// One operation that makes a new object: a method of this interface, or a step of a chain.
  /// Read off the wire on the loop.
  using Step = BasicStep<Object>;

  static bool has_operands(const ReadStep<Object>& read) { return read.args != nullptr || read.operand != nullptr; }

  /// Decodes the operands of a step read off the wire into it. [loop]
  kj::Promise<Step> decode_operands(ReadStep<Object> read) {
    KJ_IF_MAYBE(args, read.args) {
      return core_.decode(*args).then([step = std::move(read.step)](std::vector<Object> objects) mutable {
        step.operands = std::move(objects);
        return std::move(step);
      });
    }
    KJ_IF_MAYBE(operand, read.operand) {
      return core_.decode(*operand).then([step = std::move(read.step)](Object object) mutable {
        step.operands.push_back(std::move(object));
        return std::move(step);
      });
    }
    return std::move(read.step);
  }

  /// Reads the step of a Handle method, decodes its operands, runs it and answers it.
  template <class Context>
  kj::Promise<void> read_and_answer(StepKind kind, Context& context) {
    context.allowCancellation();
    CallSlot slot(core_, budget_);  // counted from here on (see CallSlot)
    auto read = read_fields<Object>(kind, context.getParams());
    if (!has_operands(read)) return answer_step(std::move(read.step), context).attach(kj::mv(slot));
    return decode_operands(kj::mv(read)).then([this, context](Step step) mutable {
      return answer_step(std::move(step), context);
    }).attach(kj::mv(slot));
  }

  /// Runs one operation of this interface on this handle's object and answers it.
  template <class Context>
  kj::Promise<void> answer_step(Step step, Context& context) {
    return finish(run_step(std::move(step), object_, actor_, checked(context.getParams().getFetch())), actor_, true, context);
  }

  /// Runs `step` on `self`, owned by `actor`; with `fetch`, evaluates the result too. Its name
  /// and operands move into the work. [loop]
  kj::Promise<Outcome> run_step(Step step, const Object& self, const std::shared_ptr<Actor>& actor,
                                wire::Handle::Fetch fetch) {
    // Operands that may expand far (==, argument conversion) send the work to the pool.
    bool heavy = expansive(self) || any_expansive(step.operands);
    auto on = [&](auto work, std::vector<Object> touched = {}, bool blocking = false) {
      return core_.on_actor(budget_, actor, std::move(work), std::move(touched), blocking || heavy, fetch);
    };
    switch (step.kind) {
      case StepKind::attr:
        trace("attr", self, step.name);
        return on([self, name = std::move(step.name)](Ctx& ctx) -> Outcome { return ops::attr(ctx, self, name); });
      case StepKind::call: {
        trace("call", self, step.name);
        bool blocking = ops::blocking(self, step.name) || core_.learned_blocking(self.type, step.name);
        auto touched = step.operands;
        return on([core = &core_, self, name = std::move(step.name), args = std::move(step.operands)](Ctx& ctx) -> Outcome {
          SlowWatch watch(*core, self.type, self, name);
          return ops::call(ctx, self, name, args);
        }, std::move(touched), blocking);
      }
      case StepKind::invoke: {
        trace("invoke", self);
        bool blocking = ops::blocking(self) || core_.learned_blocking(invoke_key(self), "");
        auto touched = step.operands;
        return on([core = &core_, self, args = std::move(step.operands)](Ctx& ctx) -> Outcome {
          SlowWatch watch(*core, invoke_key(self), self, "");
          return ops::invoke(ctx, self, args);
        }, std::move(touched), blocking);
      }
      case StepKind::item: {
        trace("item", self);
        auto key = step.operands.at(0);  // before the operands move on as the touched objects
        return on([self, key = std::move(key)](Ctx& ctx) -> Outcome { return ops::item(ctx, self, key); },
                  std::move(step.operands));
      }
      case StepKind::len:
        trace("len", self);
        return on([self](Ctx& ctx) -> Outcome { return ops::len(ctx, self); });
      case StepKind::binary: {
        trace("binary", self, spelling(step.binary_op));
        auto other = step.operands.at(0);  // before the operands move on as the touched objects
        return on([self, other = std::move(other), op = step.binary_op, reflected = step.reflected](Ctx& ctx) -> Outcome {
          return ops::binary(ctx, op, self, other, reflected);
        }, std::move(step.operands));
      }
      case StepKind::unary:
        trace("unary", self, spelling(step.unary_op));
        return on([self, op = step.unary_op](Ctx& ctx) -> Outcome { return ops::unary(ctx, op, self); });
    }
    throw to_kj(RemoteError(ErrorKind::value, "unknown step"));
  }

  /// Runs the chain's steps from `i` on, the first on `self`, and answers for the last. [loop]
  kj::Promise<void> run_chain(std::shared_ptr<std::vector<Step>> chain, std::size_t i, const Object& self,
                              const std::shared_ptr<Actor>& actor, wire::Handle::Fetch fetch, ChainContext context) {
    if (i + 1 == chain->size())
      return finish(run_step(std::move((*chain)[i]), self, actor, fetch), actor, context.getParams().getKeep(), context);
    return run_step(std::move((*chain)[i]), self, actor, wire::Handle::Fetch::NONE)
        .then([this, chain, i, actor, fetch, context](Outcome o) mutable {
          // The result in between gets no handle, but an owner as if it had one: the next step
          // runs there.
          bool fresh = std::holds_alternative<FreshObject>(o);
          Object next = fresh ? std::get<FreshObject>(std::move(o)).object : take<Object>(o);
          auto owner = core_.owner_for(next, actor, fresh);
          return run_chain(chain, i + 1, next, owner, fetch, context);
        });
  }

  /// Answers an operation whose result is a new object: its handle (unless `keep` is false: a
  /// chain whose caller wants only the evaluation), and what `fetch` asked for.
  template <class Context>
  kj::Promise<void> finish(kj::Promise<Outcome> outcome, const std::shared_ptr<Actor>& actor, bool keep, Context& context) {
    return outcome.then([this, actor, keep, context](Outcome o) mutable {
      auto results = context.getResults(small_results);  // more segments come if a value needs them
      if (auto* fresh = std::get_if<FreshObject>(&o)) {
        if (keep) results.setResult(core_.wrap(fresh->object, nullptr, budget_, true));
      } else if (auto* f = std::get_if<Fetched>(&o)) {
        // Objects inside the value belong to the result's actor (a new one for a fresh result).
        auto owner = f->fresh ? std::make_shared<Actor>(core_.pool) : actor;
        if (keep) results.setResult(core_.wrap(f->object, owner, budget_));
        if (auto* plain = std::get_if<Plain>(&f->value)) core_.encode(results.initValue(), *plain, owner, budget_);
        else if (auto* text = std::get_if<std::string>(&f->value)) results.setText(*text);
        else results.setTruth(std::get<bool>(f->value));
      } else if (keep) {
        results.setResult(core_.wrap(take<Object>(o), actor, budget_));
      }
    });
  }

  ServerCore& core_;
  Object object_;
  std::shared_ptr<Actor> actor_;
  std::shared_ptr<Budget> budget_;
};

/// The bootstrap capability: the export registry, one per connection.
class RegistryServer final : public wire::Registry::Server {
 public:
  RegistryServer(ServerCore& core, std::shared_ptr<Budget> budget) : core_(core), budget_(std::move(budget)) {}

 protected:
  kj::Promise<void> fetch(FetchContext context) override {
    auto name = text(context.getParams().getName());
    if (core_.log->should_log(spdlog::level::trace)) core_.log->trace("fetch '{}'", name);
    Export e;
    {
      std::lock_guard lock(core_.exports_mutex);
      auto it = core_.exports.find(name);
      if (it == core_.exports.end()) throw to_kj(RemoteError(ErrorKind::name, "no export named '" + name + "'"));
      e = it->second;
    }
    budget_->touch();
    context.getResults(small_results).setHandle(core_.wrap(e.object, e.actor, budget_));
    return kj::READY_NOW;
  }

  kj::Promise<void> browse(BrowseContext context) override {
    if (core_.log->should_log(spdlog::level::trace)) core_.log->trace("browse");
    std::vector<std::string> names;
    {
      std::lock_guard lock(core_.exports_mutex);
      for (auto& [n, e] : core_.exports) names.push_back(n);
    }
    auto out = context.getResults().initNames(static_cast<unsigned>(names.size()));
    for (unsigned i = 0; i < out.size(); ++i) out.set(i, names[i]);
    return kj::READY_NOW;
  }

  kj::Promise<void> store(StoreContext context) override {
    // Cancellable, like every Handle method: else a store waiting on a handle that never
    // resolves outlives its connection (and keeps the call it waits on running).
    context.allowCancellation();
    CallSlot slot(core_, budget_);  // counted from here on: decoding may wait
    if (core_.log->should_log(spdlog::level::trace)) core_.log->trace("store");
    return core_.decode(context.getParams().getValue()).then([this, context](Object value) mutable {
      auto owner = core_.identities.owner(value);
      context.getResults(small_results).setHandle(core_.wrap(value, owner, budget_, owner == nullptr));
    }).attach(kj::mv(slot));
  }

  kj::Promise<void> attach(AttachContext context) override {
    auto params = context.getParams();
    auto name = text(params.getName());
    if (core_.log->should_log(spdlog::level::trace)) core_.log->trace("attach '{}'", name);
    if (auto problem = export_name_problem(name); !problem.empty()) throw to_kj(RemoteError(ErrorKind::value, problem));
    context.allowCancellation();  // (as store)
    CallSlot slot(core_, budget_);  // counted from here on: the handle may be a promise
    return core_.unwrap(params.getHandle()).then([this, name](std::pair<Object, std::shared_ptr<Actor>> target) {
      std::lock_guard lock(core_.exports_mutex);
      check_attach_limits();
      auto [it, inserted] = core_.exports.try_emplace(name, Export{target.first, target.second, true, budget_});
      if (!inserted) throw to_kj(RemoteError(ErrorKind::name, "the name '" + name + "' is already exported"));
      ++budget_->attached;
      ++core_.attached_names;
      core_.log->info("client attached '{}'", name);
    }).attach(kj::mv(slot));
  }

  kj::Promise<void> detach(DetachContext context) override {
    auto name = text(context.getParams().getName());
    if (core_.log->should_log(spdlog::level::trace)) core_.log->trace("detach '{}'", name);
    std::lock_guard lock(core_.exports_mutex);
    auto it = core_.exports.find(name);
    if (it == core_.exports.end()) throw to_kj(RemoteError(ErrorKind::name, "no export named '" + name + "'"));
    if (!it->second.attached)
      throw to_kj(RemoteError(ErrorKind::name, "'" + name + "' was exported by the server; clients can only detach what they attached"));
    if (it->second.attached_by.lock() != budget_ && !(core_.options.may_detach_any && core_.options.may_detach_any(budget_->peer)))
      throw to_kj(RemoteError(ErrorKind::name, "'" + name + "' was attached by another connection; only that connection may detach it "
                                               "(or one that ServerOptions::may_detach_any allows)"));
    core_.forget_attached(it->second);
    core_.exports.erase(it);
    return kj::READY_NOW;
  }

 private:
  /// Refuses an attach past max_attached_per_connection or max_attached. [mutex]
  void check_attach_limits() const {
    auto& o = core_.options;
    if (budget_->attached >= o.max_attached_per_connection)
      throw to_kj(RemoteError(ErrorKind::overloaded, "too many names attached by this connection (limit max_attached_per_connection = " +
                                                         std::to_string(o.max_attached_per_connection) + ")"));
    if (core_.attached_names >= o.max_attached)
      throw to_kj(RemoteError(ErrorKind::overloaded, "too many names attached by clients (limit max_attached = " +
                                                         std::to_string(o.max_attached) + ")"));
  }

  ServerCore& core_;
  std::shared_ptr<Budget> budget_;
};

/// One accepted client connection. Owned by the task that waits for its disconnect.
class ServerConnection {
 public:
  ServerConnection(ServerCore& core, asio::ip::tcp::socket socket, std::string peer)
      : core_(core), peer_(std::move(peer)), budget_(std::make_shared<Budget>()) {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = core.options.max_message_words;
    options.nestingLimit = reader_nesting_limit(core.options.max_nesting);
    budget_->peer = peer_;
    rpc_.emplace(core.loop, std::move(socket), capnp::rpc::twoparty::Side::SERVER,
                 capnp::Capability::Client(kj::heap<RegistryServer>(core, budget_)), options,
                 std::make_shared<WireCounters>(false));
    auto& rpc = KJ_ASSERT_NONNULL(rpc_);
    if (core.options.max_inflight_call_bytes > 0) rpc.set_flow_limit(std::max<std::size_t>(1, core.options.max_inflight_call_bytes / 8));
    // Checked where answers are queued, not only by the sweep (which may wait behind the
    // loop's work while answers pile up).
    rpc.limit_queued(core.options.max_outbound_bytes, [this](std::size_t queued) {
      core_.log->warn("disconnecting {}: {} bytes of answers unread (limit max_outbound_bytes = {})", peer_, queued,
                      core_.options.max_outbound_bytes);
      if (close_) close_->fulfill();  // the stream has closed the socket
    });
    core_.open_connections.fetch_add(1);
    auto& list = core_.kj().connections;
    self_ = list.insert(list.end(), this);
    core_.log->info("connection from {}", peer_);
  }
  ~ServerConnection() {
    core_.kj().connections.erase(self_);
    note_peak();
    rpc_ = nullptr;
    core_.open_connections.fetch_sub(1);
    core_.log->info("connection from {} closed", peer_);
  }
  /// Resolves when the peer disconnects or the server closes the connection.
  kj::Promise<void> on_disconnect() {
    auto closed = kj::newPromiseAndFulfiller<void>();
    close_ = kj::mv(closed.fulfiller);
    KJ_IF_MAYBE(r, rpc_) { return r->on_disconnect().exclusiveJoin(kj::mv(closed.promise)); }
    return kj::READY_NOW;
  }
  /// Closes the socket and ends the connection's task, whether or not RPC is reading now.
  void close() {
    KJ_IF_MAYBE(r, rpc_) { r->abort(); }
    if (close_) close_->fulfill();
  }
  /// Closes the connection if it broke a limit: idle too long, or not reading its answers.
  /// True when nothing waits to be written to the peer.
  bool flushed() {
    KJ_IF_MAYBE(r, rpc_) { return r->queued_bytes() == 0; }
    return true;
  }
  /// Folds this connection's most bytes queued into the server's high-water mark.
  void note_peak() {
    KJ_IF_MAYBE(r, rpc_) {
      auto peak = r->peak_queued_bytes();
      auto seen = core_.peak_queued.load();
      while (peak > seen && !core_.peak_queued.compare_exchange_weak(seen, peak)) {}
    }
  }
  void check(std::chrono::steady_clock::time_point now) {
    note_peak();
    KJ_IF_MAYBE(r, rpc_) {
      auto& o = core_.options;
      if (r->queued_bytes() > o.max_outbound_bytes) {
        core_.log->warn("disconnecting {}: {} bytes of answers unread (limit max_outbound_bytes = {})", peer_, r->queued_bytes(), o.max_outbound_bytes);
        this->close();
      } else if (o.idle_timeout.count() > 0 && budget_->in_flight == 0 && now - budget_->last_activity > o.idle_timeout) {
        core_.log->info("disconnecting {}: idle", peer_);
        this->close();
      }
    }
  }

 private:
  ServerCore& core_;
  std::string peer_;
  std::shared_ptr<Budget> budget_;
  kj::Maybe<RpcConnection> rpc_;
  kj::Own<kj::PromiseFulfiller<void>> close_;
  std::list<ServerConnection*>::iterator self_;
};

// ---- ServerCore -----------------------------------------------------------------------------

ServerCore::ServerCore(Endpoint endpoint, const Registry& types, ServerOptions opts)
    : registry(types),
      options(std::move(opts)),
      log(make_logger(options.logger, "remoteable.server", options.log_level)),
      pool(options.actor_threads ? options.actor_threads : std::max(1u, std::thread::hardware_concurrency())),
      loop(std::make_shared<KjLoop>(io.get_executor())),
      acceptor(io) {
  if (options.max_nesting < 1 || options.max_nesting > max_nesting_limit)
    throw std::invalid_argument("ServerOptions::max_nesting must be between 1 and " + std::to_string(max_nesting_limit));
  asio::ip::tcp::endpoint ep(asio::ip::make_address(endpoint.host), endpoint.port);
  acceptor.open(ep.protocol());
  acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true));
  acceptor.bind(ep);
  acceptor.listen();
  keep_running_.emplace(io.get_executor());
}

ServerCore::~ServerCore() = default;

void ServerCore::forget_attached(Export& e) {
  if (!e.attached) return;
  --attached_names;
  if (auto by = e.attached_by.lock()) --by->attached;
  e.attached = false;
}

namespace {
/// Objects that no strand needs to guard: immutable boxed values, classes and functions.
bool immutable(const Object& o) {
  return builtin::is_plain(o) || o.is(builtin::class_type()) || o.is(builtin::function_type());
}
}  // namespace

template <class Work>
kj::Promise<Outcome> ServerCore::on_actor(const std::shared_ptr<Budget>& budget, const std::shared_ptr<Actor>& actor,
                                          Work work, std::vector<Object> touched, bool blocking, wire::Handle::Fetch fetch) {
  auto& k = kj();
  budget->touch();  // (max_calls_per_connection is checked when the call is received: CallSlot)
  auto id = k.next_id++;
  auto cancel = std::make_shared<CallCancel>();
  auto promise = kj::newAdaptedPromise<Outcome, PendingCall>(k, id, budget, cancel, actor);
  // Arguments owned by other actors: merge them with this one first (DESIGN §4 rule 4).
  std::vector<std::shared_ptr<Actor>> others;
  for (auto& o : touched) {
    if (immutable(o)) continue;
    if (auto owner = identities.owner(o); owner && owner->root() != actor->root()) others.push_back(std::move(owner));
  }
  auto job = [core = shared_from_this(), actor, id, cancel, fetch, work = std::move(work),
              counted = UserJob(shared_from_this())]() mutable {
    // Counted for stop() until the work and what it holds are gone: `held` is declared first,
    // so it ends last (or moves on with a coroutine method).
    UserJob held = std::move(counted);
    auto user_work = std::move(work);
    if (cancel->cancelled) return core->complete(id, None{}, std::make_exception_ptr(RemoteError(ErrorKind::cancelled, "cancelled")));
    Ctx ctx{core->registry};
    Outcome outcome;
    std::exception_ptr error;
    try {
      outcome = user_work(ctx);
      if (auto* obj = std::get_if<Object>(&outcome); obj && obj->is(builtin::pending_type())) {
        // A coroutine method: run it on this actor's strand; other calls to the actor may run
        // while it is suspended (reentrancy at co_await, DESIGN §4 rule 5). A cancelled call
        // stops at its next co_await.
        auto run = std::move(obj->as<builtin::Pending>().run);
        asio::co_spawn(actor->root()->strand(), std::move(run),
                       asio::bind_cancellation_slot(cancel->signal.slot(), [core, id, cancel, fetch, held = std::move(held)](std::exception_ptr e, Object result) {
                         // On the actor's strand: the value may be read here.
                         Outcome outcome;
                         if (!e) {
                           try {
                             outcome = object_outcome(std::move(result), fetch, false, core->options.max_nesting);
                           } catch (...) {
                             e = std::current_exception();
                           }
                         }
                         core->complete(id, std::move(outcome), e);
                       }));
        return;
      }
      if (auto* obj = std::get_if<Object>(&outcome)) {
        if (fetch != wire::Handle::Fetch::NONE && expansive(*obj)) {
          // Evaluating a large plain result: on the pool (it is immutable, any thread may read
          // it), so that this job, perhaps inline on the network thread, ends now.
          asio::post(core->pool, [core, id, fetch, fresh = ctx.fresh_actor, result = std::move(*obj), held = std::move(held)]() mutable {
            Outcome evaluated;
            std::exception_ptr e;
            try {
              evaluated = object_outcome(std::move(result), fetch, fresh, core->options.max_nesting);
            } catch (...) {
              e = std::current_exception();
            }
            core->complete(id, std::move(evaluated), e);
          });
          return;
        }
        outcome = object_outcome(std::move(*obj), fetch, ctx.fresh_actor, core->options.max_nesting);
      }
    } catch (...) {
      error = std::current_exception();
    }
    core->complete(id, std::move(outcome), error);
  };
  if (others.empty()) {
    if (blocking) actor->post(std::move(job));
    else actor->dispatch(std::move(job));
  } else {
    log->debug("merging {} actor(s) on contact", others.size());
    Actor::merge_and_post(actor, others, std::move(job));
  }
  return promise;
}

void ServerCore::complete(std::uint64_t id, Outcome outcome, std::exception_ptr error) {
  // Runs on an actor's strand: hand plain data to the loop; only the loop touches KJ. (Inline
  // when the actor ran the work inline on the loop's thread.)
  loop->run([core = shared_from_this(), id, outcome = std::move(outcome), error]() mutable {
    if (!core->kj_) return;
    auto it = core->kj_->pending.find(id);
    if (it != core->kj_->pending.end()) {  // else cancelled or torn down meanwhile
      if (error) it->second->reject(to_kj(to_remote_error(error)));
      else it->second->fulfill(std::move(outcome));
    }
    // The answered call unregisters once KJ consumes its answer: check for the end of a
    // graceful stop after that.
    if (core->draining_) core->loop->post([core] { core->maybe_finish_stop(); });
  });
}

wire::Handle::Client ServerCore::wrap(const Object& object, const std::shared_ptr<Actor>& actor,
                                      const std::shared_ptr<Budget>& budget, bool fresh) {
  if (budget->handles >= options.max_handles_per_connection)
    throw to_kj(RemoteError(ErrorKind::overloaded, "too many live handles on this connection (limit " +
                                                       std::to_string(options.max_handles_per_connection) + ")"));
  return kj().caps.add(kj::heap<HandleServer>(*this, object, owner_for(object, actor, fresh), budget));
}

std::shared_ptr<Actor> ServerCore::owner_for(const Object& object, const std::shared_ptr<Actor>& actor, bool fresh) {
  std::shared_ptr<Actor> owner = actor;
  if (fresh || !owner) owner = std::make_shared<Actor>(pool);
  if (!immutable(object)) {
    auto existing = identities.claim(object, owner);
    // Reached from this actor but owned by another: they now share state (DESIGN §4 rule 2).
    if (existing != owner && !fresh && existing->root() != owner->root()) Actor::merge_and_post(owner, {existing}, [] {});
    owner = std::move(existing);
  }
  return owner;
}

kj::Promise<std::pair<Object, std::shared_ptr<Actor>>> ServerCore::unwrap(wire::Handle::Client cap) {
  return kj().caps.getLocalServer(cap).then(
      [](kj::Maybe<wire::Handle::Server&> server) -> std::pair<Object, std::shared_ptr<Actor>> {
        KJ_IF_MAYBE(s, server) {
          auto& h = static_cast<HandleServer&>(*s);
          return {h.object(), h.actor()};
        }
        throw to_kj(RemoteError(ErrorKind::type, "a handle from another server or connection cannot be used here"));
      });
}

namespace {
/// A capability met while decoding, and the slot in the decoded tree it resolves into.
struct Hole {
  Object* slot;
  wire::Handle::Client cap;
};

RemoteError too_deep(int limit) { return detail::too_deep(limit, "is refused"); }

/// The server's side of decoding (see decode_value): boxed built-in objects. It collects the
/// capabilities to resolve, and the lists and maps made, children before parents, whose shapes
/// change once the holes are filled.
struct ObjectDecoding {
  using Out = Object;
  using List = builtin::ObjectList;
  using Map = builtin::ObjectMap;
  kj::Vector<Hole> holes;
  std::vector<const Object*> containers;
  int limit;

  int max_depth() const { return limit; }
  [[noreturn]] void too_deep() const { throw to_kj(detail::too_deep(limit, "is refused")); }
  void set(Object& slot, None) { slot = builtin::none(); }
  template <class S> void set(Object& slot, S&& scalar) { slot = builtin::box(std::forward<S>(scalar)); }
  void set_list(Object& slot, List&& list) {
    slot = builtin::box(std::move(list));  // moving a vector keeps its elements (and the holes) in place
    containers.push_back(&slot);
  }
  void set_map(Object& slot, Map&& map) {
    slot = builtin::box(std::move(map));  // map nodes stay in place
    containers.push_back(&slot);
  }
  Object& map_slot(Map& map, std::string key) {
    auto [it, inserted] = map.try_emplace(std::move(key));
    if (!inserted) throw to_kj(RemoteError(ErrorKind::value, "a map on the wire has the key '" + it->first + "' twice"));
    return it->second;
  }
  void handle(Object& slot, wire::Handle::Client cap) { holes.add(Hole{&slot, kj::mv(cap)}); }

};
}  // namespace

kj::Promise<Object> ServerCore::decode(wire::Value::Reader value) {
  auto root = kj::heap<Object>();
  ObjectDecoding d{{}, {}, options.max_nesting};  // on the stack: most values hold no handle
  try {
    decode_value(value, *root, d);
  } catch (kj::Exception& e) {
    // Cap'n Proto's own checks (a pointer out of bounds, a message nested past its limit): the
    // value is malformed. Ours carry their kind already.
    if (from_kj(e).kind() != ErrorKind::user) throw;
    throw to_kj(RemoteError(ErrorKind::value, std::string("a malformed value on the wire: ") + e.getDescription().cStr()));
  }
  if (d.holes.empty()) return kj::mv(*root);
  auto unwrapped = KJ_MAP(h, d.holes) { return unwrap(kj::mv(h.cap)); };
  auto slots = KJ_MAP(h, d.holes) { return h.slot; };
  return kj::joinPromises(kj::mv(unwrapped))
      .then([root = kj::mv(root), containers = std::move(d.containers), max_depth = d.limit, slots = kj::mv(slots)](kj::Array<std::pair<Object, std::shared_ptr<Actor>>> resolved) mutable {
        for (size_t i = 0; i < slots.size(); ++i) *slots[i] = kj::mv(resolved[i].first);
        // The handles are values stored before: their depth adds to this one's. Children first.
        for (auto* c : containers) builtin::reshape(*c);
        if (builtin::shape(*root).depth > static_cast<std::uint32_t>(max_depth)) throw to_kj(too_deep(max_depth));
        return kj::mv(*root);
      });
}

kj::Promise<std::vector<Object>> ServerCore::decode(capnp::List<wire::Value>::Reader values) {
  if (zero_sized_elements(values)) throw to_kj(zero_sized_error(values.size()));
  auto parts = kj::heapArrayBuilder<kj::Promise<Object>>(values.size());
  for (auto v : values) parts.add(decode(v));
  return kj::joinPromises(parts.finish()).then([](kj::Array<Object> objects) {
    return std::vector<Object>(std::make_move_iterator(objects.begin()), std::make_move_iterator(objects.end()));
  });
}

void ServerCore::encode(wire::Value::Builder out, const Plain& value, const std::shared_ptr<Actor>& actor,
                        const std::shared_ptr<Budget>& budget) {
  auto cap = [&](const Object& o) { return wrap(o, actor, budget); };
  encode_value(out, value, cap, options.max_nesting);
}

void ServerCore::start_accepting() {
  accept_one();
  schedule_sweep();
}

void ServerCore::accept_one() {
  acceptor.async_accept([core = shared_from_this()](std::error_code ec, asio::ip::tcp::socket socket) {
    if (ec) {
      if (ec != asio::error::operation_aborted && !core->stopping) core->accept_failed(ec);
      return;
    }
    if (core->accept_failures_ > 0) {
      // Told only when the failures were (at most one line per interval, so this is bounded too).
      if (core->accept_reported_failure_)
        core->log->info("accepting again after {} failed attempt(s)", core->accept_failures_);
      core->accept_failures_ = 0;
      core->accept_reported_failure_ = false;
      core->accept_backoff_ = accept_backoff_min;
    }
    std::error_code ignored;
    auto remote = socket.remote_endpoint(ignored);
    auto peer = remote.address().to_string() + ":" + std::to_string(remote.port());
    core->loop->run([core, socket = std::move(socket), peer = std::move(peer)]() mutable {
      if (core->stopping) return;
      if (core->open_connections.load() >= core->options.max_connections) {
        core->log->warn("refusing {}: {} connections open (limit)", peer, core->options.max_connections);
        return;  // the socket closes here
      }
      try {
        auto conn = kj::heap<ServerConnection>(*core, std::move(socket), std::move(peer));
        auto done = conn->on_disconnect();
        core->kj().tasks.add(done.attach(kj::mv(conn)));
      } catch (kj::Exception& e) {
        core->log->warn("could not set up a connection: {}", e.getDescription().cStr());
      }
    });
    core->accept_one();
  });
}

void ServerCore::accept_failed(std::error_code ec) {
  // Out of descriptors (EMFILE, ENFILE) or memory (ENOBUFS, ENOMEM), or any other error: the
  // pending connection stays in the kernel's queue, so retrying at once would fail at once,
  // forever. Wait, doubling the wait up to accept_backoff_max; the first accept that succeeds
  // resets it.
  ++accept_failures_;
  ++accept_unreported_;
  auto now = std::chrono::steady_clock::now();
  // One line per interval at most, whatever successes come in between (each success after a
  // reported failure adds one "accepting again" line: two lines per interval at most).
  if (accept_reported_ == decltype(now){} || now - accept_reported_ >= accept_report_interval) {
    if (accept_unreported_ == 1)
      log->warn("accept failed: {}; retrying in {} ms (backing off up to {} ms, one line per {} ms at most)", ec.message(),
                accept_backoff_.count(), accept_backoff_max.count(), accept_report_interval.count());
    else
      log->warn("accept failed: {} ({} failure(s) since the last report); retrying in {} ms", ec.message(),
                accept_unreported_, accept_backoff_.count());
    accept_unreported_ = 0;
    accept_reported_ = now;
    accept_reported_failure_ = true;
  }
  accept_timer_.expires_after(accept_backoff_);
  accept_backoff_ = std::min(accept_backoff_ * 2, accept_backoff_max);
  accept_timer_.async_wait([core = shared_from_this()](std::error_code ec) {
    if (ec || core->stopping) return;
    core->accept_one();
  });
}

void ServerCore::schedule_sweep() {
  sweep_timer_.expires_after(options.sweep_interval);
  sweep_timer_.async_wait([core = shared_from_this()](std::error_code ec) {
    if (ec || core->stopping) return;
    core->loop->run([core] { core->sweep(); });
    core->schedule_sweep();
  });
}

void ServerCore::sweep() {
  if (!kj_) return;
  auto now = std::chrono::steady_clock::now();
  auto connections = kj_->connections;  // check() may end a connection, which unlinks itself later
  for (auto* c : connections) c->check(now);
}

void ServerCore::stop() {
  if (stopping.exchange(true)) return;
  asio::post(io, [core = shared_from_this()] {
    std::error_code ignored;
    core->acceptor.close(ignored);
    core->accept_timer_.cancel();
    core->sweep_timer_.cancel();
    core->loop->run([core] {
      core->draining_ = true;
      if (!core->kj_ || core->kj_->pending.empty()) return core->maybe_finish_stop();
      core->log->info("stopping: waiting up to {} ms for {} call(s)", core->options.stop_grace.count(), core->kj_->pending.size());
      core->grace_timer_.expires_after(core->options.stop_grace);
      core->grace_timer_.async_wait([core](std::error_code) {
        core->loop->run([core] { core->finish_stop(); });
      });
    });
  });
}

void ServerCore::maybe_finish_stop() {
  if (!draining_ || (kj_ && !kj_->pending.empty())) return;
  // From a fresh handler, after KJ has delivered what the last answer unblocked (calls
  // pipelined on it are part of the same chain): stop only if still nothing is running.
  loop->post([core = shared_from_this()] {
    if (!core->draining_ || (core->kj_ && !core->kj_->pending.empty())) return;
    if (core->kj_ && core->flush_attempts_ < 50) {
      // Let the last answers reach their clients first (at most ~100 ms).
      for (auto* c : core->kj_->connections) {
        if (!c->flushed()) {
          ++core->flush_attempts_;
          core->flush_timer_.expires_after(std::chrono::milliseconds(2));
          core->flush_timer_.async_wait([core](std::error_code ec) {
            if (!ec) core->loop->run([core] { core->maybe_finish_stop(); });
          });
          return;
        }
      }
    }
    core->draining_ = false;
    core->flush_timer_.cancel();
    core->grace_timer_.cancel();
    core->finish_stop();
  });
}

void ServerCore::finish_stop() {
  teardown();
  keep_running_.reset();  // run() returns once the network thread has nothing left
  std::lock_guard lock(stop_mutex_);
  network_stopped_ = true;
  stop_changed_.notify_all();
}

bool ServerCore::on_own_thread() {
  return io.get_executor().running_in_this_thread() || pool.get_executor().running_in_this_thread();
}

void ServerCore::serve(std::unique_lock<std::mutex>& lock) {
  ++io_runners_;
  lock.unlock();
  struct Unregister {
    ServerCore& core;
    std::unique_lock<std::mutex>& lock;
    ~Unregister() {
      lock.lock();
      --core.io_runners_;
      core.stop_changed_.notify_all();
    }
  } unregister{*this, lock};
  io.run();
}

void ServerCore::run() {
  std::unique_lock lock(stop_mutex_);
  // One thread serves the network thread at a time: a stop() that found nobody serving it may
  // be doing so now.
  stop_changed_.wait(lock, [&] { return io_runners_ == 0; });
  if (network_stopped_) return;  // stopped before run() got here: nothing to serve
  if (!stopping) start_accepting();  // on this thread, before it runs io: nobody else does now
  serve(lock);
}

void ServerCore::await_stopped() {
  std::unique_lock lock(stop_mutex_);
  stop_waiting_ = true;
  while (!(network_stopped_ && user_jobs_ == 0)) {
    if (!network_stopped_ && io_runners_ == 0) {
      // run() is not running (never called, or it ended): the stop's work is queued on the
      // network thread's io_context, and nobody else will run it. Serve it here.
      if (io.stopped()) io.restart();
      serve(lock);
      continue;
    }
    if (network_stopped_ && !waiting_logged_) {
      waiting_logged_ = true;
      log->info("stopping: waiting for {} call(s) still running user code", user_jobs_.load());
    }
    stop_changed_.wait(lock);
  }
}

void ServerCore::await_no_runner() {
  std::unique_lock lock(stop_mutex_);
  stop_changed_.wait(lock, [&] { return io_runners_ == 0; });
}

ServerCore::UserJob::UserJob(std::shared_ptr<ServerCore> core) : core_(std::move(core)) { core_->user_jobs_.fetch_add(1); }

ServerCore::UserJob::~UserJob() {
  if (!core_) return;
  // The lock orders this wake-up after a waiter's check of the count (no lost wake-up); taken
  // only while someone waits, so that a call normally costs two atomic operations.
  if (core_->user_jobs_.fetch_sub(1) == 1 && core_->stop_waiting_.load()) {
    std::lock_guard lock(core_->stop_mutex_);
    core_->stop_changed_.notify_all();
  }
}

void ServerCore::teardown() {
  flush_timer_.cancel();
  if (!kj_) return;
  draining_ = false;
  auto calls = kj_->pending;  // rejecting unlinks nothing: only destruction does
  for (auto& [id, call] : calls) call->abort(to_kj(RemoteError(ErrorKind::disconnected, "the server is stopping")));
  auto k = std::move(kj_);
  k.reset();  // tasks first (every connection, capability and call), then the capability set
}

}  // namespace detail

// ---- Server ---------------------------------------------------------------------------------

Server::Server(Endpoint endpoint, const Registry& types, ServerOptions options)
    : registry_(types), core_(std::make_shared<detail::ServerCore>(std::move(endpoint), types, std::move(options))) {}

Server::~Server() {
  stop();  // waits for the stop and for user code, serving the network thread if nobody does
  core_->await_no_runner();  // a run() on another thread returning
  if (!core_->io.stopped()) core_->io.run();
  core_->pool.join();
  // Results that actors posted after the loop stopped: run them (they find nothing to fulfil)
  // so that they release the core.
  core_->io.restart();
  core_->io.poll();
  {
    detail::KjLoop::Scope scope(*core_->loop);
    core_->teardown();
    core_->loop->drive();
  }
}

std::uint16_t Server::port() const { return core_->acceptor.local_endpoint().port(); }

void Server::export_ref(Object ref, std::string name, const std::string* same_actor, bool replace) {
  if (auto problem = export_name_problem(name); !problem.empty()) throw std::invalid_argument(problem);
  std::lock_guard lock(core_->exports_mutex);
  if (!replace && core_->exports.contains(name))
    throw std::invalid_argument("the name '" + name + "' is already exported (pass remoteable::replace to replace it)");
  std::shared_ptr<detail::Actor> actor;
  if (same_actor) {
    auto it = core_->exports.find(*same_actor);
    if (it == core_->exports.end())
      throw std::invalid_argument("same_actor_as: no export named '" + *same_actor + "'");
    actor = it->second.actor;
  } else {
    actor = core_->identities.owner(ref);
    if (!actor) actor = std::make_shared<detail::Actor>(core_->pool);
  }
  if (!detail::builtin::is_plain(ref)) actor = core_->identities.claim(ref, actor);
  if (auto it = core_->exports.find(name); it != core_->exports.end()) core_->forget_attached(it->second);
  core_->exports.insert_or_assign(std::move(name), detail::Export{std::move(ref), std::move(actor), false, {}});
}

bool Server::unexport(std::string_view name) {
  std::lock_guard lock(core_->exports_mutex);
  auto it = core_->exports.find(name);
  if (it == core_->exports.end()) return false;
  core_->forget_attached(it->second);
  core_->exports.erase(it);
  return true;
}

std::vector<std::string> Server::browse() const {
  std::lock_guard lock(core_->exports_mutex);
  std::vector<std::string> names;
  for (auto& [n, e] : core_->exports) names.push_back(n);
  return names;
}

void Server::run() { core_->run(); }

void Server::stop() {
  core_->stop();
  // On the network thread or the pool, waiting would wait for the caller itself (or for the
  // thread that must do the stop's work): the stop is started, and finishes after we return.
  if (core_->on_own_thread()) return;
  core_->await_stopped();
}

bool Server::same_actor(std::string_view a, std::string_view b) const {
  std::lock_guard lock(core_->exports_mutex);
  auto x = core_->exports.find(a);
  auto y = core_->exports.find(b);
  if (x == core_->exports.end() || y == core_->exports.end()) return false;
  return x->second.actor->root() == y->second.actor->root();
}

std::size_t Server::live_handles() const { return core_->live_handles.load(); }
std::size_t Server::connections() const { return core_->open_connections.load(); }
std::size_t Server::calls_in_flight() const { return core_->calls_in_flight.load(); }
std::size_t Server::peak_queued_bytes() const { return core_->peak_queued.load(); }

ThreadedServer::ThreadedServer(Endpoint endpoint, const Registry& types, ServerOptions options)
    : server_(std::move(endpoint), types, std::move(options)), thread_([this] { server_.run(); }) {}

ThreadedServer::~ThreadedServer() { stop(); }

void ThreadedServer::stop() {
  server_.stop();
  if (server_.core_->on_own_thread()) return;  // the thread may be this one; the destructor joins
  std::lock_guard lock(join_mutex_);  // two threads stopping at once: one joins, the other waits
  if (thread_.joinable()) thread_.join();
}

}  // namespace remoteable
