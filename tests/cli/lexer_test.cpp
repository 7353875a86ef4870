#include "cli/lexer.hpp"

#include <catch2/catch.hpp>

#include <limits>
#include <string>
#include <vector>

using namespace remoteable::cli;

namespace {

std::vector<TokenKind> kinds(std::string_view source) {
  std::vector<TokenKind> out;
  for (auto& t : tokenize(source)) out.push_back(t.kind);
  return out;
}

Token single(std::string_view source) {
  auto tokens = tokenize(source);
  REQUIRE(tokens.size() == 2);
  REQUIRE(tokens[1].kind == TokenKind::end);
  return tokens[0];
}

std::size_t error_column(std::string_view source) {
  try {
    tokenize(source);
  } catch (const SyntaxError& e) {
    return e.column();
  }
  FAIL("no syntax error for: " << source);
  return 0;
}

}  // namespace

TEST_CASE("every operator lexes to its own token, longest match first", "[lexer]") {
  using K = TokenKind;
  CHECK(kinds("( ) [ ] { } . , : = + - * / % << >> & ^ | ~ ! == != < <= > >=") ==
        std::vector<K>{K::lparen, K::rparen, K::lbracket, K::rbracket, K::lbrace, K::rbrace,
                       K::dot,    K::comma,  K::colon,    K::assign,   K::plus,   K::minus,
                       K::star,   K::slash,  K::percent,  K::shl,      K::shr,    K::amp,
                       K::caret,  K::pipe,   K::tilde,    K::bang,     K::eq,     K::ne,
                       K::lt,     K::le,     K::gt,       K::ge,       K::end});
  CHECK(kinds("a<<=b") == std::vector<K>{K::name, K::shl, K::assign, K::name, K::end});
  CHECK(kinds("!!=") == std::vector<K>{K::bang, K::ne, K::end});
}

TEST_CASE("tokens record the byte column where they start", "[lexer]") {
  auto tokens = tokenize("root.child( 0 )");
  REQUIRE(tokens.size() == 7);
  CHECK(tokens[0].column == 0);
  CHECK(tokens[1].column == 4);
  CHECK(tokens[2].column == 5);
  CHECK(tokens[3].column == 10);
  CHECK(tokens[4].column == 12);
  CHECK(tokens[5].column == 14);
  CHECK(tokens[6].column == 15);  // end sits at the source length
}

TEST_CASE("names and keywords are told apart, in both spellings of the constants", "[lexer]") {
  using K = TokenKind;
  CHECK(kinds("true True false False none None not") ==
        std::vector<K>{K::kw_true, K::kw_true, K::kw_false, K::kw_false, K::kw_none, K::kw_none,
                       K::kw_not, K::end});
  CHECK(kinds("and or android order") == std::vector<K>{K::kw_and, K::kw_or, K::name, K::name, K::end});
  auto t = single("_node_2");
  CHECK(t.kind == K::name);
  CHECK(t.text == "_node_2");
  CHECK(single("nothing").kind == K::name);
  CHECK(single("truex").kind == K::name);
}

TEST_CASE("integer literals read in decimal, hex, octal and binary with underscores", "[lexer]") {
  CHECK(single("0").integer == 0);
  CHECK(single("42").integer == 42);
  CHECK(single("1_000_000").integer == 1000000);
  CHECK(single("0xff").integer == 255);
  CHECK(single("0XFF").integer == 255);
  CHECK(single("0o17").integer == 15);
  CHECK(single("0b1010").integer == 10);
  CHECK(single("0x_ff").integer == 255);
  CHECK(single("000").integer == 0);
  CHECK(single("9223372036854775807").integer == 9223372036854775807ull);
  // 2^63 passes the lexer: only the parser knows whether a minus sign precedes it.
  CHECK(single("9223372036854775808").integer == 9223372036854775808ull);
}

TEST_CASE("float literals read with fraction, exponent or both", "[lexer]") {
  CHECK(single("1.5").floating == 1.5);
  CHECK(single("1.").floating == 1.0);
  CHECK(single(".25").floating == 0.25);
  CHECK(single("1e3").floating == 1000.0);
  CHECK(single("1E-3").floating == 0.001);
  CHECK(single("2.5e+2").floating == 250.0);
  CHECK(single("1.e2").floating == 100.0);
  CHECK(single("1_0.0_1").floating == 10.01);
  CHECK(single("1e-400").floating == 0.0);
  CHECK(single("1.5").kind == TokenKind::floating);
}

TEST_CASE("a dot after an integer followed by a name is an attribute, not a fraction", "[lexer]") {
  using K = TokenKind;
  CHECK(kinds("1.real") == std::vector<K>{K::integer, K::dot, K::name, K::end});
  CHECK(kinds("x.y") == std::vector<K>{K::name, K::dot, K::name, K::end});
}

TEST_CASE("malformed numbers are syntax errors at the number's first character", "[lexer]") {
  CHECK(error_column("x + 12abc") == 4);
  CHECK(error_column("x + 0x") == 4);
  CHECK(error_column("x + 0b102") == 4);
  CHECK(error_column("1__0") == 0);
  CHECK(error_column("10_") == 0);
  CHECK(error_column("  1e") == 2);
  CHECK(error_column("  1e+") == 2);
  CHECK(error_column("012") == 0);
  CHECK(error_column("1e999") == 0);
  CHECK(error_column("a + 18446744073709551616") == 4);
  CHECK(error_column("9223372036854775809") == 0);
  CHECK(error_column("0xffffffffffffffff") == 0);
}

TEST_CASE("strings take either quote and decode escapes", "[lexer]") {
  CHECK(single("'abc'").text == "abc");
  CHECK(single("\"abc\"").text == "abc");
  CHECK(single("'it\"s'").text == "it\"s");
  CHECK(single("\"it's\"").text == "it's");
  CHECK(single(R"('a\'b\"c')").text == "a'b\"c");
  CHECK(single(R"('\\ \n \t \r \0 \a \b \f \v')").text ==
        std::string("\\ \n \t \r \0 \a \b \f \v", 17));
  CHECK(single(R"('\x41\101')").text == "AA");
  CHECK(single(R"('\xe9')").text == "\xc3\xa9");             // U+00E9 as UTF-8
  CHECK(single(R"('\u20ac')").text == "\xe2\x82\xac");       // euro sign
  CHECK(single(R"('\U0001F600')").text == "\xf0\x9f\x98\x80");
  CHECK(single("'caf\xc3\xa9'").text == "caf\xc3\xa9");      // UTF-8 passes through
  CHECK(single("''").text.empty());
  CHECK(single("'x'").kind == TokenKind::text);
}

TEST_CASE("bytes literals keep raw bytes and refuse non-ASCII and unicode escapes", "[lexer]") {
  auto t = single(R"(b'\x00\xffA')");
  CHECK(t.kind == TokenKind::bytes);
  CHECK(t.text == std::string("\x00\xff" "A", 3));
  CHECK(single("B\"q\"").kind == TokenKind::bytes);
  CHECK(error_column("b'caf\xc3\xa9'") == 5);
  CHECK(error_column(R"(b'\u0041')") == 2);
  CHECK(error_column(R"(b'\777')") == 2);
  // A name that merely starts with b is still a name.
  CHECK(single("bar").kind == TokenKind::name);
}

TEST_CASE("string errors point at the opening quote or the bad escape", "[lexer]") {
  CHECK(error_column("x + 'abc") == 4);
  CHECK(error_column("x + \"abc'") == 4);
  CHECK(error_column("'abc\\") == 0);
  CHECK(error_column("'a\\qb'") == 2);
  CHECK(error_column("'a\\x4'") == 2);
  CHECK(error_column("'\\ud800'") == 1);
  CHECK(error_column("'\\U00110000'") == 1);
}

TEST_CASE("a stray character is an error at its column", "[lexer]") {
  CHECK(error_column("root $ 1") == 5);
  CHECK(error_column("root.a ? b") == 7);
  CHECK(error_column("a @ b") == 2);
  CHECK(error_column("caf\xc3\xa9") == 3);
  try {
    tokenize("a \xe2\x82\xac b");
    FAIL("expected an error");
  } catch (const SyntaxError& e) {
    CHECK(e.message() == "unexpected character '\xe2\x82\xac'");
  }
}

TEST_CASE("whitespace, including newlines and tabs, separates tokens", "[lexer]") {
  using K = TokenKind;
  CHECK(kinds(" \ta\n+\r\n1 ") == std::vector<K>{K::name, K::plus, K::integer, K::end});
  CHECK(kinds("") == std::vector<K>{K::end});
}

TEST_CASE("caret lines put the caret under the column, counting characters", "[lexer]") {
  CHECK(caret_lines("root.a)", 6) == "root.a)\n      ^\n");
  CHECK(caret_lines("abc", 3) == "abc\n   ^\n");
  CHECK(caret_lines("\tx $", 3) == "\tx $\n\t  ^\n");
  CHECK(caret_lines("'\xc3\xa9' $", 5) == "'\xc3\xa9' $\n    ^\n");
  CHECK(caret_lines("a +\nb $", 6) == "b $\n  ^\n");
  CHECK(display_column("root.a)", 6) == 7);
  CHECK(display_column("'\xc3\xa9' $", 5) == 5);
  CHECK(display_column("a +\nb $", 6) == 3);
}
