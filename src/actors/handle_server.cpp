// HandleServer: the capability server of one handle, and how the server turns objects into
// capabilities and back (ServerCore::wrap, owner_for, unwrap).

#include <kj/debug.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <remoteable/detail/builtins.hpp>
#include "actors/detail/answer.hpp"
#include "actors/detail/calls.hpp"
#include "actors/detail/on_actor.hpp"
#include "actors/detail/outcome.hpp"
#include "actors/detail/server_core.hpp"
#include "actors/detail/server_kj.hpp"
#include "actors/detail/slow_calls.hpp"
#include "peer/detail/access.hpp"
#include "peer/detail/peer_connection.hpp"
#include "rpc/codec.hpp"
#include "rpc/kj_error.hpp"
#include "rpc/wire_checks.hpp"

namespace remoteable::detail {

// ---- iteration ------------------------------------------------------------------------------

/// A batch ends early once its elements expand to this many bytes (it always carries one).
constexpr std::uint64_t max_batch_bytes = 8u << 20;

/// The elements one batch may carry: what the peer asked for, within [1, max_iterate_batch].
std::size_t batch_size(std::uint32_t asked, const ServerOptions& options) {
  return std::clamp<std::uint32_t>(asked, 1, std::max<std::uint32_t>(options.max_iterate_batch, 1));
}

/// Whether iterating `object` runs user code (a registered container's begin()/end(), a
/// generator's body): then on the actor pool, never inline on the network thread, as a method
/// whose cost is unknown. A list or map is read in place, inline when its actor is idle.
bool runs_user_code(const Object& object) { return !builtin::is_plain(object); }

/// One iteration's elements, shared by its cursor (on the loop) and the operations that read
/// it (on the object's actor, one at a time).
struct CursorState {
  explicit CursorState(std::shared_ptr<Budget> budget) : budget(std::move(budget)) {}
  ~CursorState() { drop(); }
  CursorState(const CursorState&) = delete;
  CursorState& operator=(const CursorState&) = delete;

  /// Takes the sequence an iteration starts with, its snapshot counted in the connection's
  /// max_snapshot_bytes_per_connection; past it, an overloaded error (and nothing held). [actor]
  void hold(std::unique_ptr<Sequence> s, const ServerCore& core) {
    auto bytes = s->held_bytes;
    auto limit = core.options.max_snapshot_bytes_per_connection;
    if (bytes > 0) {
      auto before = budget->snapshot_bytes.fetch_add(bytes);
      if (before + bytes > limit || before + bytes < before) {
        budget->snapshot_bytes.fetch_sub(bytes);
        if (core.metrics) core.metrics->breach(Limit::max_snapshot_bytes_per_connection);
        throw RemoteError(ErrorKind::overloaded, "the snapshots of this connection's open iterations would hold " +
                                                     std::to_string(before + bytes) + " bytes (limit max_snapshot_bytes_per_connection = " +
                                                     std::to_string(limit) + ")");
      }
      held = bytes;
    }
    sequence = std::move(s);
  }
  /// Drops the sequence (a generator's frame goes now, on its actor) and its count. [actor]
  void drop() {
    sequence.reset();
    if (held > 0) budget->snapshot_bytes.fetch_sub(held);
    held = 0;
  }

  std::unique_ptr<Sequence> sequence;  ///< [actor]; dropped once read to the end
  std::atomic<bool> done{false};       ///< set on the actor, read on the loop after each batch
  const std::shared_ptr<Budget> budget;
  std::size_t held = 0;  ///< bytes counted in budget->snapshot_bytes [actor]
};

/// Reads at most `max` elements of the iteration as plain values (registered objects stay
/// objects, and go back as handles), charged as get() is. [actor]
Plain read_batch(Ctx& ctx, CursorState& state, std::size_t max) {
  Plain::List out;
  if (!state.sequence) return out;
  ops::ExpansionBudget budget;
  out.reserve(std::min<std::size_t>(max, 4096));
  std::uint64_t bytes = 0;
  while (out.size() < max && bytes < max_batch_bytes) {
    Object e = state.sequence->next(ctx);
    if (!e) {
      state.drop();
      state.done = true;
      break;
    }
    auto cost = sizeof(Plain) + builtin::shape(e).expansion;
    ops::charge_expansion(cost);  // (get() inside an open budget charges nothing more)
    out.push_back(ops::get(e));
    bytes += cost;
  }
  return out;
}

/// The capability server of one iteration (wire::Cursor): its batches run on the actor of the
/// object iterated. Counted in the connection's budget (max_cursors_per_connection) while it
/// lives; releasing it drops the snapshot, or destroys the generator, on that actor.
class CursorServer final : public wire::Cursor::Server {
 public:
  CursorServer(ServerCore& core, Object object, std::shared_ptr<Actor> actor, std::shared_ptr<Budget> budget, bool read_only)
      : core_(core), object_(std::move(object)), actor_(std::move(actor)), budget_(std::move(budget)), read_only_(read_only) {
    ++budget_->cursors;
  }
  ~CursorServer() noexcept(false) {
    --budget_->cursors;
    // The last reference may be a suspended generator: its frame (user code) goes on its actor,
    // counted for stop() as any user code is.
    actor_->post([state = std::move(state_), job = ServerCore::UserJob(core_.shared_from_this())]() mutable { state.reset(); });
  }

  const std::shared_ptr<CursorState>& state() const { return state_; }
  const std::shared_ptr<Actor>& actor() const { return actor_; }
  const std::shared_ptr<Budget>& budget() const { return budget_; }

  /// Writes a batch read on the actor into `values`. [loop]
  void encode(capnp::List<wire::Value>::Builder values, const Plain::List& batch) {
    for (unsigned i = 0; i < values.size(); ++i) core_.encode(values[i], batch[i], actor_, budget_, read_only_);
  }

 protected:
  kj::Promise<void> next(NextContext context) override {
    context.allowCancellation();
    CallSlot slot(core_, budget_);  // counted from here on (see CallSlot)
    auto max = batch_size(context.getParams().getMax(), core_.options);
    auto* series = core_.metrics ? core_.metrics->series(CallOp::next, object_) : nullptr;
    return core_.on_actor(budget_, actor_, series, [state = state_, max](Ctx& ctx) -> Outcome { return read_batch(ctx, *state, max); },
                          {}, runs_user_code(object_))
        .then([this, context](Outcome o) mutable {
          auto batch = take<Plain>(o);
          auto& list = std::get<Plain::List>(batch.storage());
          auto results = context.getResults();
          encode(results.initValues(static_cast<unsigned>(list.size())), list);
          results.setDone(state_->done);
        }).attach(kj::mv(slot));
  }

 private:
  ServerCore& core_;
  Object object_;  ///< what is iterated (for the metrics' type label)
  std::shared_ptr<Actor> actor_;
  std::shared_ptr<Budget> budget_;
  const bool read_only_;
  std::shared_ptr<CursorState> state_ = std::make_shared<CursorState>(budget_);
};

/// The capability server of one handle: an object and the actor that owns it.
///
/// Lives on the loop; created by ServerCore::wrap. Holds the core by reference: the core
/// destroys every capability (teardown) before it goes away.
class HandleServer final : public wire::Handle::Server {
 public:
  HandleServer(ServerCore& core, Object object, std::shared_ptr<Actor> actor, std::shared_ptr<Budget> budget, bool read_only)
      : core_(core), object_(std::move(object)), actor_(std::move(actor)), budget_(std::move(budget)), read_only_(read_only) {
    core_.live_handles.fetch_add(1, std::memory_order_relaxed);
    ++budget_->handles;
  }
  ~HandleServer() noexcept(false) {
    core_.live_handles.fetch_sub(1, std::memory_order_relaxed);
    --budget_->handles;
  }

  const Object& object() const { return object_; }
  const std::shared_ptr<Actor>& actor() const { return actor_; }
  /// Reached from a read-only export (Server::set_read_only), or its object was passed back
  /// through such a handle: no set_attr or set_item, and what is derived from it is read-only too.
  bool read_only() const { return read_only_ || core_.read_only_objects.contains(object_); }

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
  kj::Promise<void> slice(SliceContext context) override { return read_and_answer(StepKind::slice, context); }

  kj::Promise<void> iterate(IterateContext context) override {
    context.allowCancellation();
    CallSlot slot(core_, budget_);  // counted from here on (see CallSlot)
    trace("iterate");
    if (budget_->cursors >= core_.options.max_cursors_per_connection) {
      if (core_.metrics) core_.metrics->breach(Limit::max_cursors_per_connection);
      throw to_kj(RemoteError(ErrorKind::overloaded, "too many iterations open on this connection (limit max_cursors_per_connection = " +
                                                         std::to_string(core_.options.max_cursors_per_connection) + ")"));
    }
    auto max = batch_size(context.getParams().getBatch(), core_.options);
    // Counted from now: iterations in flight count against the limit too.
    auto cursor = kj::heap<CursorServer>(core_, object_, actor_, budget_, read_only());
    auto state = cursor->state();
    return core_.on_actor(budget_, actor_, metered(CallOp::iterate, object_), [core = &core_, self = object_, state, max](Ctx& ctx) -> Outcome {
             state->hold(ops::iterate(ctx, self), *core);
             return read_batch(ctx, *state, max);
           }, {}, expansive(object_) || runs_user_code(object_))
        .then([context, cursor = kj::mv(cursor)](Outcome o) mutable {
          auto batch = take<Plain>(o);
          auto& list = std::get<Plain::List>(batch.storage());
          auto results = context.getResults();
          cursor->encode(results.initValues(static_cast<unsigned>(list.size())), list);
          bool done = cursor->state()->done;
          results.setDone(done);
          if (!done) results.setCursor(kj::mv(cursor));  // else it goes now, and its count
        }).attach(kj::mv(slot));
  }

  kj::Promise<void> setAttr(SetAttrContext context) override {
    context.allowCancellation();
    CallSlot slot(core_, budget_);  // counted from here on (see CallSlot)
    auto params = context.getParams();
    auto name = text(params.getName());
    trace("set", name);
    if (read_only()) throw to_kj(refused_write("attribute '" + name + "'"));
    return core_.decode(params.getValue(), budget_).then([this, name = std::move(name)](Object value) {
      return core_.on_actor(budget_, actor_, metered(CallOp::set_attr, object_, name), [self = object_, name, value](Ctx& ctx) -> Outcome {
        ops::set_attr(ctx, self, name, value);
        return None{};
      }, {value});
    }).ignoreResult().attach(kj::mv(slot));
  }

  kj::Promise<void> setItem(SetItemContext context) override {
    context.allowCancellation();
    CallSlot slot(core_, budget_);  // counted from here on (see CallSlot)
    trace("set_item");
    if (read_only()) throw to_kj(refused_write("an item"));
    auto params = context.getParams();
    auto values = kj::heapArrayBuilder<kj::Promise<Object>>(2);
    values.add(core_.decode(params.getKey(), budget_));
    values.add(core_.decode(params.getValue(), budget_));
    return kj::joinPromises(values.finish()).then([this](kj::Array<Object> kv) {
      return core_.on_actor(budget_, actor_, metered(CallOp::set_item, object_), [self = object_, key = kv[0], value = kv[1]](Ctx& ctx) -> Outcome {
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
      if (!has_operands(read)) continue;
      KJ_IF_MAYBE(objects, operands_now(read)) {
        (*chain)[i].operands = std::move(*objects);
      } else {
        operands.add(with_operands(read, [chain, i](std::vector<Object> objects) { (*chain)[i].operands = std::move(objects); }));
      }
    }
    if (operands.empty()) return run_chain(chain, 0, object_, actor_, read_only(), fetch, context).attach(kj::mv(slot));
    return kj::joinPromises(operands.releaseAsArray()).then([this, context, chain, fetch]() mutable {
      return run_chain(chain, 0, object_, actor_, read_only(), fetch, context);
    }).attach(kj::mv(slot));
  }

  kj::Promise<void> get(GetContext context) override {
    context.allowCancellation();
    CallSlot slot(core_, budget_);  // counted from here on (see CallSlot)
    trace("get");
    return core_.on_actor(budget_, actor_, metered(CallOp::get, object_), [self = object_](Ctx&) -> Outcome { return ops::get(self); }, {},
                          expansive(object_))
        .then([this, context](Outcome o) mutable {
          core_.encode(context.getResults().initValue(), take<Plain>(o), actor_, budget_, read_only());
        }).attach(kj::mv(slot));
  }

  kj::Promise<void> str(StrContext context) override {
    context.allowCancellation();
    CallSlot slot(core_, budget_);  // counted from here on (see CallSlot)
    trace("str");
    return core_.on_actor(budget_, actor_, metered(CallOp::str, object_), [self = object_](Ctx&) -> Outcome { return ops::str(self); }, {},
                          expansive(object_))
        .then([context](Outcome o) mutable { context.getResults().setText(take<std::string>(o)); }).attach(kj::mv(slot));
  }

  kj::Promise<void> truthy(TruthyContext context) override {
    context.allowCancellation();
    CallSlot slot(core_, budget_);  // counted from here on (see CallSlot)
    trace("truthy");
    return core_.on_actor(budget_, actor_, metered(CallOp::truthy, object_), [self = object_](Ctx&) -> Outcome { return ops::truthy(self); })
        .then([context](Outcome o) mutable { context.getResults().setValue(take<bool>(o)); }).attach(kj::mv(slot));
  }

  kj::Promise<void> openStream(OpenStreamContext context) override;

  kj::Promise<void> describe(DescribeContext context) override {
    context.allowCancellation();
    CallSlot slot(core_, budget_);  // counted from here on (see CallSlot)
    trace("describe");
    return core_.on_actor(budget_, actor_, metered(CallOp::describe, object_),
                          [self = object_](Ctx& ctx) -> Outcome { return ops::describe(ctx.registry, self); })
        .then([context](Outcome o) mutable {
          auto d = take<Description>(o);
          auto results = context.getResults();
          results.setTypeName(d.type_name);
          auto texts = [](auto out, const std::vector<std::string>& in) {
            for (unsigned i = 0; i < out.size(); ++i) out.set(i, in[i]);
          };
          auto members = results.initMembers(static_cast<unsigned>(d.members.size()));
          for (unsigned i = 0; i < members.size(); ++i) {
            auto& m = d.members[i];
            members[i].setName(m.name);
            members[i].setKind(m.kind);
            if (!m.type.empty()) members[i].setType(m.type);
            texts(members[i].initSignatures(static_cast<unsigned>(m.signatures.size())), m.signatures);
          }
          texts(results.initSignatures(static_cast<unsigned>(d.signatures.size())), d.signatures);
        }).attach(kj::mv(slot));
  }

 private:
  RemoteError refused_write(const std::string& what) const {
    return RemoteError(ErrorKind::attribute, "cannot set " + what + " of " + std::string(builtin::type_name(object_)) +
                                                 ": it is read-only (reached from a read-only export)");
  }

  /// One line per call at trace level: the operation, its name or operator, the object's type
  /// and this handle. Checked first: with trace off a call formats and looks up nothing.
  bool tracing() const { return core_.log->should_log(spdlog::level::trace); }
  void trace(std::string_view op, std::string_view detail = {}) const { trace(op, object_, detail); }
  /// The same for the object a step runs on (a step of a chain runs on the step before's result).
  void trace(std::string_view op, const Object& self, std::string_view detail = {}) const {
    if (!tracing()) return;
    if (detail.empty()) core_.log->trace("{} on {} (handle {}, {})", op, builtin::type_name(self), fmt::ptr(this), budget_->peer);
    else core_.log->trace("{} '{}' on {} (handle {}, {})", op, detail, builtin::type_name(self), fmt::ptr(this), budget_->peer);
  }

  /// The metrics series of `op` on `self` (`name`: its member), null when metrics are off. [loop]
  CallSeries* metered(CallOp op, const Object& self, std::string_view name = {}) const {
    return core_.metrics ? core_.metrics->series(op, self, name) : nullptr;
  }
  static CallOp call_op(StepKind kind) {
    switch (kind) {
      case StepKind::attr: return CallOp::attr;
      case StepKind::call: return CallOp::call;
      case StepKind::invoke: return CallOp::invoke;
      case StepKind::item: return CallOp::item;
      case StepKind::len: return CallOp::len;
      case StepKind::binary: return CallOp::binary;
      case StepKind::unary: return CallOp::unary;
      case StepKind::slice: return CallOp::slice;
    }
    return CallOp::call;
  }

  /// One operation that makes a new object: a method of this interface, or a step of a chain.
  /// Read off the wire on the loop.
  using Step = BasicStep<Object>;

  static bool has_operands(const ReadStep<Object>& read) { return read.args != nullptr || read.operand != nullptr; }

  /// Decodes the operands of a step read off the wire (it has some), then calls `then` with them:
  /// one continuation, the step itself not moved. [loop]
  template <class Then>
  kj::PromiseForResult<Then, std::vector<Object>> with_operands(const ReadStep<Object>& read, Then then) {
    KJ_IF_MAYBE(args, read.args) { return core_.decode(*args, budget_).then(kj::mv(then)); }
    return core_.decode(KJ_ASSERT_NONNULL(read.operand), budget_).then([then = kj::mv(then)](Object object) mutable {
      std::vector<Object> objects;
      objects.push_back(std::move(object));
      return then(std::move(objects));
    });
  }

  /// The operands of a step read off the wire (it has some), decoded at once when they hold no
  /// handle: no promise, no continuation. Null when one does (with_operands resolves them). [loop]
  kj::Maybe<std::vector<Object>> operands_now(const ReadStep<Object>& read) {
    KJ_IF_MAYBE(args, read.args) { return core_.decode_now(*args, budget_); }
    KJ_IF_MAYBE(object, core_.decode_now(KJ_ASSERT_NONNULL(read.operand), budget_)) {
      std::vector<Object> objects;
      objects.push_back(std::move(*object));
      return kj::mv(objects);
    }
    return nullptr;
  }

  /// Reads the step of a Handle method, decodes its operands, runs it and answers it.
  template <class Context>
  kj::Promise<void> read_and_answer(StepKind kind, Context& context) {
    context.allowCancellation();
    CallSlot slot(core_, budget_);  // counted from here on (see CallSlot)
    auto read = read_fields<Object>(kind, context.getParams());
    if (!has_operands(read)) return answer_step(std::move(read.step), context).attach(kj::mv(slot));
    KJ_IF_MAYBE(objects, operands_now(read)) {
      read.step.operands = std::move(*objects);
      return answer_step(std::move(read.step), context).attach(kj::mv(slot));
    }
    return with_operands(read, [this, context, step = std::move(read.step)](std::vector<Object> objects) mutable {
      step.operands = std::move(objects);
      return answer_step(std::move(step), context);
    }).attach(kj::mv(slot));
  }

  /// Runs one operation of this interface on this handle's object and answers it.
  template <class Context>
  kj::Promise<void> answer_step(Step step, Context& context) {
    bool read_only = this->read_only() || core_.read_only_objects.any_of(step.operands);
    return finish(run_step(std::move(step), object_, actor_, checked(context.getParams().getFetch())), actor_, read_only, true, context);
  }

  /// Runs `step` on `self`, owned by `actor`; with `fetch`, evaluates the result too. Its name
  /// and operands move into the work. [loop]
  kj::Promise<Outcome> run_step(Step step, const Object& self, const std::shared_ptr<Actor>& actor,
                                wire::Handle::Fetch fetch) {
    // Operands that may expand far (==, argument conversion) send the work to the pool.
    bool heavy = expansive(self) || any_expansive(step.operands);
    auto* series = metered(call_op(step.kind), self, step.name);  // before the name moves into the work
    auto on = [&](auto work, std::vector<Object> touched = {}, bool blocking = false) {
      return core_.on_actor(budget_, actor, series, std::move(work), std::move(touched), blocking || heavy, fetch);
    };
    switch (step.kind) {
      case StepKind::attr:
        trace("attr", self, step.name);
        return on([self, name = std::move(step.name)](Ctx& ctx) -> Outcome { return ops::attr(ctx, self, name); });
      case StepKind::call: {
        trace("call", self, step.name);
        bool blocking = ops::blocking(self, step.name);
        auto* stats = blocking ? nullptr : core_.call_stats(method_key(self, step.name));
        blocking = blocking || core_.off_loop(stats);
        auto touched = step.operands;
        return on([core = &core_, stats, self, name = std::move(step.name), args = std::move(step.operands)](Ctx& ctx) -> Outcome {
          CallMeter meter(*core, stats, self, name);
          try {
            return with_segments(ops::call(ctx, self, name, args), *core, stats, self, name);
          } catch (...) {
            core->log_user_error(self, name, std::current_exception());
            throw;
          }
        }, std::move(touched), blocking);
      }
      case StepKind::invoke: {
        trace("invoke", self);
        bool blocking = ops::blocking(self);
        auto* stats = blocking ? nullptr : core_.call_stats(invoke_key(self));
        blocking = blocking || core_.off_loop(stats);
        auto touched = step.operands;
        return on([core = &core_, stats, self, args = std::move(step.operands)](Ctx& ctx) -> Outcome {
          CallMeter meter(*core, stats, self, "");
          try {
            return with_segments(ops::invoke(ctx, self, args), *core, stats, self, "");
          } catch (...) {
            core->log_user_error(self, {}, std::current_exception());
            throw;
          }
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
      case StepKind::slice:
        trace("slice", self);
        // On the pool: a slice may copy up to the expansion budget, or run user code (a
        // registered container's begin()/end(), a generator resumed up to `stop` times).
        return on([self, start = step.start, stop = step.stop](Ctx& ctx) -> Outcome { return ops::slice(ctx, self, start, stop); },
                  {}, true);
    }
    throw to_kj(RemoteError(ErrorKind::value, "unknown step"));
  }

  /// Runs the chain's steps from `i` on, the first on `self`, and answers for the last.
  /// `read_only`: `self` is (see read_only()); so is each result after it. [loop]
  kj::Promise<void> run_chain(std::shared_ptr<std::vector<Step>> chain, std::size_t i, const Object& self,
                              const std::shared_ptr<Actor>& actor, bool read_only, wire::Handle::Fetch fetch, ChainContext context) {
    read_only = read_only || core_.read_only_objects.contains(self) || core_.read_only_objects.any_of((*chain)[i].operands);
    if (i + 1 == chain->size())
      return finish(run_step(std::move((*chain)[i]), self, actor, fetch), actor, read_only, context.getParams().getKeep(), context);
    return run_step(std::move((*chain)[i]), self, actor, wire::Handle::Fetch::NONE)
        .then([this, chain, i, actor, read_only, fetch, context](Outcome o) mutable {
          // The result in between gets no handle, but an owner as if it had one: the next step
          // runs there.
          bool fresh = std::holds_alternative<FreshObject>(o);
          Object next = fresh ? std::get<FreshObject>(std::move(o)).object : take<Object>(o);
          // A handle to a peer's object: the rest of the chain runs where that object lives.
          if (next.is(builtin::remote_type())) return forward_chain(next, i + 1, fetch, context);
          auto owner = core_.owner_for(next, actor, fresh);
          return run_chain(chain, i + 1, next, owner, read_only, fetch, context);
        });
  }

  /// Sends the chain's steps from `from` on to the peer's object `remote` (a builtin::remote),
  /// as the same call: its answer is this one's. [loop]
  kj::Promise<void> forward_chain(const Object& remote, std::size_t from, wire::Handle::Fetch fetch, ChainContext context) {
    auto cap = core_.remote_cap(builtin::remote_handle(remote));
    auto params = context.getParams();
    auto steps = params.getSteps();
    auto request = cap.chainRequest();
    auto out = request.initSteps(steps.size() - static_cast<unsigned>(from));
    for (unsigned j = 0; j < out.size(); ++j) out.setWithCaveats(j, steps[static_cast<unsigned>(from) + j]);
    request.setFetch(fetch);
    request.setKeep(params.getKeep());
    return context.tailCall(kj::mv(request));
  }

  /// Answers an operation whose result is a new object: its handle (unless `keep` is false: a
  /// chain whose caller wants only the evaluation), and what `fetch` asked for. `read_only`: the
  /// result was reached through a read-only handle or operand, and so are its handles.
  template <class Context>
  kj::Promise<void> finish(kj::Promise<Outcome> outcome, const std::shared_ptr<Actor>& actor, bool read_only, bool keep,
                           Context& context) {
    return outcome.then([this, actor, read_only, keep, context](Outcome o) mutable -> kj::Promise<void> {
      auto results = context.getResults(small_results);  // more segments come if a value needs them
      if (auto* fresh = std::get_if<FreshObject>(&o)) {
        if (keep) results.setResult(core_.wrap(fresh->object, nullptr, budget_, true, read_only));
      } else if (auto* f = std::get_if<Fetched>(&o); f && f->object.is(builtin::remote_type()) &&
                                                          !std::holds_alternative<Plain>(f->value)) {
        // str() or truthy() of a peer's object: the peer's answer.
        auto cap = core_.remote_cap(builtin::remote_handle(f->object));
        if (keep) results.setResult(cap);
        if (std::holds_alternative<std::string>(f->value)) {
          return cap.strRequest().send().then([context](auto response) mutable {
            context.getResults().setText(response.getText());
          });
        }
        return cap.truthyRequest().send().then([context](auto response) mutable {
          context.getResults().setTruth(response.getValue());
        });
      } else if (auto* f = std::get_if<Fetched>(&o)) {
        // Objects inside the value belong to the result's actor (a new one for a fresh result).
        auto owner = f->fresh ? std::make_shared<Actor>(core_.pool) : actor;
        if (keep) results.setResult(core_.wrap(f->object, owner, budget_, false, read_only));
        if (auto* plain = std::get_if<Plain>(&f->value)) core_.encode(results.initValue(), *plain, owner, budget_, read_only);
        else if (auto* text = std::get_if<std::string>(&f->value)) results.setText(*text);
        else results.setTruth(std::get<bool>(f->value));
      } else if (keep) {
        results.setResult(core_.wrap(take<Object>(o), actor, budget_, false, read_only));
      }
      return kj::READY_NOW;
    });
  }

  ServerCore& core_;
  Object object_;
  std::shared_ptr<Actor> actor_;
  std::shared_ptr<Budget> budget_;
  const bool read_only_;
};

/// The receiving end of one stream (Handle.openStream): each write runs the sink's method on
/// its actor, as a call would. Cap'n Proto dispatches a `-> stream` method one call at a time and,
/// once one throws, fails every later call on the capability with the same error; `failed_`
/// holds to that on the actor too (a write already handed to the actor when the one before it
/// fails runs nothing).
///
/// Lives on the loop, held by the writer's capability; holds the core by reference, as
/// HandleServer does. The bytes of writes it holds are bounded by the writer's window, and
/// against a writer that ignores it by ServerOptions::max_inflight_call_bytes (Cap'n Proto's flow
/// limit: past it the connection is not read) and max_calls_per_connection.
class StreamServer final : public wire::Stream::Server {
 public:
  /// Counted as a live handle of the connection while it lives (max_handles_per_connection): a
  /// client cannot open streams without bound.
  StreamServer(ServerCore& core, Object object, std::shared_ptr<Actor> actor, std::shared_ptr<Budget> budget, std::string method)
      : core_(core), object_(std::move(object)), actor_(std::move(actor)), budget_(std::move(budget)), method_(std::move(method)) {
    core_.live_handles.fetch_add(1, std::memory_order_relaxed);
    ++budget_->handles;
  }
  ~StreamServer() {
    core_.live_handles.fetch_sub(1, std::memory_order_relaxed);
    --budget_->handles;
  }

 protected:
  kj::Promise<void> write(WriteContext context) override {
    CallSlot slot(core_, budget_);  // counted from here on (see CallSlot)
    auto args = context.getParams().getArgs();
    if (zero_sized_elements(args)) throw to_kj(zero_sized_error(args.size()));
    KJ_IF_MAYBE(objects, core_.decode_now(args, budget_)) { return run(method_, std::move(*objects)).attach(kj::mv(slot)); }
    return core_.decode(args, budget_).then([this](std::vector<Object> objects) { return run(method_, std::move(objects)); })
        .attach(kj::mv(slot));
  }

  kj::Promise<void> end(EndContext context) override {
    CallSlot slot(core_, budget_);
    auto method = text(context.getParams().getMethod());
    if (method.empty()) return kj::READY_NOW;
    return run(method, {}).attach(kj::mv(slot));
  }

  kj::Promise<void> fail(FailContext context) override {
    CallSlot slot(core_, budget_);
    auto params = context.getParams();
    auto method = text(params.getMethod());
    if (method.empty()) return kj::READY_NOW;
    std::vector<Object> args{builtin::box(text(params.getKind())), builtin::box(text(params.getMessage()))};
    return run(method, std::move(args)).attach(kj::mv(slot));
  }

 private:
  /// Calls the sink's method `name` with `args` on its actor; the result is dropped. [loop]
  kj::Promise<void> run(const std::string& name, std::vector<Object> args) {
    if (core_.log->should_log(spdlog::level::trace))
      core_.log->trace("stream '{}' on {} ({})", name, builtin::type_name(object_), budget_->peer);
    bool blocking = ops::blocking(object_, name);
    auto* stats = blocking ? nullptr : core_.call_stats(method_key(object_, name));
    blocking = blocking || core_.off_loop(stats) || expansive(object_) || any_expansive(args);
    auto* series = core_.metrics ? core_.metrics->series(CallOp::call, object_, name) : nullptr;
    auto touched = args;
    return core_.on_actor(budget_, actor_, series, [core = &core_, stats, failed = failed_, self = object_, name, args = std::move(args)](Ctx& ctx) -> Outcome {
      if (failed->load()) throw RemoteError(ErrorKind::cancelled, "an earlier write to this stream failed");
      CallMeter meter(*core, stats, self, name);
      try {
        return ops::call(ctx, self, name, args);
      } catch (...) {
        failed->store(true);
        core->log_user_error(self, name, std::current_exception());
        throw;
      }
    }, std::move(touched), blocking).then([](Outcome) {}, [failed = failed_](kj::Exception&& e) {
      failed->store(true);
      kj::throwFatalException(kj::mv(e));
    });
  }

  ServerCore& core_;
  Object object_;
  std::shared_ptr<Actor> actor_;
  std::shared_ptr<Budget> budget_;
  const std::string method_;
  const std::shared_ptr<std::atomic<bool>> failed_ = std::make_shared<std::atomic<bool>>(false);
};

kj::Promise<void> HandleServer::openStream(OpenStreamContext context) {
  auto method = text(context.getParams().getMethod());
  trace("open stream", method);
  if (method.empty()) throw to_kj(RemoteError(ErrorKind::attribute, "a stream needs a method name"));
  if (budget_->handles >= core_.options.max_handles_per_connection) {
    if (core_.metrics) core_.metrics->breach(Limit::max_handles_per_connection);
    throw to_kj(RemoteError(ErrorKind::overloaded, "too many live handles on this connection, open streams included (limit " +
                                                       std::to_string(core_.options.max_handles_per_connection) + ")"));
  }
  context.getResults().setStream(kj::heap<StreamServer>(core_, object_, actor_, budget_, std::move(method)));
  return kj::READY_NOW;
}

wire::Handle::Client ServerCore::wrap(const Object& object, const std::shared_ptr<Actor>& actor,
                                      const std::shared_ptr<Budget>& budget, bool fresh, bool read_only) {
  if (object.is(builtin::remote_type())) return remote_cap(builtin::remote_handle(object));
  if (budget->handles >= options.max_handles_per_connection) {
    if (metrics) metrics->breach(Limit::max_handles_per_connection);
    throw to_kj(RemoteError(ErrorKind::overloaded, "too many live handles on this connection (limit " +
                                                       std::to_string(options.max_handles_per_connection) + ")"));
  }
  return kj().caps.add(kj::heap<HandleServer>(*this, object, owner_for(object, actor, fresh), budget, read_only));
}

wire::Handle::Client ServerCore::remote_cap(const Handle& handle) {
  auto& state = access::state(handle);
  if (!state) throw to_kj(RemoteError(ErrorKind::disconnected, "empty handle"));
  auto& peer = *state->connection;
  if (!peer.open()) throw to_kj(RemoteError(ErrorKind::disconnected, "the peer's connection is closed"));
  // Cap'n Proto passes a capability on over any connection of the same loop (calls on it then
  // go through this server to the peer). A handle of another loop (another network thread's
  // connection, a Client this server's code made) would need a relay.
  if (!peer.hosted() || peer.loop() != here().loop)
    throw to_kj(RemoteError(ErrorKind::type, "a handle from another network thread or client connection cannot be sent "
                                             "on this connection"));
  try {
    return peer.cap(state->id);
  } catch (const RemoteError& e) {
    throw to_kj(e);
  }
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

namespace {
/// The brand of the clients Cap'n Proto makes for a server of this process (its LocalClient's,
/// which capnp does not export): learnt once from a client made for a server that is never called.
const void* local_brand() {
  struct Probe final : capnp::Capability::Server {
    DispatchCallResult dispatchCall(uint64_t interface_id, uint16_t method_id,
                                    capnp::CallContext<capnp::AnyPointer, capnp::AnyPointer>) override {
      return internalUnimplemented("remoteable probe", interface_id, method_id);
    }
  };
  static const void* const brand = capnp::ClientHook::from(capnp::Capability::Client(kj::heap<Probe>()))->getBrand();
  return brand;
}
}  // namespace

kj::Maybe<Object> ServerCore::unwrap_now(wire::Handle::Client& cap, const std::shared_ptr<Budget>& budget) {
  capnp::Capability::Client copy(cap);
  auto own = capnp::ClientHook::from(kj::mv(copy));
  capnp::ClientHook* hook = own.get();
  while (true) {
    KJ_IF_MAYBE(resolved, hook->getResolved()) {
      hook = resolved;
    } else {
      break;
    }
  }
  // A promise may still resolve to one of ours, and one of ours is looked up (and may wait for
  // its streaming calls) by getLocalServer: both are left to unwrap(). A settled capability of
  // any other brand is an import, a broken or a null capability: never this server's.
  if (hook->getBrand() == local_brand() || hook->whenMoreResolved() != nullptr) return nullptr;
  return peer_object(kj::mv(cap), budget);
}

Object ServerCore::peer_object(wire::Handle::Client cap, const std::shared_ptr<Budget>& budget) {
  // The peer's own object, or one it was given by someone else (another server's): server code
  // calls it through a Handle, on this connection.
  if (!budget->peer_handles) {
    ClientOptions peer_options;
    peer_options.max_nesting = options.max_nesting;
    peer_options.push_window = options.push_window;
    budget->peer_handles = std::make_shared<PeerConnection>(here().loop, std::move(peer_options), log, peer_handles);
  }
  auto& peer = *budget->peer_handles;
  if (!peer.open()) throw to_kj(RemoteError(ErrorKind::disconnected, "the connection is closing"));
  if (peer.live_caps() >= options.max_remote_handles_per_connection) {
    if (metrics) metrics->breach(Limit::max_remote_handles_per_connection);
    throw to_kj(RemoteError(ErrorKind::overloaded, "too many handles to this peer's objects held by the server (limit " +
                                                       std::to_string(options.max_remote_handles_per_connection) + ")"));
  }
  auto state = peer.new_handle();
  peer.set_cap(state->id, kj::mv(cap));
  return builtin::remote(access::handle(std::move(state)));
}

kj::Promise<std::pair<Object, std::shared_ptr<Actor>>> ServerCore::unwrap(wire::Handle::Client cap,
                                                                         const std::shared_ptr<Budget>& budget) {
  KJ_IF_MAYBE(object, unwrap_now(cap, budget)) {
    return std::pair<Object, std::shared_ptr<Actor>>{kj::mv(*object), nullptr};
  }
  return look_up(kj::mv(cap), budget);
}

kj::Promise<std::pair<Object, std::shared_ptr<Actor>>> ServerCore::look_up(wire::Handle::Client cap,
                                                                          const std::shared_ptr<Budget>& budget) {
  auto promise = kj().caps.getLocalServer(cap);
  return promise.then([this, cap = kj::mv(cap), budget](kj::Maybe<wire::Handle::Server&> server) mutable
                      -> std::pair<Object, std::shared_ptr<Actor>> {
    KJ_IF_MAYBE(s, server) {
      auto& h = static_cast<HandleServer&>(*s);
      // Back through a read-only handle: wherever the object goes now (into a value, an
      // argument, an attached name), it stays read-only.
      if (h.read_only()) read_only_objects.add(h.object());
      return {h.object(), h.actor()};
    }
    return {peer_object(kj::mv(cap), budget), nullptr};
  });
}

}  // namespace remoteable::detail
