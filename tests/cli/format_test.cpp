#include "cli/format.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "cli/parser.hpp"

using namespace remoteable;
using namespace remoteable::cli;

namespace {

Bytes bytes(std::string_view s) {
  Bytes b;
  for (char c : s) b.push_back(static_cast<std::byte>(c));
  return b;
}

// The value of a literal, or of a list or map display of literals.
Value literal_value(const Expr& e) {
  if (auto* lit = std::get_if<Literal>(&e.node)) return lit->value;
  if (auto* list = std::get_if<ListDisplay>(&e.node)) {
    Value::List out;
    for (auto& item : list->items) out.push_back(literal_value(*item));
    return Value(std::move(out));
  }
  if (auto* map = std::get_if<MapDisplay>(&e.node)) {
    Value::Map out;
    for (auto& [key, item] : map->entries) out.insert_or_assign(key, literal_value(*item));
    return Value(std::move(out));
  }
  FAIL("not a literal: " << dump(e));
  return {};
}

// Reads `text` back with the CLI parser.
Value read_back(const std::string& text) { return literal_value(*parse(text).value); }

}  // namespace

TEST_CASE("floats print like Python's repr", "[format]") {
  CHECK(format_float(1.0) == "1.0");
  CHECK(format_float(-0.0) == "-0.0");
  CHECK(format_float(0.0) == "0.0");
  CHECK(format_float(2.5) == "2.5");
  CHECK(format_float(0.1) == "0.1");
  CHECK(format_float(100000.0) == "100000.0");
  CHECK(format_float(1234567890123456.0) == "1234567890123456.0");
  CHECK(format_float(1e16) == "1e+16");
  CHECK(format_float(1.5e300) == "1.5e+300");
  CHECK(format_float(0.0001) == "0.0001");
  CHECK(format_float(0.00001) == "1e-05");
  CHECK(format_float(-1.25e-7) == "-1.25e-07");
  CHECK(format_float(5e-324) == "5e-324");
  CHECK(format_float(1.0 / 3) == "0.3333333333333333");
  CHECK(format_float(std::numeric_limits<double>::infinity()) == "inf");
  CHECK(format_float(-std::numeric_limits<double>::infinity()) == "-inf");
  CHECK(format_float(std::nan("")) == "nan");
}

TEST_CASE("floats print the shortest text that reads back exactly", "[format]") {
  for (double d : {0.1, 1.0 / 3, 2.0 / 3, 1e-300, 123456.789, 9007199254740993.0, 1e22, 4.35}) {
    INFO(d);
    CHECK(std::stod(format_float(d)) == d);
  }
}

TEST_CASE("scalars print plainly with the language's spelling", "[format]") {
  CHECK(format_plain(Value(None{})) == "none");
  CHECK(format_plain(Value(true)) == "true");
  CHECK(format_plain(Value(false)) == "false");
  CHECK(format_plain(Value(6)) == "6");
  CHECK(format_plain(Value(std::numeric_limits<std::int64_t>::min())) == "-9223372036854775808");
  CHECK(format_plain(Value(2.0)) == "2.0");
  CHECK(format_plain(Value(Handle())) == "<handle>");
  // With the type names of its handles, in the order they print.
  CHECK(format_plain(Value(Handle()), {"Node"}) == "<Node handle>");
  CHECK(format_repr(Value(Value::List{Value(Handle()), Value(1), Value(Handle())}), {"Node", ""}) ==
        "[<Node handle>, 1, <handle>]");
}

TEST_CASE("a top-level string prints bare, a nested one quoted", "[format]") {
  CHECK(format_plain(Value("hello world")) == "hello world");
  CHECK(format_plain(Value("it's")) == "it's");
  CHECK(format_plain(Value("")) == "");
  CHECK(format_plain(Value(Value::List{Value("a"), Value("it's")})) == "['a', \"it's\"]");
}

TEST_CASE("strings quote like Python: single quotes unless that needs escaping", "[format]") {
  CHECK(format_repr(Value("abc")) == "'abc'");
  CHECK(format_repr(Value("it's")) == "\"it's\"");
  CHECK(format_repr(Value("say \"hi\"")) == "'say \"hi\"'");
  CHECK(format_repr(Value("'\"")) == "'\\'\"'");
  CHECK(format_repr(Value("a\\b\n\t\r")) == "'a\\\\b\\n\\t\\r'");
  CHECK(format_repr(Value(std::string("\x00\x1f\x7f", 3))) == "'\\x00\\x1f\\x7f'");
  CHECK(format_repr(Value("caf\xc3\xa9 \xe2\x82\xac")) == "'caf\xc3\xa9 \xe2\x82\xac'");
  CHECK(format_repr(Value("\xc2\x85")) == "'\\x85'");  // a C1 control character
  CHECK(format_repr(Value("\xff")) == "'\\xff'");      // not UTF-8
}

TEST_CASE("bytes print as b'' literals", "[format]") {
  CHECK(format_plain(Value(bytes("ab"))) == "b'ab'");
  CHECK(format_repr(Value(bytes(std::string("\x00\xff'\\", 4)))) == "b\"\\x00\\xff'\\\\\"");
  CHECK(format_repr(Value(Bytes{})) == "b''");
}

TEST_CASE("lists and maps print Python-ish", "[format]") {
  Value::Map inner{{"x", Value(1.5)}};
  Value::Map map{{"b", Value(Value::List{})}, {"a", Value(inner)}, {"c", Value(None{})}};
  CHECK(format_plain(Value(map)) == "{'a': {'x': 1.5}, 'b': [], 'c': none}");
  CHECK(format_plain(Value(Value::List{Value(1), Value(true), Value(Value::List{Value(2)})})) ==
        "[1, true, [2]]");
  CHECK(format_plain(Value(Value::Map{})) == "{}");
}

TEST_CASE("what format_repr prints reads back as the same value", "[format]") {
  for (Value v : {Value(0), Value(-17), Value(std::numeric_limits<std::int64_t>::min()),
                  Value(std::numeric_limits<std::int64_t>::max()), Value(0.1), Value(-2.5e-9),
                  Value(Value::Map{{"k", Value(Value::Map{{"it's", Value(1)}})}}),
                  Value(1e300), Value(true), Value(false), Value(None{}), Value("it's \"x\"\n"),
                  Value("\x01\x7f \xc3\xa9\xc2\x80"), Value(bytes(std::string("\x00\x80'\"", 4))),
                  Value(Value::List{Value(1), Value("a"), Value(Value::List{})})}) {
    std::string text = format_repr(v);
    INFO(text);
    CHECK(format_repr(read_back(text)) == text);
  }
}

TEST_CASE("JSON output is one document with JSON's spellings", "[format]") {
  CHECK(format_json(Value(None{})) == "null");
  CHECK(format_json(Value(true)) == "true");
  CHECK(format_json(Value(6)) == "6");
  CHECK(format_json(Value(2.0)) == "2.0");
  CHECK(format_json(Value(1e16)) == "1e+16");
  CHECK(format_json(Value(std::nan(""))) == "null");
  CHECK(format_json(Value(std::numeric_limits<double>::infinity())) == "null");
  CHECK(format_json(Value("hi")) == "\"hi\"");
  CHECK(format_json(Value(Value::List{Value(1), Value("a"), Value(None{})})) == "[1,\"a\",null]");
  CHECK(format_json(Value(Value::Map{{"k", Value(Value::List{})}, {"a", Value(false)}})) ==
        "{\"a\":false,\"k\":[]}");
  CHECK(format_json(Value(Handle())) == "{\"$handle\":true}");
  CHECK(format_json(Value(Handle()), {"Node"}) == "{\"$handle\":true,\"type\":\"Node\"}");
}

TEST_CASE("JSON strings escape what JSON requires and keep valid UTF-8", "[format]") {
  CHECK(format_json(Value("\"\\/\b\f\n\r\t")) == "\"\\\"\\\\/\\b\\f\\n\\r\\t\"");
  CHECK(format_json(Value(std::string("\x00\x1f", 2))) == "\"\\u0000\\u001f\"");
  CHECK(format_json(Value("caf\xc3\xa9")) == "\"caf\xc3\xa9\"");
  CHECK(format_json(Value("a\xff" "b")) == "\"a\\ufffdb\"");
  CHECK(format_json(Value("\xc0\x80")) == "\"\\ufffd\\ufffd\"");  // overlong NUL
  CHECK(format_json(Value("\xed\xa0\x80")) == "\"\\ufffd\\ufffd\\ufffd\"");  // a surrogate
}

TEST_CASE("JSON bytes are base64 in a tagged object", "[format]") {
  CHECK(format_json(Value(Bytes{})) == "{\"$bytes\":\"\"}");
  CHECK(format_json(Value(bytes("f"))) == "{\"$bytes\":\"Zg==\"}");
  CHECK(format_json(Value(bytes("fo"))) == "{\"$bytes\":\"Zm8=\"}");
  CHECK(format_json(Value(bytes("foo"))) == "{\"$bytes\":\"Zm9v\"}");
  CHECK(format_json(Value(bytes(std::string("\xff\x00\x10\x80", 4)))) ==
        "{\"$bytes\":\"/wAQgA==\"}");
}

TEST_CASE("outcomes print newline-terminated in either style", "[format]") {
  CHECK(format(Outcome(Value(6)), OutputStyle::plain) == "6\n");
  CHECK(format(Outcome(Value("a b")), OutputStyle::plain) == "a b\n");
  CHECK(format(Outcome(Value("a b")), OutputStyle::json) == "\"a b\"\n");
  CHECK(format(Outcome(NoResult{}), OutputStyle::plain).empty());
  CHECK(format(Outcome(NoResult{}), OutputStyle::json).empty());
}

TEST_CASE("browse prints one name a line, or a JSON array", "[format]") {
  ExportNames names{{"Node", "five", "root"}};
  CHECK(format(Outcome(names), OutputStyle::plain) == "Node\nfive\nroot\n");
  CHECK(format(Outcome(names), OutputStyle::json) == "[\"Node\",\"five\",\"root\"]\n");
  CHECK(format(Outcome(ExportNames{}), OutputStyle::plain).empty());
  CHECK(format(Outcome(ExportNames{}), OutputStyle::json) == "[]\n");
}

TEST_CASE("a description prints its type and one member a line", "[format]") {
  Description d{"Node", {{"value", "field", "int64"}, {"child", "method", "", {"(int64) -> Node"}}}};
  CHECK(format(Outcome(d), OutputStyle::plain) ==
        "Node\n"
        "  value  field   int64\n"
        "  child  method  (int64) -> Node\n");
  CHECK(format(Outcome(d), OutputStyle::json) ==
        "{\"type\":\"Node\",\"members\":[{\"name\":\"value\",\"kind\":\"field\",\"type\":\"int64\"},"
        "{\"name\":\"child\",\"kind\":\"method\",\"signatures\":[\"(int64) -> Node\"]}]}\n");
  // Overloads on rows of their own; calling the object itself first; no type: no column.
  Description c{"class Counter",
                {{"inc", "method", "", {"() -> none", "(int64) -> none"}}, {"n", "readonly property", "int64"}, {"x", "field"}},
                {"() -> Counter", "(int64) -> Counter"}};
  CHECK(format(Outcome(c), OutputStyle::plain) ==
        "class Counter\n"
        "       call               () -> Counter\n"
        "                          (int64) -> Counter\n"
        "  inc  method             () -> none\n"
        "                          (int64) -> none\n"
        "  n    readonly property  int64\n"
        "  x    field\n");
  CHECK(format(Outcome(c), OutputStyle::json) ==
        "{\"type\":\"class Counter\",\"signatures\":[\"() -> Counter\",\"(int64) -> Counter\"],\"members\":["
        "{\"name\":\"inc\",\"kind\":\"method\",\"signatures\":[\"() -> none\",\"(int64) -> none\"]},"
        "{\"name\":\"n\",\"kind\":\"readonly property\",\"type\":\"int64\"},{\"name\":\"x\",\"kind\":\"field\"}]}\n");
}
