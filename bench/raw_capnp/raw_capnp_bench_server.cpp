// raw_capnp_bench_server PORT: the object model of bench.capnp served by capnp::EzRpcServer on
// one thread, W7/W8's calls back to the client's Sink, and STREAM's ByteSink. Prints "READY <port>" once listening.

#include <capnp/ez-rpc.h>
#include <kj/debug.h>
#include <algorithm>
#include <iostream>
#include <map>

#include "bench.capnp.h"
#include "bench_common.hpp"

namespace {

/// A node. Owned by the capabilities that point at it: its parent keeps it (children are kept,
/// so child(i) returns the same object each time) and so may any client.
class NodeImpl final : public Node::Server {
 public:
  explicit NodeImpl(std::int64_t value) : value_(value) {}

 protected:
  kj::Promise<void> child(ChildContext context) override {
    auto i = context.getParams().getI();
    auto it = children_.find(i);
    if (it == children_.end())
      it = children_.emplace(i, Node::Client(kj::heap<NodeImpl>(value_ + i))).first;
    context.getResults().setNode(it->second);
    return kj::READY_NOW;
  }

  kj::Promise<void> getAttr(GetAttrContext context) override {
    auto name = context.getParams().getName();
    KJ_REQUIRE(name == "value", "no such attribute", name);
    context.getResults().setValue(value_);
    return kj::READY_NOW;
  }

 private:
  std::int64_t value_;
  std::map<std::int64_t, Node::Client> children_;
};

/// The pushes of one publish (W8): `window` lanes, each sending the next event when its last
/// one is answered, so that at most `window` are unanswered. Events are sent in index order
/// (each lane takes `next` when it sends) on one capability, which Cap'n Proto delivers in order.
struct Push {
  Push(Sink::Client s, std::int64_t count) : sink(kj::mv(s)), n(count) {}
  Sink::Client sink;
  std::int64_t n;
  std::int64_t next = 0;
};

/// The raw server's push window: the same bound as remoteable's ServerOptions::push_window.
constexpr std::int64_t push_window = 1000;

kj::Promise<void> push_lane(Push& push) {
  if (push.next >= push.n) return kj::READY_NOW;
  auto request = push.sink.onEventRequest();
  request.setI(push.next++);
  return request.send().then([&push](capnp::Response<Sink::OnEventResults>&&) { return push_lane(push); });
}

/// STREAM's sink: counts the bytes written to it.
class ByteSinkImpl final : public ByteSink::Server {
 protected:
  kj::Promise<void> write(WriteContext context) override {
    received_ += context.getParams().getData().size();
    return kj::READY_NOW;
  }
  kj::Promise<void> take(TakeContext context) override {
    context.getResults().setBytes(received_);
    received_ = 0;
    return kj::READY_NOW;
  }

 private:
  std::uint64_t received_ = 0;
};

class BenchImpl final : public Bench::Server {
 protected:
  kj::Promise<void> root(RootContext context) override {
    context.getResults().setNode(root_);
    return kj::READY_NOW;
  }

  kj::Promise<void> add(AddContext context) override {
    auto params = context.getParams();
    context.getResults().setSum(params.getA() + params.getB());
    return kj::READY_NOW;
  }

  kj::Promise<void> ask(AskContext context) override {
    auto params = context.getParams();
    auto request = params.getSink().tripleRequest();
    request.setX(params.getX());
    return request.send().then([context](capnp::Response<Sink::TripleResults>&& r) mutable {
      context.getResults().setY(r.getY());
    });
  }

  kj::Promise<void> publish(PublishContext context) override {
    auto params = context.getParams();
    auto push = kj::heap<Push>(params.getSink(), params.getN());
    const auto lanes = std::min(push_window, push->n);
    auto sending = kj::heapArrayBuilder<kj::Promise<void>>(static_cast<std::size_t>(std::max<std::int64_t>(lanes, 0)));
    for (std::int64_t k = 0; k < lanes; ++k) sending.add(push_lane(*push));
    return kj::joinPromises(sending.finish()).then([context, push = kj::mv(push)]() mutable {
      return push->sink.countRequest().send().then([context](capnp::Response<Sink::CountResults>&& r) mutable {
        context.getResults().setCount(r.getN());
      });
    });
  }

 private:
  kj::Promise<void> byteSink(ByteSinkContext context) override {
    context.getResults().setSink(sink_);
    return kj::READY_NOW;
  }

  Node::Client root_ = kj::heap<NodeImpl>(38);
  ByteSink::Client sink_ = kj::heap<ByteSinkImpl>();
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) bench::fail("usage: raw_capnp_bench_server PORT");
  auto port = static_cast<unsigned>(std::stoi(argv[1]));
  capnp::EzRpcServer server(kj::heap<BenchImpl>(), "127.0.0.1", port);
  auto& wait_scope = server.getWaitScope();
  std::cout << "READY " << server.getPort().wait(wait_scope) << std::endl;
  kj::NEVER_DONE.wait(wait_scope);
}
