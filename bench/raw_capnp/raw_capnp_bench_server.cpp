// raw_capnp_bench_server PORT: the object model of bench.capnp served by capnp::EzRpcServer on
// one thread. Prints "READY <port>" once listening.

#include <capnp/ez-rpc.h>
#include <kj/debug.h>
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

 private:
  Node::Client root_ = kj::heap<NodeImpl>(38);
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
