#pragma once
// The seed walkthrough's tree-building class, and its registration.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <remoteable/remoteable.hpp>

namespace example {

struct Node : std::enable_shared_from_this<Node> {
  explicit Node(std::int64_t v) : value(v) {}

  // Clients build trees one add_child at a time, so a chain may be any depth: destroying it by
  // the default recursion (~Node → children → ~Node ...) would overflow the stack. Instead the
  // outermost ~Node on a thread drains its descendants from a list, and each nested ~Node only
  // hands its children to that list, so the stack never holds more than two ~Node frames.
  // Only nodes whose last owner let go are taken apart, so shared subtrees stay intact.
  ~Node() {
    thread_local std::vector<std::shared_ptr<Node>>* pending = nullptr;
    if (pending) {  // inside the outermost ~Node of this thread: let it release them
      for (auto& c : children) pending->push_back(std::move(c));
      return;
    }
    std::vector<std::shared_ptr<Node>> list = std::move(children);
    pending = &list;
    while (!list.empty()) {
      std::shared_ptr<Node> last = std::move(list.back());
      list.pop_back();
      last.reset();  // if it was the last owner, that ~Node appends its children to `list`
    }
    pending = nullptr;
  }

  std::int64_t value;
  std::weak_ptr<Node> parent;
  std::vector<std::shared_ptr<Node>> children;

  std::shared_ptr<Node> child(std::int64_t index) const {
    if (index < 0 || index >= static_cast<std::int64_t>(children.size()))
      throw std::out_of_range("child index " + std::to_string(index) + " out of range (" +
                              std::to_string(children.size()) + " children)");
    return children[static_cast<std::size_t>(index)];
  }

  /// Makes `node` the last child of this node, taking it from its old parent. Throws
  /// std::invalid_argument (a `value` error for clients) for a node that would become its own
  /// ancestor: this node itself or one of its ancestors (the walk up is iterative).
  void add_child(std::shared_ptr<Node> node) {
    if (!node) throw std::invalid_argument("add_child: the node is none");
    if (node.get() == this) throw std::invalid_argument("add_child: a node cannot be its own child");
    for (auto a = parent.lock(); a; a = a->parent.lock())
      if (a == node) throw std::invalid_argument("add_child: the node is an ancestor of this one and would become its own ancestor");
    if (auto old = node->parent.lock()) old->remove_child(node);
    node->parent = weak_from_this();
    children.push_back(std::move(node));
  }

  void remove_child(const std::shared_ptr<Node>& node) {
    auto it = std::find(children.begin(), children.end(), node);
    if (it == children.end()) throw std::invalid_argument("not a child of this node");
    (*it)->parent.reset();
    children.erase(it);
  }

  std::int64_t child_count() const { return static_cast<std::int64_t>(children.size()); }
};

inline void register_node(remoteable::Registry& types) {
  types.class_<Node>("Node")
      .constructor<std::int64_t>()
      .field("value", &Node::value)
      .method("child", &Node::child)
      .method("add_child", &Node::add_child)
      .method("remove_child", &Node::remove_child)
      .method("child_count", &Node::child_count);
}

/// The walkthrough's exports: root (1) with child (2), the Node class, and five.
inline void export_walkthrough(remoteable::Server& server) {
  auto root = std::make_shared<Node>(1);
  auto child = std::make_shared<Node>(2);
  root->add_child(child);
  server.export_object(root, "root");
  server.export_object(child, "child", remoteable::same_actor_as{"root"});
  server.export_class<Node>("Node");
  server.export_value(std::int64_t{5}, "five");
}

}  // namespace example
