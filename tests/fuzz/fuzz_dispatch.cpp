// libFuzzer target: sequences of valid calls, not bytes. The byte-level target (fuzz_server.cpp)
// mostly exercises the decoder; this one decodes the fuzzer's bytes into a program of Registry
// and Handle calls, with values from a small grammar, and runs it against the server through
// the generated Cap'n Proto client, so that it reaches dispatch, conversion, the operators, the
// stored values and their walks.
//
// The input format (every byte string decodes to some program; see `Decoder`):
//   program := op*                        at most kMaxOps top-level ops
//   op      := code:u8 operands           code % 22 picks the call, see `Code`
//   repeat  := count:u16 length:u8 op*    runs the next 1 + length % 4 ops 1 + count % 1024 times
//                                         (how a short input builds a value thousands deep)
//   value   := tag:u8 ...                 none, bool, int, float, text, bytes, list, map,
//                                         handle (an earlier result), nest (n one-element lists)
// A handle is named relative to the newest result (0: the newest), so a repeated body refers
// to what its previous run made: `repeat 1000 { store([[...[result 0]...]]) }` nests 1000 deep
// across stores, `repeat 30 { store([result 0, result 0]) }` shares.
//
// Per input: a fresh in-process server (so inputs are independent and reproducible, and the
// leak check sees everything freed), a client connection that sends the whole program
// pipelined (with `sync` ops waiting for the answers so far), then checks:
//   * another client, connected before the program ran, gets an answer within kStallBound while
//     the program's calls are in flight (no call stalls the server for everybody);
//   * every call of the program is answered within REMOTEABLE_FUZZ_ANSWER_SECONDS (default 20);
//   * after the program's connection closes, a fresh client gets a real answer and the server
//     is back to zero connections;
//   * the process's RSS stays under REMOTEABLE_FUZZ_RSS_MB (default 2048; also -rss_limit_mb).
// A stack overflow in the server (a walk as deep as the client made it) is a crash: ASan
// reports it. A failed check aborts with its reason.
//
// Environment: REMOTEABLE_FUZZ_VERBOSE=1 prints the decoded program and the outcome of each
// call; REMOTEABLE_FUZZ_MAKE_CORPUS=DIR writes the seed corpus to DIR and exits.

#include <capnp/rpc-twoparty.h>
#include <fcntl.h>
#include <kj/async-io.h>
#include <kj/timer.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "binding_types.hpp"
#include "counted.hpp"
#include "node.hpp"
#include <remoteable/remoteable.hpp>
#include "schemas/remoteable.capnp.h"
#include "test_types.hpp"

namespace w = remoteable::wire;

namespace {

// ---- bounds ------------------------------------------------------------------------------------

constexpr std::size_t kMaxOps = 64;            ///< top-level ops of one program
constexpr std::size_t kMaxCalls = 2048;        ///< calls one program sends, repeats included
constexpr int kMaxRepeat = 1024;               ///< runs of one repeat
constexpr std::size_t kMaxSlots = 64;          ///< results a program keeps (the oldest goes first)
constexpr int kMaxValueDepth = 80;             ///< value levels within one message (past the server's limit)
constexpr int kMaxValueNodes = 256;            ///< value nodes within one top-level op
constexpr auto kStallBound = 5 * kj::SECONDS;  ///< another client's answer while the program runs
constexpr auto kAliveBound = 10 * kj::SECONDS; ///< a fresh client's answer after the program

bool verbose() {
  static const bool on = std::getenv("REMOTEABLE_FUZZ_VERBOSE") != nullptr;
  return on;
}

long env_number(const char* name, long fallback) {
  const char* text = std::getenv(name);
  return text && *text ? std::strtol(text, nullptr, 10) : fallback;
}

[[noreturn]] void die(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "remoteable_fuzz_dispatch: %s%s%s\n", what, detail.empty() ? "" : ": ", detail.c_str());
  std::fflush(stderr);
  std::abort();
}

/// A hang: the server's busy thread is the evidence, not ours. Aborts the first other thread
/// of the process that is running (the sanitizer's handler prints that thread's stack and
/// exits), else this one.
[[noreturn]] void die_hung(const char* what) {
  std::fprintf(stderr, "remoteable_fuzz_dispatch: %s; the stack below is of a running server thread\n", what);
  std::fflush(stderr);
  const auto self = static_cast<pid_t>(::syscall(SYS_gettid));
  if (DIR* tasks = ::opendir("/proc/self/task")) {
    while (dirent* entry = ::readdir(tasks)) {
      pid_t tid = static_cast<pid_t>(std::atoi(entry->d_name));
      if (tid <= 0 || tid == self) continue;
      std::ifstream stat("/proc/self/task/" + std::string(entry->d_name) + "/stat");
      std::string line;
      std::getline(stat, line);
      auto close = line.rfind(')');
      if (close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'R') continue;
      ::syscall(SYS_tgkill, ::getpid(), tid, SIGABRT);
      for (int i = 0; i < 100; ++i) ::usleep(100'000);  // the handler exits the process meanwhile
    }
    ::closedir(tasks);
  }
  std::abort();
}

// ---- dictionaries --------------------------------------------------------------------------------

/// What `fetch` names: every export of the server below, the names attach uses, and bad ones.
const std::vector<std::string> kExports = {
    "root", "child", "Node", "five", "shape", "Shape", "Vec2", "Money", "Bits", "Opaque", "vec", "money",
    "bits", "opaque", "row", "frozen", "table", "path", "counter", "hypot2", "twice", "join", "Counted",
    "faulty", "list", "map", "text", "half", "a0", "a1", "a2", "a3", "nope", "", "a b.c"};
/// What attach and detach name: fresh names, taken ones, and ones no expression can reach.
const std::vector<std::string> kAttachNames = {"a0", "a1", "a2", "a3", "root", "five", "", "a b.c"};
/// Member names of every exported type (attr, setAttr, call, chain steps), and a missing one.
const std::vector<std::string> kMembers = {
    "value", "child", "add_child", "remove_child", "child_count", "x", "y", "norm2", "scaled", "cents",
    "n", "cells", "total", "name", "id", "origin", "anchor", "tags", "weights", "maybe", "blob",
    "visible", "row", "shared", "width", "height", "area", "perimeter", "title", "kind", "center",
    "origin_ref", "origin_cref", "origin_ptr", "nothing", "shared_vec", "corners", "corner_refs", "named",
    "named_shared", "maybe_center", "find_tag", "label", "bytes", "clear_tags", "sum_x", "move_to",
    "weigh", "or_default", "small", "count_points", "describe_self", "path_length", "points", "fixed",
    "fail", "twice", "greet", "get", "add", "twin", "block", "entered", "nope", ""};
/// Texts for values: keys the exported maps and tables use, separators, and the names above.
const std::vector<std::string> kTexts = {"a", "b", "k", "origin", "center", "shared", ", ", "", "x y", "text"};

constexpr std::int64_t kInts[16] = {0, 1, -1, 2, 3, 7, 31, 32, 63, 64, 1000,
                                    std::numeric_limits<std::int32_t>::max(),
                                    std::numeric_limits<std::int32_t>::min(),
                                    std::numeric_limits<std::int64_t>::max(),
                                    std::numeric_limits<std::int64_t>::min(), std::int64_t{1} << 40};
const double kFloats[16] = {0.0, -0.0, 0.5, -2.5, 1e308, -1e308, 5e-324, 3.0,
                            std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                            std::numeric_limits<double>::quiet_NaN(), 1e18, 9.3e18, -9.3e18, 2.0, 100.0};

// ---- the program ---------------------------------------------------------------------------------

/// The calls a program makes. The numbering is the input format: keep it stable (the corpus
/// depends on it), add new codes at the end.
enum Code : std::uint8_t {
  fetch, browse, store, attach, detach, attr, set_attr, call, invoke, item, set_item, len, binary,
  unary, chain, get, str, truthy, describe, drop, sync, repeat, code_count
};

struct Value {
  enum Kind : std::uint8_t { none, boolean, integer, floating, text, bytes, list, map, handle, nest, kind_count };
  Kind kind = none;
  bool b = false;
  std::int64_t i = 0;   // integer; handle: results back from the newest; nest: levels
  double f = 0;
  std::string s;        // text, bytes
  std::vector<Value> items;       // list, map: the values; nest: the one inner value
  std::vector<std::string> keys;  // map
};

struct Step {
  enum Kind : std::uint8_t { attr, call, invoke, item, len, binary, unary, kind_count };
  Kind kind = attr;
  int name = 0;           // attr, call: index into kMembers
  std::vector<Value> args;  // call, invoke
  Value operand;          // item: the key; binary: the operand
  int op = 0;             // binary, unary
  bool reflected = false;
};

struct Op {
  Code code = sync;
  int target = 0;          // the result it runs on, back from the newest
  int name = 0;            // fetch: kExports; attach, detach: kAttachNames; attr...: kMembers
  int fetch = 0;           // Handle::Fetch
  int op = 0;              // binary, unary
  bool flag = false;       // binary: reflected; chain: keep
  Value a, b;              // store: a; set_attr: a; item: a (key); set_item: a, b; binary: a
  std::vector<Value> args; // call, invoke
  std::vector<Step> steps; // chain
  int count = 0;           // repeat
  std::vector<Op> body;    // repeat
};

/// Reads the input front to back; past the end every byte reads as 0 and `done()` holds.
class Decoder {
 public:
  Decoder(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  std::vector<Op> program() {
    std::vector<Op> ops;
    while (!done() && ops.size() < kMaxOps) ops.push_back(op(true));
    return ops;
  }

 private:
  bool done() const { return at_ >= size_; }
  std::uint8_t u8() { return done() ? 0 : data_[at_++]; }
  int pick(std::size_t n) { return static_cast<int>(u8() % n); }

  Op op(bool top) {
    Op o;
    if (top) nodes_ = 0;  // the value budget is per top-level op (a repeat's body shares one)
    o.code = static_cast<Code>(u8() % code_count);
    switch (o.code) {
      case fetch: o.name = pick(kExports.size()); break;
      case browse: case sync: break;
      case store: o.a = value(0); break;
      case attach: o.target = u8(); o.name = pick(kAttachNames.size()); break;
      case detach: o.name = pick(kAttachNames.size()); break;
      case attr: o.target = u8(); o.name = pick(kMembers.size()); o.fetch = pick(4); break;
      case set_attr: o.target = u8(); o.name = pick(kMembers.size()); o.a = value(0); break;
      case call: o.target = u8(); o.name = pick(kMembers.size()); o.args = args(); o.fetch = pick(4); break;
      case invoke: o.target = u8(); o.args = args(); o.fetch = pick(4); break;
      case item: o.target = u8(); o.a = value(0); o.fetch = pick(4); break;
      case set_item: o.target = u8(); o.a = value(0); o.b = value(0); break;
      case len: o.target = u8(); o.fetch = pick(4); break;
      case binary: {
        o.target = u8();
        auto b = u8();
        o.op = b % 16;
        o.flag = (b >> 4) & 1;
        o.a = value(0);
        o.fetch = pick(4);
        break;
      }
      case unary: o.target = u8(); o.op = pick(3); o.fetch = pick(4); break;
      case chain: {
        o.target = u8();
        int n = 1 + pick(8);
        for (int i = 0; i < n; ++i) o.steps.push_back(step());
        auto b = u8();
        o.fetch = b % 4;
        o.flag = (b >> 2) & 1;
        break;
      }
      case get: case str: case truthy: case describe: case drop: o.target = u8(); break;
      case repeat: {
        int lo = u8(), hi = u8();
        o.count = 1 + (lo | (hi << 8)) % kMaxRepeat;
        int n = 1 + pick(4);
        // A repeat inside a repeat runs once: the calls stay bounded by kMaxCalls anyway, but a
        // flat structure keeps the inputs' meaning simple.
        for (int i = 0; i < n; ++i) o.body.push_back(op(false));
        if (!top) {
          o.count = 1;
        }
        break;
      }
      default: break;
    }
    return o;
  }

  std::vector<Value> args() {
    std::vector<Value> list(static_cast<std::size_t>(pick(5)));
    for (auto& v : list) v = value(0);
    return list;
  }

  Step step() {
    Step s;
    s.kind = static_cast<Step::Kind>(u8() % Step::kind_count);
    switch (s.kind) {
      case Step::attr: s.name = pick(kMembers.size()); break;
      case Step::call: s.name = pick(kMembers.size()); s.args = args(); break;
      case Step::invoke: s.args = args(); break;
      case Step::item: s.operand = value(0); break;
      case Step::len: break;
      case Step::binary: {
        auto b = u8();
        s.op = b % 16;
        s.reflected = (b >> 4) & 1;
        s.operand = value(0);
        break;
      }
      case Step::unary: s.op = pick(3); break;
      default: break;
    }
    return s;
  }

  std::string chars(std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n && !done(); ++i) s.push_back(static_cast<char>(u8()));
    return s;
  }

  std::string text() {
    auto b = u8();
    if (b < 0xC0) {
      std::size_t k = b % (kTexts.size() + kMembers.size() + kExports.size());
      if (k < kTexts.size()) return kTexts[k];
      k -= kTexts.size();
      if (k < kMembers.size()) return kMembers[k];
      return kExports[k - kMembers.size()];
    }
    return chars(b - 0xC0u);
  }

  Value value(int depth) {
    Value v;
    if (++nodes_ > kMaxValueNodes || depth > kMaxValueDepth) {
      u8();
      return v;  // none: the budget of one message is spent
    }
    v.kind = static_cast<Value::Kind>(u8() % Value::kind_count);
    switch (v.kind) {
      case Value::none: break;
      case Value::boolean: v.b = u8() & 1; break;
      case Value::integer: {
        auto b = u8();
        v.i = b < 0xF0 ? static_cast<std::int8_t>(b) : kInts[b - 0xF0];
        break;
      }
      case Value::floating: {
        auto b = u8();
        v.f = b < 0xF0 ? static_cast<std::int8_t>(b) / 4.0 : kFloats[b - 0xF0];
        break;
      }
      case Value::text: v.s = text(); break;
      case Value::bytes: v.s = chars(u8() % 65); break;
      case Value::list: {
        int n = pick(8);
        for (int i = 0; i < n; ++i) v.items.push_back(value(depth + 1));
        break;
      }
      case Value::map: {
        int n = pick(8);
        for (int i = 0; i < n; ++i) {
          v.keys.push_back(text());
          v.items.push_back(value(depth + 1));
        }
        break;
      }
      case Value::handle: v.i = u8(); break;
      case Value::nest: {
        v.i = std::min(pick(64), kMaxValueDepth - depth);
        nodes_ += static_cast<int>(v.i);
        v.items.push_back(value(depth + static_cast<int>(v.i)));
        break;
      }
      default: break;
    }
    return v;
  }

  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
  int nodes_ = 0;  // value nodes of the current top-level op
};

// ---- printing (REMOTEABLE_FUZZ_VERBOSE) ----------------------------------------------------------

const char* const kCodeNames[] = {"fetch", "browse", "store", "attach", "detach", "attr", "set_attr", "call",
                                  "invoke", "item", "set_item", "len", "binary", "unary", "chain", "get",
                                  "str", "truthy", "describe", "drop", "sync", "repeat"};

std::string show(const Value& v) {
  switch (v.kind) {
    case Value::none: return "none";
    case Value::boolean: return v.b ? "true" : "false";
    case Value::integer: return std::to_string(v.i);
    case Value::floating: return std::to_string(v.f);
    case Value::text: return "'" + v.s + "'";
    case Value::bytes: return "b(" + std::to_string(v.s.size()) + ")";
    case Value::list: {
      std::string s = "[";
      for (auto& x : v.items) s += (s.size() > 1 ? ", " : "") + show(x);
      return s + "]";
    }
    case Value::map: {
      std::string s = "{";
      for (std::size_t i = 0; i < v.keys.size(); ++i)
        s += (s.size() > 1 ? ", '" : "'") + v.keys[i] + "': " + show(v.items[i]);
      return s + "}";
    }
    case Value::handle: return "$" + std::to_string(v.i);
    case Value::nest: return "nest" + std::to_string(v.i) + "(" + show(v.items.at(0)) + ")";
    default: return "?";
  }
}

void print(const Op& o, int indent = 0) {
  std::fprintf(stderr, "%*s%s $%d name=%d fetch=%d op=%d flag=%d a=%s b=%s args=%zu steps=%zu\n", indent, "",
               kCodeNames[o.code], o.target, o.name, o.fetch, o.op, o.flag, show(o.a).c_str(), show(o.b).c_str(),
               o.args.size(), o.steps.size());
  if (o.code == repeat) {
    std::fprintf(stderr, "%*s  x%d:\n", indent, "", o.count);
    for (auto& b : o.body) print(b, indent + 4);
  }
}

// ---- the server ----------------------------------------------------------------------------------

/// The walkthrough's exports, the binding tests' and the counted and faulty test types, plus
/// plain values of every kind. Every export is immutable or owned by this one server.
void export_all(remoteable::Server& server) {
  example::export_walkthrough(server);
  bt::export_objects(server);
  server.export_class<test::Counted>("Counted");
  server.export_object(std::make_shared<test::Faulty>(), "faulty");
  server.export_value(std::vector<std::int64_t>{1, 2, 3}, "list");
  server.export_value(std::map<std::string, std::int64_t>{{"a", 1}, {"b", 2}}, "map");
  server.export_value(std::string("text"), "text");
  server.export_value(2.5, "half");
}

remoteable::Registry& types() {
  static remoteable::Registry* registry = [] {
    auto* r = new remoteable::Registry;  // libFuzzer leaves no owner but the process
    example::register_node(*r);
    bt::register_types(*r);
    test::register_test_types(*r);  // Gate's block() would block forever: nothing returns a Gate
    test::register_counted(*r);
    return r;
  }();
  return *registry;
}

std::size_t rss_mb() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long pages = 0, resident = 0;
  int n = std::fscanf(f, "%lu %lu", &pages, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) / (1024 * 1024) : 0;
}

// ---- the client ----------------------------------------------------------------------------------

/// The client thread's KJ event loop. The clients run on a thread of their own, one per input:
/// the server's destructor sets up a KJ event loop on the thread that destroys it, and a thread
/// has at most one.
thread_local kj::AsyncIoContext* current_io = nullptr;
kj::AsyncIoContext& io() { return *current_io; }

/// Waits for `promise` at most `limit`; false on timeout. Exceptions propagate.
bool wait_for(kj::Promise<void> promise, kj::Duration limit) {
  auto& c = io();
  return promise.then([] { return true; })
      .exclusiveJoin(c.provider->getTimer().afterDelay(limit).then([] { return false; }))
      .wait(c.waitScope);
}

/// One client connection: a socket and the two-party RPC system on it.
struct Connection {
  explicit Connection(std::uint16_t port) {
    auto& c = io();
    auto connecting = c.provider->getNetwork().parseAddress("127.0.0.1", port).then([](kj::Own<kj::NetworkAddress> a) {
      auto connected = a->connect();
      return connected.attach(kj::mv(a));
    });
    auto ready = connecting.then([this](kj::Own<kj::AsyncIoStream> s) { stream = kj::mv(s); });
    if (!wait_for(kj::mv(ready), kAliveBound)) die("cannot connect to the server (timeout)");
    rpc = kj::heap<capnp::TwoPartyClient>(*stream);
    registry = rpc->bootstrap().castAs<w::Registry>();
  }
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyClient> rpc;
  w::Registry::Client registry = nullptr;
};

/// A real answer from an immutable export: fetch("five").get() is 5.
kj::Promise<void> probe(w::Registry::Client& registry) {
  auto request = registry.fetchRequest();
  request.setName("five");
  auto five = request.send().getHandle();
  return five.getRequest().send().then([](capnp::Response<w::Handle::GetResults> r) {
    auto v = r.getValue();
    if (!v.isInt64() || v.getInt64() != 5) die("the probe got a wrong answer");
  }, [](kj::Exception&& e) { die("the probe failed", e.getDescription().cStr()); });
}

/// Runs one program on one connection: sends every call at once (pipelined), except that
/// `sync` waits for the answers so far.
class Runner {
 public:
  explicit Runner(w::Registry::Client registry) : registry_(kj::mv(registry)) {}

  void run(const std::vector<Op>& program, kj::Duration answer_bound) {
    bound_ = answer_bound;
    for (auto& o : program) {
      if (calls_ >= kMaxCalls) break;
      execute(o);
    }
  }

  /// Waits for every answer; false if they do not all come within the bound.
  bool settle() {
    auto all = kj::joinPromises(pending_.releaseAsArray());
    return wait_for(kj::mv(all), bound_);
  }

  std::size_t calls() const { return calls_; }
  std::size_t failures() const { return *failures_; }

  /// Drops every result: the connection's capabilities go with the connection anyway.
  void clear() {
    pending_.clear();
    slots_.clear();
  }

 private:
  void execute(const Op& o) {
    switch (o.code) {
      case fetch: {
        auto r = registry_.fetchRequest();
        r.setName(kExports[o.name]);
        auto p = r.send();
        keep(p.getHandle());
        track(kj::mv(p), o.code);
        return;
      }
      case browse: return track(registry_.browseRequest().send(), o.code);
      case store: {
        auto r = registry_.storeRequest();
        build(r.initValue(), o.a);
        auto p = r.send();
        keep(p.getHandle());
        track(kj::mv(p), o.code);
        return;
      }
      case attach: {
        auto r = registry_.attachRequest();
        if (auto* h = slot(o.target)) r.setHandle(*h);
        r.setName(kAttachNames[o.name]);
        return track(r.send(), o.code);
      }
      case detach: {
        auto r = registry_.detachRequest();
        r.setName(kAttachNames[o.name]);
        return track(r.send(), o.code);
      }
      case sync: {
        auto all = kj::joinPromises(pending_.releaseAsArray());
        if (!wait_for(kj::mv(all), bound_)) hung_ = true;
        return;
      }
      case repeat:
        for (int i = 0; i < o.count && calls_ < kMaxCalls; ++i)
          for (auto& b : o.body) {
            if (calls_ >= kMaxCalls) break;
            execute(b);
          }
        return;
      default: break;
    }
    // The Handle methods: on an earlier result.
    auto* target = slot(o.target);
    if (!target) return;
    auto& h = *target;
    switch (o.code) {
      case attr: {
        auto r = h.attrRequest();
        r.setName(kMembers[o.name]);
        r.setFetch(static_cast<w::Handle::Fetch>(o.fetch));
        return result(r.send(), o.code);
      }
      case set_attr: {
        auto r = h.setAttrRequest();
        r.setName(kMembers[o.name]);
        build(r.initValue(), o.a);
        return track(r.send(), o.code);
      }
      case call: {
        auto r = h.callRequest();
        r.setName(kMembers[o.name]);
        build_list(r.initArgs(static_cast<unsigned>(o.args.size())), o.args);
        r.setFetch(static_cast<w::Handle::Fetch>(o.fetch));
        return result(r.send(), o.code);
      }
      case invoke: {
        auto r = h.invokeRequest();
        build_list(r.initArgs(static_cast<unsigned>(o.args.size())), o.args);
        r.setFetch(static_cast<w::Handle::Fetch>(o.fetch));
        return result(r.send(), o.code);
      }
      case item: {
        auto r = h.itemRequest();
        build(r.initKey(), o.a);
        r.setFetch(static_cast<w::Handle::Fetch>(o.fetch));
        return result(r.send(), o.code);
      }
      case set_item: {
        auto r = h.setItemRequest();
        build(r.initKey(), o.a);
        build(r.initValue(), o.b);
        return track(r.send(), o.code);
      }
      case len: {
        auto r = h.lenRequest();
        r.setFetch(static_cast<w::Handle::Fetch>(o.fetch));
        return result(r.send(), o.code);
      }
      case binary: {
        auto r = h.binaryRequest();
        r.setOp(static_cast<w::BinaryOp>(o.op));
        build(r.initOperand(), o.a);
        r.setReflected(o.flag);
        r.setFetch(static_cast<w::Handle::Fetch>(o.fetch));
        return result(r.send(), o.code);
      }
      case unary: {
        auto r = h.unaryRequest();
        r.setOp(static_cast<w::UnaryOp>(o.op));
        r.setFetch(static_cast<w::Handle::Fetch>(o.fetch));
        return result(r.send(), o.code);
      }
      case chain: {
        auto r = h.chainRequest();
        auto steps = r.initSteps(static_cast<unsigned>(o.steps.size()));
        for (unsigned i = 0; i < steps.size(); ++i) build_step(steps[i], o.steps[i]);
        r.setFetch(static_cast<w::Handle::Fetch>(o.fetch));
        r.setKeep(o.flag);
        auto p = r.send();
        if (o.flag) keep(p.getResult());
        return track(kj::mv(p), o.code);
      }
      case get: return track(h.getRequest().send(), o.code);
      case str: return track(h.strRequest().send(), o.code);
      case truthy: return track(h.truthyRequest().send(), o.code);
      case describe: return track(h.describeRequest().send(), o.code);
      case drop: {
        ++calls_;  // a Release on the wire
        auto at = index(o.target);
        slots_.erase(slots_.begin() + static_cast<std::ptrdiff_t>(at));
        return;
      }
      default: return;
    }
  }

  /// The result `back` places before the newest (modulo how many there are), or null.
  std::size_t index(int back) const { return slots_.size() - 1 - static_cast<std::size_t>(back) % slots_.size(); }
  w::Handle::Client* slot(int back) { return slots_.empty() ? nullptr : &slots_[index(back)]; }

  void keep(w::Handle::Client h) {
    if (slots_.size() == kMaxSlots) slots_.erase(slots_.begin());
    slots_.push_back(kj::mv(h));
  }

  template <class P>
  void result(P&& promise, Code code) {
    keep(promise.getResult());
    track(kj::fwd<P>(promise), code);
  }

  template <class P>
  void track(P&& promise, Code code) {
    auto number = calls_++;
    auto failures = failures_;
    pending_.add(kj::fwd<P>(promise).then(
        [number, code](auto&& response) {
          if (verbose()) {
            // An answer deeper than this client's reader accepts cannot be printed: say so.
            kj::String text = kj::str("(answer not printable)");
            KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] { text = response.toString().flatten(); })) {
              text = kj::str("(answer not printable: ", e->getDescription(), ")");
            }
            std::fprintf(stderr, "  #%zu %s: %.*s%s\n", number, kCodeNames[code], static_cast<int>(std::min<std::size_t>(text.size(), 160)),
                         text.cStr(), text.size() > 160 ? "..." : "");
          }
        },
        [number, code, failures](kj::Exception&& e) {
          ++*failures;
          if (verbose())
            std::fprintf(stderr, "  #%zu %s: %s\n", number, kCodeNames[code], e.getDescription().cStr());
        }).eagerlyEvaluate(nullptr));
  }

  void build_list(capnp::List<w::Value>::Builder list, const std::vector<Value>& values) {
    for (unsigned i = 0; i < list.size(); ++i) build(list[i], values[i]);
  }

  void build(w::Value::Builder out, const Value& v) {
    switch (v.kind) {
      case Value::none: out.setNone(); return;
      case Value::boolean: out.setBool(v.b); return;
      case Value::integer: out.setInt64(v.i); return;
      case Value::floating: out.setFloat64(v.f); return;
      case Value::text: out.setText(capnp::Text::Reader(v.s.data(), v.s.size())); return;
      case Value::bytes:
        out.setBytes(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(v.s.data()), v.s.size()));
        return;
      case Value::list: return build_list(out.initList(static_cast<unsigned>(v.items.size())), v.items);
      case Value::map: {
        auto entries = out.initMap(static_cast<unsigned>(v.keys.size()));
        for (unsigned i = 0; i < entries.size(); ++i) {
          entries[i].setKey(capnp::Text::Reader(v.keys[i].data(), v.keys[i].size()));
          build(entries[i].initValue(), v.items[i]);
        }
        return;
      }
      case Value::handle:
        if (auto* h = slot(static_cast<int>(v.i))) out.setHandle(*h);
        else out.setNone();
        return;
      case Value::nest: {
        for (std::int64_t i = 0; i < v.i; ++i) out = out.initList(1)[0];
        return build(out, v.items.at(0));
      }
      default: out.setNone(); return;
    }
  }

  void build_step(w::Handle::Step::Builder out, const Step& s) {
    switch (s.kind) {
      case Step::attr: out.setAttr(kMembers[s.name]); return;
      case Step::call: {
        auto c = out.initCall();
        c.setName(kMembers[s.name]);
        build_list(c.initArgs(static_cast<unsigned>(s.args.size())), s.args);
        return;
      }
      case Step::invoke: return build_list(out.initInvoke(static_cast<unsigned>(s.args.size())), s.args);
      case Step::item: return build(out.initItem(), s.operand);
      case Step::len: out.setLen(); return;
      case Step::binary: {
        auto b = out.initBinary();
        b.setOp(static_cast<w::BinaryOp>(s.op));
        build(b.initOperand(), s.operand);
        b.setReflected(s.reflected);
        return;
      }
      case Step::unary: out.setUnary(static_cast<w::UnaryOp>(s.op)); return;
      default: return;
    }
  }

  w::Registry::Client registry_;
  std::vector<w::Handle::Client> slots_;
  kj::Vector<kj::Promise<void>> pending_;
  std::shared_ptr<std::size_t> failures_ = std::make_shared<std::size_t>(0);
  std::size_t calls_ = 0;
  kj::Duration bound_ = 20 * kj::SECONDS;

 public:
  bool hung_ = false;  ///< a `sync` waited past the bound
};

// ---- the seed corpus -----------------------------------------------------------------------------

/// Writes programs in the input format, op by op (the inverse of Decoder, for the seeds).
struct Writer {
  std::string bytes;
  Writer& u8(int b) {
    bytes.push_back(static_cast<char>(b));
    return *this;
  }
  static int index_of(const std::vector<std::string>& names, const std::string& name) {
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) return static_cast<int>(i);
    die("seed: unknown name", name);
  }
  Writer& code(Code c) { return u8(c); }
  Writer& member(const std::string& name) { return u8(index_of(kMembers, name)); }
  // Values.
  Writer& none() { return u8(Value::none); }
  Writer& integer(std::int64_t i) {
    for (int k = 0; k < 16; ++k)
      if (kInts[k] == i) return u8(Value::integer).u8(0xF0 + k);
    if (i < -128 || i > 127 || (i >= -16 && i < 0)) die("seed: no encoding for an int", std::to_string(i));
    return u8(Value::integer).u8(static_cast<std::uint8_t>(static_cast<std::int8_t>(i)));
  }
  Writer& floating(double f) {
    for (int k = 0; k < 16; ++k)
      if (kFloats[k] == f && std::signbit(kFloats[k]) == std::signbit(f)) return u8(Value::floating).u8(0xF0 + k);
    double q = f * 4;
    if (q != std::floor(q) || q < -128 || q > 127 || (q >= -16 && q < 0)) die("seed: no encoding for a float");
    return u8(Value::floating).u8(static_cast<std::uint8_t>(static_cast<std::int8_t>(q)));
  }
  Writer& text(const std::string& s) {
    if (s.size() > 63) die("seed: text too long");
    u8(Value::text).u8(0xC0 + static_cast<int>(s.size()));
    for (char c : s) u8(c);
    return *this;
  }
  Writer& handle(int back) { return u8(Value::handle).u8(back); }
  Writer& list(int n) { return u8(Value::list).u8(n); }  // then n values
  Writer& map(int n) { return u8(Value::map).u8(n); }    // then n (key, value): key via key()
  Writer& key(const std::string& s) {
    u8(0xC0 + static_cast<int>(s.size()));
    for (char c : s) u8(c);
    return *this;
  }
  Writer& nest(int levels) { return u8(Value::nest).u8(levels); }  // then the inner value
  // Ops.
  Writer& fetch(const std::string& name) { return code(Code::fetch).u8(index_of(kExports, name)); }
  Writer& store() { return code(Code::store); }  // then the value
  Writer& attach(int target, const std::string& name) {
    return code(Code::attach).u8(target).u8(index_of(kAttachNames, name));
  }
  Writer& detach(const std::string& name) { return code(Code::detach).u8(index_of(kAttachNames, name)); }
  Writer& attr(int target, const std::string& name, int f = 0) { return code(Code::attr).u8(target).member(name).u8(f); }
  Writer& set_attr(int target, const std::string& name) { return code(Code::set_attr).u8(target).member(name); }
  Writer& call(int target, const std::string& name, int args) {  // then the args, then fetch()
    return code(Code::call).u8(target).member(name).u8(args);
  }
  Writer& invoke(int target, int args) { return code(Code::invoke).u8(target).u8(args); }  // args, fetch()
  Writer& fetch_kind(int f) { return u8(f); }
  Writer& item(int target) { return code(Code::item).u8(target); }  // key, fetch()
  Writer& set_item(int target) { return code(Code::set_item).u8(target); }  // key, value
  Writer& len(int target, int f = 0) { return code(Code::len).u8(target).u8(f); }
  Writer& binary(int target, w::BinaryOp op, bool reflected = false) {  // operand, fetch()
    return code(Code::binary).u8(target).u8(static_cast<int>(op) | (reflected ? 0x10 : 0));
  }
  Writer& unary(int target, w::UnaryOp op, int f = 0) {
    return code(Code::unary).u8(target).u8(static_cast<int>(op)).u8(f);
  }
  Writer& chain(int target, int steps) { return code(Code::chain).u8(target).u8(steps - 1); }  // steps, chain_end
  Writer& step_attr(const std::string& name) { return u8(Step::attr).member(name); }
  Writer& step_call(const std::string& name, int args) { return u8(Step::call).member(name).u8(args); }
  Writer& step_invoke(int args) { return u8(Step::invoke).u8(args); }
  Writer& step_item() { return u8(Step::item); }  // key
  Writer& step_len() { return u8(Step::len); }
  Writer& step_binary(w::BinaryOp op, bool reflected = false) {
    return u8(Step::binary).u8(static_cast<int>(op) | (reflected ? 0x10 : 0));
  }
  Writer& step_unary(w::UnaryOp op) { return u8(Step::unary).u8(static_cast<int>(op)); }
  Writer& chain_end(int f, bool keep) { return u8(f | (keep ? 4 : 0)); }
  Writer& get(int target) { return code(Code::get).u8(target); }
  Writer& str(int target) { return code(Code::str).u8(target); }
  Writer& truthy(int target) { return code(Code::truthy).u8(target); }
  Writer& describe(int target) { return code(Code::describe).u8(target); }
  Writer& drop(int target) { return code(Code::drop).u8(target); }
  Writer& sync() { return code(Code::sync); }
  Writer& repeat(int count, int ops) {  // then the ops
    int c = count - 1;
    return code(Code::repeat).u8(c & 0xff).u8(c >> 8).u8(ops - 1);
  }
};

constexpr int kNone = 0, kValue = 1, kText = 2, kTruth = 3;

std::vector<std::pair<std::string, std::string>> seeds() {
  using B = w::BinaryOp;
  using U = w::UnaryOp;
  std::vector<std::pair<std::string, std::string>> out;
  auto add = [&](const char* name, Writer& wr) { out.emplace_back(name, wr.bytes); };

  {  // The walkthrough: the tree, a method, a constructor, attributes, describe.
    Writer wr;
    wr.code(Code::browse).fetch("root").attr(0, "value", kValue).drop(0);
    wr.fetch("root").call(0, "child", 1).integer(0).fetch_kind(kNone);  // $0 child
    wr.attr(0, "value").binary(0, B::ADD).integer(4).fetch_kind(kValue);
    wr.fetch("Node").invoke(0, 1).integer(3).fetch_kind(kNone);          // $0 Node(3)
    wr.fetch("root").call(0, "add_child", 1).handle(1).fetch_kind(kValue);  // root.add_child(Node(3))
    wr.call(1, "child_count", 0).fetch_kind(kValue).describe(2).str(2).sync();
    wr.fetch("child").binary(0, B::EQ).handle(0).fetch_kind(kTruth);
    add("walkthrough", wr);
  }
  {  // The stack overflow: a value nested 25 levels per store, 1000 stores deep (25,000
     // levels), then str, get, == and truthy on it. Each store is small and valid.
    Writer wr;
    wr.store().integer(1);
    wr.repeat(1000, 1).store().nest(24).list(1).handle(0);
    wr.str(0).get(0).binary(0, B::EQ).handle(0).fetch_kind(kTruth).truthy(0).len(0, kValue);
    add("deep-across-stores", wr);
  }
  {  // The same depth reached by a library client's way: store([$0]) 3000 times.
    Writer wr;
    wr.store().text("leaf");
    wr.repeat(1023, 1).store().list(1).handle(0);
    wr.repeat(1000, 1).store().list(1).handle(0);
    wr.str(0).get(0);
    add("deep-one-level-per-store", wr);
  }
  {  // The exponential sharing: g(i) = [g(i-1), g(i-1)], 30 levels (2^30 leaves), then
     // every expansion of it: get, str, +, ==, len.
    Writer wr;
    wr.store().integer(1);
    wr.repeat(30, 1).store().list(2).handle(0).handle(0);
    wr.len(0, kValue).get(0).str(0).binary(0, B::ADD).handle(0).fetch_kind(kValue);
    wr.binary(0, B::EQ).handle(1).fetch_kind(kTruth).truthy(0);
    add("shared-across-stores", wr);
  }
  {  // Sharing through a map, and attached on the way (attach/fetch pins and finds it).
    Writer wr;
    wr.store().text("x");
    wr.repeat(24, 1).store().map(2).key("l").handle(0).key("r").handle(0);
    wr.attach(0, "a0").fetch("a0").str(0).get(0).binary(0, B::EQ).handle(1).fetch_kind(kTruth).detach("a0");
    add("shared-map-attached", wr);
  }
  {  // Chains of every step kind on the binding types, kept and not, evaluated every way.
    Writer wr;
    wr.fetch("shape").chain(0, 5).step_attr("origin").step_call("scaled", 1).floating(2.0).step_attr("x")
        .step_binary(B::MUL).integer(3).step_unary(U::NEG).chain_end(kValue, false);
    wr.chain(0, 3).step_attr("tags").step_item().integer(1).step_binary(B::SHL).integer(2).chain_end(kText, true);
    wr.get(0).fetch("counter").chain(0, 2).step_invoke(1).integer(5).step_binary(B::ADD, true).integer(1)
        .chain_end(kTruth, false);
    wr.fetch("row").chain(0, 2).step_attr("cells").step_len().chain_end(kValue, true);
    wr.fetch("shape").chain(0, 4).step_call("named", 0).step_item().text("origin").step_attr("y")
        .step_unary(U::NEG).chain_end(kValue, false);
    wr.fetch("Node").chain(0, 3).step_invoke(1).integer(9).step_call("child", 1).integer(0).step_attr("value")
        .chain_end(kValue, true);  // fails at child(0): a failing step fails the chain
    wr.fetch("path").chain(0, 3).step_attr("points").step_item().integer(1).step_call("norm2", 0)
        .chain_end(kValue, true);
    add("chains", wr);
  }
  {  // Operators on stored values and on objects, both orders, with handles as operands.
    Writer wr;
    wr.store().integer(5).store().list(2).integer(1).text("a");
    wr.binary(0, B::ADD).handle(0).fetch_kind(kValue);                   // list + list
    wr.binary(2, B::MUL).integer(3).fetch_kind(kNone);                   // 5 * 3
    wr.binary(0, B::SUB, true).handle(3).fetch_kind(kValue);             // 5 - 15, reflected
    wr.binary(1, B::DIV).integer(0).fetch_kind(kValue);                  // 15 / 0
    wr.unary(5, U::NEG, kValue).unary(6, U::INVERT, kText).unary(7, U::NOT, kTruth);  // on 5
    wr.fetch("money").binary(0, B::ADD).integer(7).fetch_kind(kText);
    wr.binary(1, B::SUB, true).integer(2).fetch_kind(kText).binary(2, B::LT).handle(2).fetch_kind(kTruth);
    wr.fetch("vec").binary(0, B::ADD).handle(0).fetch_kind(kText).binary(1, B::MUL, true).floating(2.5)
        .fetch_kind(kText);
    wr.fetch("bits").binary(0, B::SHL).integer(3).fetch_kind(kNone).call(0, "value", 0).fetch_kind(kValue);
    wr.fetch("opaque").binary(0, B::ADD).integer(1).fetch_kind(kValue).binary(1, B::EQ).handle(1).fetch_kind(kTruth);
    wr.store().map(1).key("k").floating(0.5).item(0).text("k").fetch_kind(kValue).set_item(1).text("n").integer(2)
        .len(1, kValue).get(1);
    add("operators", wr);
  }
  {  // attach/detach: pinned names, fetched back, detached twice; taken and unreachable names;
     // no handle at all.
    Writer wr;
    wr.store().integer(42).attach(0, "a0").fetch("a0").get(0).binary(0, B::EQ).handle(1).fetch_kind(kTruth);
    wr.attach(1, "a0").attach(1, "root").attach(1, "").attach(1, "a b.c").detach("a0").detach("a0");
    wr.fetch("a0").get(0).detach("root").fetch("root").attr(0, "value", kValue);
    wr.code(Code::attach).u8(0).u8(0);  // the newest result again: attach(fetch("root"), "a0")
    wr.fetch("Node").invoke(0, 1).integer(1).attach(0, "a1").drop(0).drop(0).fetch("a1").attr(0, "value", kValue);
    wr.code(Code::browse).detach("a1").detach("a0");
    add("attach-detach", wr);
  }
  {  // add_child(none): a null where the walkthrough wants a node.
    Writer wr;
    wr.fetch("root").call(0, "add_child", 1).none().fetch_kind(kValue).call(0, "child_count", 0).fetch_kind(kValue);
    wr.call(1, "remove_child", 1).none().fetch_kind(kValue);
    add("add-child-none", wr);
  }
  {  // A node made its own ancestor: root.add_child(root), child.add_child(root).
    Writer wr;
    wr.fetch("root").call(0, "add_child", 1).handle(0).fetch_kind(kValue);
    wr.fetch("child").call(0, "add_child", 1).handle(2).fetch_kind(kValue).fetch("root").str(0);
    add("add-child-ancestor", wr);
  }
  {  // Drops while calls on the dropped results are still in flight, and calls on results that
     // never were (a failed fetch pipelined on).
    Writer wr;
    wr.fetch("Node").invoke(0, 1).integer(2).attr(0, "value").drop(1).drop(1).get(0);
    wr.fetch("nope").attr(0, "value").call(0, "child", 1).integer(0).fetch_kind(kValue).get(0).drop(0).sync();
    wr.fetch("Counted").invoke(0, 1).integer(3).call(0, "twin", 0).fetch_kind(kNone).set_attr(0, "value").integer(9);
    wr.attr(0, "value", kValue).drop(1).drop(1).sync().get(0);
    add("drops-and-pipelining", wr);
  }
  {  // Values past the nesting limit of one message, in store, call arguments and chain steps.
    Writer wr;
    wr.store().nest(63).integer(1).store().nest(20).list(3).nest(10).none().integer(1).nest(30).text("deep");
    wr.fetch("shape").call(0, "total", 1).nest(40).integer(1).fetch_kind(kValue);
    wr.chain(1, 1).step_item().nest(63).integer(0).chain_end(kValue, false);
    wr.str(2).get(2);
    add("nesting-limit", wr);
  }
  {  // The binding types' arguments of every shape, with handles, none and wrong kinds.
    Writer wr;
    wr.fetch("shape").fetch("vec");
    wr.call(1, "sum_x", 4).handle(0).handle(0).none().none().fetch_kind(kValue);
    wr.call(2, "sum_x", 4).handle(1).handle(1).handle(1).handle(1).fetch_kind(kValue);
    wr.call(3, "move_to", 2).handle(2).floating(1.5).fetch_kind(kNone).attr(3, "x", kValue);
    wr.call(4, "total", 1).list(3).integer(1).integer(2).integer(3).fetch_kind(kValue);
    wr.call(5, "weigh", 1).map(2).key("a").floating(1.0).key("b").integer(2).fetch_kind(kValue);
    wr.call(6, "or_default", 1).none().fetch_kind(kValue).call(7, "small", 1).integer(-1).fetch_kind(kValue);
    wr.call(8, "kind", 2).integer(1).integer(2).fetch_kind(kValue).call(9, "kind", 1).text("t").fetch_kind(kValue);
    wr.set_attr(10, "width").floating(-2.5).set_attr(10, "title").text("t").set_attr(10, "id").integer(1);
    wr.call(10, "path_length", 1).handle(10).fetch_kind(kValue);
    wr.fetch("join").invoke(0, 2).list(2).text("a").text("b").text(", ").fetch_kind(kValue);
    wr.fetch("twice").invoke(0, 1).text("ab").fetch_kind(kText).invoke(1, 1).integer(21).fetch_kind(kValue);
    wr.fetch("faulty").call(0, "fail", 0).fetch_kind(kValue).call(1, "greet", 1).text("x").fetch_kind(kValue);
    add("arguments", wr);
  }
  return out;
}

// ---- the harness ---------------------------------------------------------------------------------

struct Limits {
  // The program's answers must all arrive (a call never answered is a hang). The dearest bounded
  // operation, str() of a value at the expansion limit (ops::max_expansion), takes about 7 s of
  // CPU here under ASan and coverage, and five times that in wall time on a loaded machine, and
  // a program may make several (each call has its budget; a connection has none yet); how long
  // others wait meanwhile is bounded separately (kStallBound).
  kj::Duration answers = env_number("REMOTEABLE_FUZZ_ANSWER_SECONDS", 300) * kj::SECONDS;
  std::size_t rss_mb = static_cast<std::size_t>(env_number("REMOTEABLE_FUZZ_RSS_MB", 2048));
};

const Limits& limits() {
  static const Limits l;
  return l;
}

remoteable::ServerOptions server_options() {
  remoteable::ServerOptions o;
  o.actor_threads = 2;
  o.stop_grace = std::chrono::milliseconds(200);
  if (!verbose()) o.log_level = spdlog::level::off;  // refusals are the normal case here
  return o;
}

void run_clients(const std::vector<Op>& program, remoteable::ThreadedServer& server);

void run_one(const std::uint8_t* data, std::size_t size) {
  auto program = Decoder(data, size).program();
  if (verbose()) {
    std::fprintf(stderr, "remoteable_fuzz_dispatch: %zu bytes, %zu ops\n", size, program.size());
    for (auto& o : program) print(o, 2);
  }
  remoteable::ThreadedServer server({"127.0.0.1", 0}, types(), server_options());
  export_all(server.server());
  std::thread clients([&] {
    auto context = kj::setupAsyncIo();
    current_io = &context;
    run_clients(program, server);
    current_io = nullptr;
  });
  clients.join();
}

void run_clients(const std::vector<Op>& program, remoteable::ThreadedServer& server) {
  {
    Connection other(server.port());  // before the program: its connect is not what is measured
    if (!wait_for(other.registry.whenResolved(), kAliveBound)) die("the other client's bootstrap timed out");
    Connection conn(server.port());
    Runner runner(conn.registry);
    runner.run(program, limits().answers);
    // While the program's calls are in flight: the server answers somebody else.
    if (!wait_for(probe(other.registry), kStallBound))
      die_hung("another client got no answer within 5 s while the program ran (stall)");
    bool settled = runner.settle() && !runner.hung_;
    if (verbose())
      std::fprintf(stderr, "remoteable_fuzz_dispatch: %zu calls, %zu failed, settled=%d, rss=%zu MB\n",
                   runner.calls(), runner.failures(), settled, rss_mb());
    if (!settled) die_hung("the program's calls were not all answered in time (hang)");
    runner.clear();
  }
  // Both connections are closed: a fresh client is served, and the server lets them go.
  {
    Connection fresh(server.port());
    if (!wait_for(probe(fresh.registry), kAliveBound)) die_hung("a fresh client got no answer after the program (hang)");
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (server->connections() != 0) {
    if (std::chrono::steady_clock::now() > deadline) die("closed connections stayed open on the server");
    wait_for(io().provider->getTimer().afterDelay(1 * kj::MILLISECONDS), 1 * kj::SECONDS);
  }
  if (auto mb = rss_mb(); mb > limits().rss_mb) die("RSS past the bound", std::to_string(mb) + " MB");
}


void write_corpus(const std::string& dir) {
  ::mkdir(dir.c_str(), 0755);
  for (auto& [name, bytes] : seeds()) {
    std::ofstream out(dir + "/" + name, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) die("cannot write a corpus file", name);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  types();
  if (const char* dir = std::getenv("REMOTEABLE_FUZZ_MAKE_CORPUS")) {
    write_corpus(dir);
    std::printf("remoteable_fuzz_dispatch: corpus written to %s\n", dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    run_one(data, size);
  } catch (const kj::Exception& e) {
    die("the harness failed", e.getDescription().cStr());
  } catch (const std::exception& e) {
    die("the harness failed", e.what());
  }
  return 0;
}
