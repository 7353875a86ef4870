// Nulls only where the binding allows them (issue 8 item 5): none reaches user code through a
// T* or std::optional<...> parameter, never through std::shared_ptr<T>, T&, const T& or T, in
// methods, coroutine methods, constructors, free functions, field and property setters and
// set_item. And the walkthrough's Node: add_child refuses none and a node that would become its
// own ancestor, and a chain of any depth is destroyed without recursion.

#include <atomic>
#include <utility>

#include "support.hpp"

using remoteable::ErrorKind;

namespace {

struct Probe {
  std::int64_t v = 7;
};

// How many nulls reached user code that does not expect one; each test checks it stays 0.
std::atomic<int> nulls_seen{0};
template <class P>
bool is_null(const P& p) {
  if (p) return false;
  ++nulls_seen;
  return true;
}

struct Holder {
  std::shared_ptr<Probe> shared = std::make_shared<Probe>();
  std::optional<std::shared_ptr<Probe>> maybe;

  std::int64_t take_shared(std::shared_ptr<Probe> p) { return is_null(p) ? -1 : p->v; }
  std::int64_t take_const_shared(const std::shared_ptr<const Probe>& p) { return is_null(p) ? -1 : p->v; }
  std::int64_t take_ref(Probe& p) { return p.v; }
  std::int64_t take_cref(const Probe& p) { return p.v; }
  std::int64_t take_value(Probe p) { return p.v; }
  std::int64_t take_ptr(const Probe* p) { return p ? p->v : 0; }
  std::int64_t take_optional(std::optional<std::shared_ptr<Probe>> p) {
    if (!p) return 0;
    return is_null(*p) ? -1 : (*p)->v;
  }
  asio::awaitable<std::int64_t> take_shared_later(std::shared_ptr<Probe> p) {
    if (is_null(p)) co_return -1;
    co_return p->v;
  }
  asio::awaitable<std::int64_t> take_optional_later(std::optional<std::shared_ptr<Probe>> p) {
    co_return p ? (*p)->v : 0;
  }

  std::shared_ptr<Probe> get_shared() const { return shared; }
  void set_shared(std::shared_ptr<Probe> p) {
    if (!is_null(p)) shared = std::move(p);
  }
};

/// Items that are shared_ptrs: set_item must not store none in one.
struct Slots {
  std::vector<std::shared_ptr<Probe>> items{std::make_shared<Probe>(), std::make_shared<Probe>()};
  std::shared_ptr<Probe>& operator[](std::int64_t i) { return items[static_cast<std::size_t>(i)]; }
  std::size_t size() const { return items.size(); }
};

/// A class whose constructor takes a shared_ptr.
struct Pair {
  explicit Pair(std::shared_ptr<Probe> p) : probe(std::move(p)) { (void)is_null(probe); }
  std::shared_ptr<Probe> probe;
};

std::int64_t shared_fn(std::shared_ptr<Probe> p) { return is_null(p) ? -1 : p->v; }

struct NullsFixture {
  NullsFixture() {
    nulls_seen = 0;
    types.class_<Probe>("Probe").field("v", &Probe::v);
    types.class_<Holder>("Holder")
        .field("shared", &Holder::shared)
        .field("maybe", &Holder::maybe)
        .property("prop", &Holder::get_shared, &Holder::set_shared)
        .method("take_shared", &Holder::take_shared)
        .method("take_const_shared", &Holder::take_const_shared)
        .method("take_ref", &Holder::take_ref)
        .method("take_cref", &Holder::take_cref)
        .method("take_value", &Holder::take_value)
        .method("take_ptr", &Holder::take_ptr)
        .method("take_optional", &Holder::take_optional)
        .method("take_shared_later", &Holder::take_shared_later)
        .method("take_optional_later", &Holder::take_optional_later);
    types.class_<Slots>("Slots");
    types.class_<Pair>("Pair").constructor<std::shared_ptr<Probe>>();
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types);
    server->server().export_object(holder, "holder");
    server->server().export_object(std::make_shared<Probe>(), "probe", remoteable::same_actor_as{"holder"});
    server->server().export_object(slots, "slots");
    server->server().export_class<Pair>("Pair");
    server->server().export_function("shared_fn", &shared_fn);
    client.emplace(test::connect(context, {"127.0.0.1", server->port()}));
  }
  ~NullsFixture() {
    client->close();
    context.restart();
    context.poll();
  }
  template <class T> T run(asio::awaitable<T> aw) { return test::await(context, std::move(aw)); }
  template <class T> ErrorKind error_of(asio::awaitable<T> aw) { return test::error_of(context, std::move(aw)); }
  template <class T> std::string message_of(asio::awaitable<T> aw) { return test::message_of(context, std::move(aw)); }

  remoteable::Registry types;
  std::shared_ptr<Holder> holder = std::make_shared<Holder>();
  std::shared_ptr<Slots> slots = std::make_shared<Slots>();
  std::optional<remoteable::ThreadedServer> server;
  asio::io_context context;
  std::optional<remoteable::Client> client;
};

const remoteable::None none{};

}  // namespace

TEST_CASE("shared_ptr, reference and by-value parameters refuse none with a type error; T* and optional take it") {
  NullsFixture t;
  auto h = t.client->fetch("holder");
  for (const char* method : {"take_shared", "take_const_shared", "take_ref", "take_cref", "take_value"}) {
    INFO(method);
    CHECK(t.error_of(h.call(method, none).get()) == ErrorKind::type);
    CHECK(t.run(h.call(method, t.client->fetch("probe")).as<std::int64_t>()) == 7);
  }
  // The message says what is accepted: the class, without "or none".
  auto message = t.message_of(h.call("take_shared", none).get());
  CHECK_THAT(message, Catch::Contains("'Holder.take_shared'") && Catch::Contains("(Probe)") &&
                          Catch::Contains("got (none)") && !Catch::Contains("or none"));

  // T* and std::optional parameters take none, and say so in their signature.
  auto probe = t.client->fetch("probe");
  CHECK(t.run(h.call("take_ptr", none).as<std::int64_t>()) == 0);
  CHECK(t.run(h.call("take_ptr", probe).as<std::int64_t>()) == 7);
  CHECK(t.run(h.call("take_optional", none).as<std::int64_t>()) == 0);
  CHECK(t.run(h.call("take_optional", probe).as<std::int64_t>()) == 7);
  CHECK(t.run(h.call("take_optional_later", none).as<std::int64_t>()) == 0);
  CHECK(t.run(h.call("take_optional_later", probe).as<std::int64_t>()) == 7);
  CHECK_THAT(t.message_of(h.call("take_ptr", 1).get()), Catch::Contains("(Probe or none)") && Catch::Contains("got (int64)"));
  CHECK_THAT(t.message_of(h.call("take_optional", 1).get()), Catch::Contains("(Probe or none)"));
  CHECK(nulls_seen == 0);
}

TEST_CASE("a coroutine method, a constructor and a free function taking a shared_ptr refuse none") {
  NullsFixture t;
  CHECK(t.error_of(t.client->fetch("holder").call("take_shared_later", none).get()) == ErrorKind::type);
  CHECK(t.run(t.client->fetch("holder").call("take_shared_later", t.client->fetch("probe")).as<std::int64_t>()) == 7);
  CHECK(t.error_of(t.client->fetch("Pair")(none).get()) == ErrorKind::type);
  CHECK_THAT(t.message_of(t.client->fetch("Pair")(none).get()), Catch::Contains("(Probe)"));
  CHECK(t.error_of(t.client->fetch("shared_fn")(none).get()) == ErrorKind::type);
  CHECK(t.run(t.client->fetch("shared_fn")(t.client->fetch("probe")).as<std::int64_t>()) == 7);
  CHECK(nulls_seen == 0);
}

TEST_CASE("a shared_ptr field, property or item cannot be set to none; an optional one can") {
  NullsFixture t;
  auto h = t.client->fetch("holder");
  CHECK(t.error_of(h.set("shared", none)) == ErrorKind::type);
  CHECK_THAT(t.message_of(h.set("shared", none)), Catch::Contains("'Holder.shared' expects Probe, got none"));
  CHECK(t.holder->shared != nullptr);
  CHECK(t.run(h.attr("shared").attr("v").as<std::int64_t>()) == 7);

  CHECK(t.error_of(h.set("prop", none)) == ErrorKind::type);
  CHECK(t.holder->shared != nullptr);

  auto s = t.client->fetch("slots");
  CHECK(t.error_of(s.set_item(0, none)) == ErrorKind::type);
  CHECK_THAT(t.message_of(s.set_item(1, none)), Catch::Contains("expect Probe, got none"));
  CHECK(t.slots->items[0] != nullptr);
  CHECK(t.slots->items[1] != nullptr);
  t.run(s.set_item(0, t.client->fetch("probe")));
  CHECK(t.run(s.item(0).attr("v").as<std::int64_t>()) == 7);

  // std::optional<std::shared_ptr<T>> is the binding's way to say "an object or nothing".
  t.run(h.set("maybe", t.client->fetch("probe")));
  CHECK(t.run(h.attr("maybe").attr("v").as<std::int64_t>()) == 7);
  t.run(h.set("maybe", none));
  CHECK(t.run(h.attr("maybe").get()).kind() == remoteable::ValueKind::none);
  CHECK(nulls_seen == 0);
}

// ---- the walkthrough's Node ---------------------------------------------------------------------

TEST_CASE("walkthrough: add_child refuses none and ancestors over the wire, and the server keeps serving") {
  test::Connected t;
  auto root = t.client.fetch("root");
  auto child = t.client.fetch("child");
  // The reported crash: `remoteable HOST:PORT eval 'root.add_child(none)'`.
  CHECK(test::error_of(t.context, root.call("add_child", none).get()) == ErrorKind::type);
  CHECK(test::error_of(t.context, root.call("remove_child", none).get()) == ErrorKind::type);
  // Itself, its parent, and an ancestor two levels up.
  CHECK(test::error_of(t.context, root.call("add_child", root).get()) == ErrorKind::value);
  CHECK(test::error_of(t.context, child.call("add_child", root).get()) == ErrorKind::value);
  auto grandchild = t.client.fetch("Node")(3);
  t.run(child.call("add_child", grandchild).get());
  CHECK(test::error_of(t.context, grandchild.call("add_child", root).get()) == ErrorKind::value);
  CHECK(test::error_of(t.context, grandchild.call("add_child", child).get()) == ErrorKind::value);
  // The tree is unchanged by the refusals: root → child → grandchild.
  CHECK(t.run(root.call("child_count").as<std::int64_t>()) == 1);
  CHECK(t.run(root.call("child", 0).attr("value").as<std::int64_t>()) == 2);
  CHECK(t.run(child.call("child", 0).attr("value").as<std::int64_t>()) == 3);
  // Moving a node under a sibling's subtree (not an ancestor) still works.
  auto other = t.client.fetch("Node")(4);
  t.run(root.call("add_child", other).get());
  t.run(other.call("add_child", grandchild).get());
  CHECK(t.run(child.call("child_count").as<std::int64_t>()) == 0);
  CHECK(t.run(other.call("child", 0).attr("value").as<std::int64_t>()) == 3);

  // Another client is served.
  asio::io_context other_context;
  auto second = test::connect(other_context, t.endpoint());
  CHECK(test::await(other_context, second.fetch("root").call("child", 0).attr("value").as<std::int64_t>()) == 2);
  second.close();
}

TEST_CASE("walkthrough: a chain of 300,000 nodes is destroyed without recursion") {
  constexpr int depth = 300'000;  // recursive destruction overflows an 8 MiB stack well before this
  std::weak_ptr<example::Node> bottom;
  std::shared_ptr<example::Node> shared_middle;
  {
    auto top = std::make_shared<example::Node>(0);
    bottom = top;
    for (int i = 1; i < depth; ++i) {
      auto n = std::make_shared<example::Node>(i);
      n->add_child(std::move(top));  // n has no parent, so add_child's ancestor walk is one step
      top = std::move(n);
      if (i == depth / 2) shared_middle = top;
    }
    CHECK(top->value == depth - 1);
  }  // the upper half goes here
  // A subtree someone else still owns is left whole.
  REQUIRE(shared_middle);
  CHECK(shared_middle->child_count() == 1);
  CHECK_FALSE(bottom.expired());
  CHECK(shared_middle->parent.expired());
  shared_middle.reset();  // and now the lower half
  CHECK(bottom.expired());
}

TEST_CASE("walkthrough: a deep chain hanging from an export is destroyed with the server") {
  constexpr int depth = 300'000;
  std::weak_ptr<example::Node> bottom;
  {
    remoteable::Registry types;
    example::register_node(types);
    remoteable::ThreadedServer server{remoteable::Endpoint{"127.0.0.1", 0}, types};
    example::export_walkthrough(server.server());
    // Built in-process below a node that only the server holds, as a client would over many calls.
    auto top = std::make_shared<example::Node>(0);
    bottom = top;
    for (int i = 1; i < depth; ++i) {
      auto n = std::make_shared<example::Node>(i);
      n->add_child(std::move(top));
      top = std::move(n);
    }
    server->export_object(std::move(top), "deep");
    asio::io_context context;
    auto client = test::connect(context, {"127.0.0.1", server.port()});
    CHECK(test::await(context, client.fetch("deep").attr("value").as<std::int64_t>()) == depth - 1);
    client.close();
    context.restart();
    context.poll();
  }
  CHECK(bottom.expired());
}
