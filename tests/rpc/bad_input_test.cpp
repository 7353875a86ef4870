// Bad input over real sockets (DESIGN §8: "the wire decoder must survive arbitrary bytes"):
// truncated messages, garbage, absurd segment tables, deep nesting, huge lists. Each gets a
// clean error or a disconnect, and after each a second client still gets a real walkthrough
// evaluation. The bytes are written by the test itself (tests/fuzz/wire.hpp), not by the client.

#include <capnp/schema.h>
#include <fstream>
#include <random>

#include "counted.hpp"  // test::eventually
#include "fuzz/wire.hpp"
#include "support.hpp"

using namespace wire_test;
using remoteable::ErrorKind;

namespace {

/// This process's resident set size in bytes (the server runs in it).
std::size_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

std::string describe(const Answer& a) {
  static const char* names[] = {"results", "exception", "canceled", "other", "aborted", "closed", "timeout"};
  return std::string(names[a.kind]) + (a.reason.empty() ? "" : ": " + a.reason);
}

/// A walkthrough server, a healthy client on its own connection, and raw connections.
struct BadInput : test::WalkthroughServer {
  BadInput() : base_handles(server->server().live_handles()), healthy(test::connect(context, endpoint())) {
    still_serves();
  }
  ~BadInput() {
    healthy.close();
    context.restart();
    context.poll();
  }

  std::uint16_t port() const { return server->port(); }

  /// A real walkthrough evaluation on the healthy connection, and one on a fresh connection.
  void still_serves() {
    CHECK(test::await(context, (healthy.fetch("root").call("child", 0).attr("value") + 4).as<std::int64_t>()) == 6);
    asio::io_context fresh_context;
    auto fresh = test::connect(fresh_context, endpoint());
    CHECK(test::await(fresh_context, (fresh.fetch("five") * 2).as<std::int64_t>()) == 10);
    fresh.close();
    fresh_context.restart();
    fresh_context.poll();
  }

  /// Waits (bounded) until only the healthy client is connected and nothing it does not hold
  /// is alive: whatever the raw connections held has been released.
  bool settles() {
    return test::eventually(context, [&] {
      return server->server().connections() == 1 && server->server().live_handles() == base_handles;
    });
  }

  /// Capabilities alive before any client: every raw connection's and every finished
  /// evaluation's are released back to this.
  std::size_t base_handles;
  asio::io_context context;
  remoteable::Client healthy;
};

/// The bytes of a small real session: bootstrap, fetch "five", get it.
std::string small_session() { return bootstrap(0) + fetch(1, 0, "five") + handle_call(2, 1, handle::get); }

/// [[[...[1]...]]], `depth` lists deep, built without copying.
remoteable::Value nested_value(int depth) {
  remoteable::Value value = std::int64_t{1};
  for (int i = 0; i < depth; ++i) {
    remoteable::Value::List list;  // not List{value}: an initializer list would copy
    list.push_back(std::move(value));
    value = remoteable::Value(std::move(list));
  }
  return value;
}

/// A clean outcome for a bad request: an error answer, or the connection ended by the server.
bool clean_failure(const Answer& a) {
  return a.kind == Answer::exception || a.kind == Answer::aborted || a.kind == Answer::closed;
}

/// Asks for "five" on a raw connection whose bootstrap is question 0; true if it answers 5.
bool answers_five(RawConnection& raw, std::uint32_t question) {
  if (!raw.write(fetch(question, 0, "five") + handle_call(question + 1, question, handle::get))) return false;
  auto a = raw.answer(question + 1);
  if (a.kind != Answer::results) return false;
  auto value = a.reply.message().getReturn().getResults().getContent().getAs<remoteable::wire::Handle::GetResults>().getValue();
  return value.isInt64() && value.getInt64() == 5;
}

}  // namespace

TEST_CASE("a well-formed raw session gets real answers (the raw messages are right)") {
  BadInput t;
  RawConnection raw(t.port());
  REQUIRE(raw.write(small_session()));
  auto five = raw.answer(2);
  REQUIRE(five.kind == Answer::results);
  auto value = five.reply.message().getReturn().getResults().getContent().getAs<remoteable::wire::Handle::GetResults>().getValue();
  CHECK(value.getInt64() == 5);

  // The walkthrough chain, pipelined on promised answers: (root.child(0).value + 4).get()
  REQUIRE(raw.write(fetch(3, 0, "root") + call_method(4, 3, "child", {0}) + attr(5, 4, "value") + add(6, 5, 4) +
                    handle_call(7, 6, handle::get)));
  auto six = raw.answer(7);
  REQUIRE(six.kind == Answer::results);
  CHECK(six.reply.message().getReturn().getResults().getContent().getAs<remoteable::wire::Handle::GetResults>().getValue().getInt64() == 6);

  raw.shutdown_write();
  CHECK(raw.wait_closed());
  CHECK(t.settles());
  t.still_serves();
}

TEST_CASE("truncated messages end the connection cleanly when the stream ends") {
  BadInput t;
  const auto session = small_session();
  const auto first = bootstrap(0).size();
  // Cut inside the segment table, right after it, inside the first message, at the message
  // boundary (a whole bootstrap, then half a fetch), and one byte short of the end.
  for (std::size_t cut : {std::size_t{1}, std::size_t{4}, std::size_t{7}, std::size_t{8}, std::size_t{13},
                          first - 1, first, first + 5, session.size() - 1}) {
    INFO("cut at byte " << cut << " of " << session.size());
    RawConnection raw(t.port());
    CHECK(raw.write(std::string_view(session).substr(0, cut)));
    raw.shutdown_write();
    CHECK(raw.wait_closed());
    CHECK_FALSE(raw.timed_out());
  }
  CHECK(t.settles());
  t.still_serves();
}

TEST_CASE("connections dropped mid-message leave nothing behind") {
  BadInput t;
  const auto session = small_session();
  for (int i = 0; i < 200; ++i) {
    RawConnection raw(t.port());
    raw.write(std::string_view(session).substr(0, static_cast<std::size_t>(i) % session.size()));
    raw.close();  // a reset, in the middle of whatever was sent
  }
  CHECK(t.settles());
  t.still_serves();
}

TEST_CASE("a garbage stream is refused") {
  BadInput t;
  std::mt19937 random(20240411);  // fixed: the same garbage every run
  std::string garbage(64 * 1024, '\0');
  for (auto& c : garbage) c = static_cast<char>(random());

  SECTION("garbage from the first byte (the segment count is absurd)") {
    std::uint32_t count = 0xdeadbeef;  // far above Cap'n Proto's 512-segment cap
    std::memcpy(garbage.data(), &count, 4);
    RawConnection raw(t.port());
    raw.write(garbage);  // may stop early: the server hangs up
    // No shutdown from us: the server must end the connection on its own.
    CHECK(raw.wait_closed());
  }
  SECTION("a valid segment table followed by garbage words") {
    RawConnection raw(t.port());
    raw.write(segment_table({64}) + garbage.substr(0, 64 * 8));
    raw.shutdown_write();
    CHECK(raw.wait_closed());
  }
  SECTION("a valid message, then garbage") {
    RawConnection raw(t.port());
    REQUIRE(raw.write(small_session()));
    CHECK(raw.answer(2).kind == Answer::results);
    raw.write(garbage);
    raw.shutdown_write();
    CHECK(raw.wait_closed());
  }
  SECTION("many small messages of garbage words") {
    RawConnection raw(t.port());
    std::string stream;
    for (std::size_t i = 0; i < 100; ++i) stream += segment_table({4}) + garbage.substr(i * 32, 32);
    raw.write(stream);
    raw.shutdown_write();
    CHECK(raw.wait_closed());
  }
  CHECK(t.settles());
  t.still_serves();
}

TEST_CASE("a segment table announcing 100 MB is refused without reading the body") {
  BadInput t;
  const std::uint32_t words_100mb = 100u * 1024 * 1024 / 8;
  auto before = rss_bytes();
  SECTION("one segment of 100 MB") {
    RawConnection raw(t.port());
    CHECK(raw.write(segment_table({words_100mb})));
    CHECK(raw.wait_closed());  // without a shutdown from us: refused on the table alone
  }
  SECTION("512 segments adding up to 100 MB") {
    RawConnection raw(t.port());
    std::vector<std::uint32_t> sizes(512, words_100mb / 512);
    CHECK(raw.write(segment_table(sizes)));
    CHECK(raw.wait_closed());
  }
  SECTION("a segment count that wraps around (0xffffffff + 1)") {
    RawConnection raw(t.port());
    std::string table(8, '\xff');
    raw.write(table);
    raw.shutdown_write();
    CHECK(raw.wait_closed());
  }
  SECTION("4 GB announced in one segment") {
    RawConnection raw(t.port());
    CHECK(raw.write(segment_table({0xffffffffu})));
    CHECK(raw.wait_closed());
  }
  // Nothing of that size was ever allocated and touched.
  CHECK(rss_bytes() < before + 50u * 1024 * 1024);
  CHECK(t.settles());
  t.still_serves();
}

TEST_CASE("a message just under the size limit is read, and dropped when the stream ends") {
  BadInput t;
  // 7M words (56 MB) is within the default 8M-word limit: the server may wait for the body.
  RawConnection raw(t.port());
  CHECK(raw.write(segment_table({7u * 1024 * 1024}) + std::string(4096, '\0')));
  raw.shutdown_write();
  CHECK(raw.wait_closed());
  CHECK(t.settles());
  t.still_serves();
}

TEST_CASE("a value nested 10,000 deep gets a clean error") {
  BadInput t;
  SECTION("as raw Cap'n Proto") {
    RawConnection raw(t.port());
    auto deep = store(1, 0, [](remoteable::wire::Value::Builder v) { nest(v, 10'000); });
    REQUIRE(raw.write(bootstrap(0) + deep + handle_call(2, 1, handle::len)));
    auto a = raw.answer(2);
    INFO(describe(a));
    CHECK(clean_failure(a));
    if (a.kind == Answer::exception) CHECK(answers_five(raw, 3));  // the connection still works
  }
  SECTION("through the library's client, 1,000 deep") {
    auto stored = t.healthy.store(nested_value(1'000));
    try {
      test::await(t.context, stored.len().get());
      FAIL("a value nested 1,000 deep was accepted");
    } catch (const remoteable::RemoteError& e) {
      INFO("kind " << remoteable::to_string(e.kind()) << ": " << e.what());
      // Refused by the client before sending (ClientOptions::max_nesting): a value error for
      // this call only, and the connection stays up.
      CHECK(e.kind() == ErrorKind::value);
      CHECK(std::string(e.what()).find("nest") != std::string::npos);
    }
    CHECK(t.healthy.connected());
  }
  SECTION("moderate nesting is fine") {
    // max_nesting counts value levels (64 by default): 20 lists deep is well inside it.
    RawConnection raw(t.port());
    auto shallow = store(1, 0, [](remoteable::wire::Value::Builder v) { nest(v, 20); });
    REQUIRE(raw.write(bootstrap(0) + shallow + handle_call(2, 1, handle::len)));
    auto a = raw.answer(2);
    INFO(describe(a));
    CHECK(a.kind == Answer::results);
  }
  CHECK(t.settles());
  t.still_serves();
}

TEST_CASE("a 10M-element list gets a clean error") {
  BadInput t;
  SECTION("encoded in a few words (zero-sized elements)") {
    RawConnection raw(t.port());
    REQUIRE(raw.write(bootstrap(0) + store_amplified_list(1, 0, 10'000'000) + handle_call(2, 1, handle::len)));
    auto a = raw.answer(2);
    INFO(describe(a));
    CHECK(clean_failure(a));
    if (a.kind == Answer::exception) CHECK(answers_five(raw, 3));
  }
  SECTION("announced at full size (30M words)") {
    RawConnection raw(t.port());
    CHECK(raw.write(segment_table({30'000'000u})));
    CHECK(raw.wait_closed());
  }
  CHECK(t.settles());
  t.still_serves();
}

// A list of zero-sized elements costs a few bytes on the wire however long it claims to be, and
// Cap'n Proto charges it only one word per element against the traversal limit: eight of them just
// inside the limit would decode as 64M values. No encoder of Value writes such a list.
TEST_CASE("lists of zero-sized elements just inside the traversal limit get a clean error") {
  BadInput t;
  RawConnection raw(t.port());
  REQUIRE(raw.write(bootstrap(0)));
  for (std::uint32_t question = 1; question <= 8; ++question) {
    REQUIRE(raw.write(store_amplified_list(question, 0, 8'000'000) + handle_call(question + 100, question, handle::len)));
    auto a = raw.answer(question + 100);
    INFO(describe(a));
    REQUIRE(a.kind == Answer::exception);
    CHECK_THAT(a.reason, Catch::Matchers::Contains("zero-sized"));
  }
  CHECK(answers_five(raw, 200));
  raw.close();
  CHECK(t.settles());
  t.still_serves();
}

TEST_CASE("chains on the raw wire: a good one answers, malformed ones get clean errors") {
  BadInput t;
  using Step = remoteable::wire::Handle::Step;
  auto add = [](std::int64_t n) {
    return [n](unsigned, Step::Builder s) {
      auto b = s.initBinary();
      b.setOp(remoteable::wire::BinaryOp::ADD);
      b.initOperand().setInt64(n);
    };
  };
  RawConnection raw(t.port());
  REQUIRE(raw.write(bootstrap(0) + fetch(1, 0, "five")));
  SECTION("a good chain carries the value and, without keep, no capability") {
    REQUIRE(raw.write(chain(2, 1, 3, add(1))));
    auto a = raw.answer(2);
    INFO(describe(a));
    REQUIRE(a.kind == Answer::results);
    auto results = a.reply.message().getReturn().getResults();
    auto chained = results.getContent().getAs<remoteable::wire::Handle::ChainResults>();
    CHECK(chained.getValue().getInt64() == 8);
    CHECK(results.getCapTable().size() == 0);
  }
  SECTION("with keep, the result is a capability that works") {
    REQUIRE(raw.write(chain(2, 1, 2, add(10), remoteable::wire::Handle::Fetch::NONE, true) + handle_call(3, 2, handle::get)));
    auto a = raw.answer(3);
    INFO(describe(a));
    REQUIRE(a.kind == Answer::results);
    CHECK(a.reply.message().getReturn().getResults().getContent().getAs<remoteable::wire::Handle::GetResults>().getValue().getInt64() == 25);
  }
  SECTION("no steps") {
    REQUIRE(raw.write(chain(2, 1, 0, add(1))));
    auto a = raw.answer(2);
    REQUIRE(a.kind == Answer::exception);
    CHECK_THAT(a.reason, Catch::Matchers::Contains("at least one step"));
  }
  SECTION("more steps than the limit") {
    REQUIRE(raw.write(chain(2, 1, 1025, add(1))));
    auto a = raw.answer(2);
    REQUIRE(a.kind == Answer::exception);
    CHECK_THAT(a.reason, Catch::Matchers::Contains("limit of 1024"));
  }
  SECTION("a step kind the schema does not know") {
    auto offset = capnp::Schema::from<Step>().getProto().getStruct().getDiscriminantOffset();
    REQUIRE(raw.write(chain(2, 1, 2, [&](unsigned i, Step::Builder s) {
      s.setLen();
      if (i == 1) {
        auto data = capnp::AnyStruct::Builder(Step::Builder(s)).getDataSection();
        std::uint16_t unknown = 99;
        std::memcpy(data.begin() + offset * 2, &unknown, 2);
      }
    })));
    auto a = raw.answer(2);
    REQUIRE(a.kind == Answer::exception);
    CHECK_THAT(a.reason, Catch::Matchers::Contains("unknown chain step kind 99"));
  }
  SECTION("a failing step fails the chain") {
    REQUIRE(raw.write(chain(2, 1, 2, [](unsigned i, Step::Builder s) {
      if (i == 0) s.setAttr("missing");
      else s.setLen();
    })));
    auto a = raw.answer(2);
    REQUIRE(a.kind == Answer::exception);
    CHECK_THAT(a.reason, Catch::Matchers::Contains("missing"));
  }
  CHECK(answers_five(raw, 10));
  raw.close();
  CHECK(t.settles());
  t.still_serves();
}

TEST_CASE("a large list within the limits is stored and counted") {
  BadInput t;
  RawConnection raw(t.port());
  constexpr unsigned elements = 200'000;  // 600k words: well inside the limit
  auto big = store(1, 0, [](remoteable::wire::Value::Builder v) {
    auto list = v.initList(elements);
    for (unsigned i = 0; i < elements; ++i) list[i].setInt64(i);
  });
  REQUIRE(raw.write(bootstrap(0) + big + handle_call(2, 1, handle::len) + handle_call(3, 2, handle::get)));
  auto a = raw.answer(3, std::chrono::seconds(60));
  INFO(describe(a));
  REQUIRE(a.kind == Answer::results);
  CHECK(a.reply.message().getReturn().getResults().getContent().getAs<remoteable::wire::Handle::GetResults>().getValue().getInt64() ==
        elements);
  raw.shutdown_write();
  CHECK(raw.wait_closed());
  CHECK(t.settles());
  t.still_serves();
}

TEST_CASE("protocol misuse gets an error or a disconnect, never a hang") {
  BadInput t;
  SECTION("a call on a question never asked") {
    RawConnection raw(t.port());
    REQUIRE(raw.write(bootstrap(0) + attr(1, 99, "value")));
    auto a = raw.answer(1);
    INFO(describe(a));
    CHECK(clean_failure(a));
  }
  SECTION("a question id used twice") {
    RawConnection raw(t.port());
    raw.write(bootstrap(0) + bootstrap(0));
    auto a = raw.answer(0xffffffff, std::chrono::seconds(20));  // nothing answers this id
    INFO(describe(a));
    CHECK((a.kind == Answer::aborted || a.kind == Answer::closed));
  }
  SECTION("an unknown interface and method") {
    RawConnection raw(t.port());
    auto bogus = call(1, 0, std::nullopt, Method{0x1234567812345678ull, 77}, nullptr);
    REQUIRE(raw.write(bootstrap(0) + bogus));
    auto a = raw.answer(1);
    INFO(describe(a));
    CHECK(clean_failure(a));
    if (a.kind == Answer::exception) CHECK(answers_five(raw, 2));
  }
  SECTION("a method id past the end of the interface") {
    RawConnection raw(t.port());
    REQUIRE(raw.write(bootstrap(0) + call(1, 0, std::nullopt, Method{registry::fetch.interface_id, 200}, nullptr)));
    auto a = raw.answer(1);
    INFO(describe(a));
    CHECK(clean_failure(a));
    if (a.kind == Answer::exception) CHECK(answers_five(raw, 2));
  }
  SECTION("parameters of the wrong shape (a list where a struct belongs)") {
    RawConnection raw(t.port());
    auto wrong = call(1, 0, std::nullopt, registry::fetch,
                      [](capnp::AnyPointer::Builder content) { content.initAs<capnp::List<std::uint64_t>>(3); });
    REQUIRE(raw.write(bootstrap(0) + wrong));
    auto a = raw.answer(1);
    INFO(describe(a));
    CHECK(clean_failure(a));
    if (a.kind == Answer::exception) CHECK(answers_five(raw, 2));
  }
  SECTION("operator codes this schema does not know") {
    RawConnection raw(t.port());
    auto unary = call(2, 1, std::uint16_t{0}, handle::unary, [](capnp::AnyPointer::Builder content) {
      content.initAs<remoteable::wire::Handle::UnaryParams>().setOp(static_cast<remoteable::wire::UnaryOp>(200));
    });
    auto binary = call(3, 1, std::uint16_t{0}, handle::binary, [](capnp::AnyPointer::Builder content) {
      auto p = content.initAs<remoteable::wire::Handle::BinaryParams>();
      p.setOp(static_cast<remoteable::wire::BinaryOp>(999));
      p.initOperand().setInt64(1);
    });
    REQUIRE(raw.write(bootstrap(0) + fetch(1, 0, "five") + unary + binary));
    for (std::uint32_t q : {2u, 3u}) {
      auto a = raw.answer(q);
      INFO(describe(a));
      REQUIRE(a.kind == Answer::exception);
      CHECK(a.reason.find("unknown") != std::string::npos);
    }
    CHECK(answers_five(raw, 4));
  }
  SECTION("missing parameters") {
    RawConnection raw(t.port());
    REQUIRE(raw.write(bootstrap(0) + call(1, 0, std::nullopt, registry::store, nullptr) + handle_call(2, 1, handle::get)));
    auto a = raw.answer(2);
    INFO(describe(a));
    // An absent value reads as the default (none): storing none is legal, so either answer is fine.
    CHECK((a.kind == Answer::results || clean_failure(a)));
  }
  SECTION("a Finish for every question before anything is answered") {
    RawConnection raw(t.port());
    REQUIRE(raw.write(small_session() + finish(0) + finish(1) + finish(2) + fetch(3, 0, "five")));
    auto a = raw.answer(3);
    INFO(describe(a));
    // Question 0 is finished, so the pipelined fetch on it may fail; it must not hang.
    CHECK(a.kind != Answer::timeout);
  }
  CHECK(t.settles());
  t.still_serves();
}

// The client checks the depth while encoding (ClientOptions::max_nesting): no stack overflow.
TEST_CASE("the client refuses a value nested 10,000 deep with an error") {
  BadInput t;
  auto stored = t.healthy.store(nested_value(10'000));
  auto kind = test::error_of(t.context, stored.len().get());
  CHECK((kind == ErrorKind::value || kind == ErrorKind::type));
  t.still_serves();
}

// The server decodes each value in one pass: Cap'n Proto charges every read against the
// traversal limit, so a decoder that read lists twice would refuse this message.
TEST_CASE("a list of 1M elements (3M words, under the 8M-word limit) is accepted") {
  BadInput t;
  RawConnection raw(t.port());
  constexpr unsigned elements = 1'000'000;
  auto big = store(1, 0, [](remoteable::wire::Value::Builder v) {
    auto list = v.initList(elements);
    for (unsigned i = 0; i < elements; ++i) list[i].setInt64(i);
  });
  REQUIRE(big.size() / 8 < 8u * 1024 * 1024 / 2);
  REQUIRE(raw.write(bootstrap(0) + big + handle_call(2, 1, handle::len) + handle_call(3, 2, handle::get), std::chrono::seconds(60)));
  auto a = raw.answer(3, std::chrono::seconds(60));
  INFO(describe(a));
  CHECK(a.kind == Answer::results);
  raw.close();
  CHECK(t.settles());
  t.still_serves();
}
