#include "cli/parser.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <string>

using namespace remoteable;
using namespace remoteable::cli;

namespace {

std::string tree(std::string_view source) { return dump(parse(source)); }

// The column of the syntax error `source` raises, and its message through `message`.
std::size_t error_column(std::string_view source, std::string* message = nullptr) {
  try {
    parse(source);
  } catch (const SyntaxError& e) {
    if (message) *message = e.message();
    return e.column();
  }
  FAIL("no syntax error for: " << source);
  return 0;
}

const Literal& literal_of(const Statement& s) {
  REQUIRE(!s.target);
  auto* lit = std::get_if<Literal>(&s.value->node);
  REQUIRE(lit);
  return *lit;
}

}  // namespace

TEST_CASE("an export name parses to a name", "[parser]") {
  CHECK(tree("root") == "root");
  CHECK(tree("  five  ") == "five");
}

TEST_CASE("literals parse to values of their kind", "[parser]") {
  CHECK(literal_of(parse("42")).value.as<std::int64_t>() == 42);
  CHECK(literal_of(parse("2.5")).value.as<double>() == 2.5);
  CHECK(literal_of(parse("'hi'")).value.as<std::string>() == "hi");
  CHECK(literal_of(parse("\"hi\"")).value.as<std::string>() == "hi");
  CHECK(literal_of(parse("true")).value.as<bool>() == true);
  CHECK(literal_of(parse("False")).value.as<bool>() == false);
  CHECK(literal_of(parse("none")).value.kind() == ValueKind::none);
  CHECK(literal_of(parse("b'\\x01'")).value.as<Bytes>() == Bytes{std::byte{1}});
}

TEST_CASE("a minus sign before a number folds into a negative literal", "[parser]") {
  CHECK(literal_of(parse("-5")).value.as<std::int64_t>() == -5);
  CHECK(literal_of(parse("- 2.5")).value.as<double>() == -2.5);
  CHECK(literal_of(parse("--5")).value.as<std::int64_t>() == 5);
  CHECK(literal_of(parse("-9223372036854775808")).value.as<std::int64_t>() ==
        std::numeric_limits<std::int64_t>::min());
  CHECK(tree("f(-1)") == "(call f -1)");
  // Only numbers fold: other operands go to the server.
  CHECK(tree("-true") == "(- true)");
  CHECK(tree("-x") == "(- x)");
  CHECK(tree("~5") == "(~ 5)");
}

TEST_CASE("integer literals beyond int64 are syntax errors", "[parser]") {
  std::string message;
  CHECK(error_column("1 + 9223372036854775808", &message) == 4);
  CHECK(message == "integer literal too large for 64 bits");
  // The minus only rescues 2^63 when it is the whole operand.
  CHECK(error_column("-9223372036854775808.x") == 1);
}

TEST_CASE("attribute, call and index chain left to right", "[parser]") {
  CHECK(tree("root.child") == "(. root child)");
  CHECK(tree("root.child(0).value") == "(. (call (. root child) 0) value)");
  CHECK(tree("Node(3)") == "(call Node 3)");
  CHECK(tree("f()") == "(call f)");
  CHECK(tree("f(a, 'b', 2.5,)") == "(call f a 'b' 2.5)");
  CHECK(tree("m['k'][0]") == "([] ([] m 'k') 0)");
  CHECK(tree("f(1)(2)") == "(call (call f 1) 2)");
  CHECK(tree("a.b[c.d](e.f)") == "(call ([] (. a b) (. c d)) (. e f))");
  CHECK(tree("(root).child") == "(. root child)");
  CHECK(tree("'abc'.upper()") == "(call (. 'abc' upper))");
}

TEST_CASE("arguments and indexes are whole expressions", "[parser]") {
  CHECK(tree("f(a + 1, not b)") == "(call f (+ a 1) (not b))");
  CHECK(tree("m[i * 2]") == "([] m (* i 2))");
}

TEST_CASE("every unary operator parses", "[parser]") {
  CHECK(tree("-x") == "(- x)");
  CHECK(tree("~x") == "(~ x)");
  CHECK(tree("!x") == "(not x)");
  CHECK(tree("not x") == "(not x)");
  CHECK(tree("-~!x") == "(- (~ (not x)))");
  CHECK(tree("-x.y") == "(- (. x y))");
}

TEST_CASE("every binary operator parses", "[parser]") {
  for (std::string op : {"*", "/", "%", "+", "-", "<<", ">>", "&", "^", "|", "==", "!=", "<", "<=",
                         ">", ">="}) {
    INFO(op);
    CHECK(tree("a " + op + " b") == "(" + op + " a b)");
  }
}

TEST_CASE("precedence follows Python: * over +, + over shifts, shifts over & ^ |", "[parser]") {
  CHECK(tree("1 + 2 * 3") == "(+ 1 (* 2 3))");
  CHECK(tree("1 * 2 + 3") == "(+ (* 1 2) 3)");
  CHECK(tree("a % b - c / d") == "(- (% a b) (/ c d))");
  CHECK(tree("a << b + c") == "(<< a (+ b c))");
  CHECK(tree("a & b << c") == "(& a (<< b c))");
  CHECK(tree("a ^ b & c") == "(^ a (& b c))");
  CHECK(tree("a | b ^ c") == "(| a (^ b c))");
  CHECK(tree("a | b & c ^ d") == "(| a (^ (& b c) d))");
}

TEST_CASE("comparisons bind looser than bitwise operators, as in Python", "[parser]") {
  CHECK(tree("a & b == c") == "(== (& a b) c)");
  CHECK(tree("a | b < c + 1") == "(< (| a b) (+ c 1))");
}

TEST_CASE("unary operators bind tighter than binary ones", "[parser]") {
  CHECK(tree("-a * b") == "(* (- a) b)");
  CHECK(tree("a - -b") == "(- a (- b))");
  CHECK(tree("!a == b") == "(== (not a) b)");
  CHECK(tree("~a + 1") == "(+ (~ a) 1)");
}

TEST_CASE("not binds looser than comparisons, as in Python", "[parser]") {
  CHECK(tree("not a == b") == "(not (== a b))");
  CHECK(tree("not not a") == "(not (not a))");
  CHECK(tree("(not a) + 1") == "(+ (not a) 1)");
}

TEST_CASE("binary operators of one level associate to the left", "[parser]") {
  CHECK(tree("a - b - c") == "(- (- a b) c)");
  CHECK(tree("a / b * c") == "(* (/ a b) c)");
  CHECK(tree("a << b >> c") == "(>> (<< a b) c)");
}

TEST_CASE("parentheses override precedence", "[parser]") {
  CHECK(tree("(1 + 2) * 3") == "(* (+ 1 2) 3)");
  CHECK(tree("a & (b == c)") == "(& a (== b c))");
  CHECK(tree("((x))") == "x");
}

TEST_CASE("root.child(0).value + 4 is an addition on a pipelined chain", "[parser]") {
  CHECK(tree("root.child(0).value + 4") == "(+ (. (call (. root child) 0) value) 4)");
}

TEST_CASE("assignment takes an attribute or an item target", "[parser]") {
  CHECK(tree("a.b = 1") == "(= (. a b) 1)");
  CHECK(tree("root.child(0).value = root.value + 1") ==
        "(= (. (call (. root child) 0) value) (+ (. root value) 1))");
  CHECK(tree("m['k'] = [1, 2]") == "(= ([] m 'k') (list 1 2))");
  CHECK(tree("a.b == 1") == "(== (. a b) 1)");
}

TEST_CASE("assignment to anything else is an error at the target", "[parser]") {
  std::string message;
  CHECK(error_column("five = 6", &message) == 0);
  CHECK(message.find("attach") != std::string::npos);
  CHECK(message.find("let five = EXPR") != std::string::npos);
  CHECK(error_column("  f(1) = 2") == 2);
  CHECK(error_column("a + b = 1") == 0);
  CHECK(error_column("a.b = c.d = 1") == 10);
  CHECK(error_column("a.b =") == 5);
}

TEST_CASE("list and map displays parse, with trailing commas", "[parser]") {
  CHECK(tree("[]") == "(list)");
  CHECK(tree("[1, x, 'a',]") == "(list 1 x 'a')");
  CHECK(tree("{}") == "(map)");
  CHECK(tree("{'a': 1, \"b\": x.y,}") == "(map 'a' 1 'b' (. x y))");
  CHECK(tree("f([1], {'k': [2]})") == "(call f (list 1) (map 'k' (list 2)))");
}

TEST_CASE("map keys must be string literals", "[parser]") {
  std::string message;
  CHECK(error_column("{1: 2}", &message) == 1);
  CHECK(message == "map keys must be string literals");
  CHECK(error_column("{'a' 2}") == 5);
}

TEST_CASE("builtins parse when called, and are ordinary names otherwise", "[parser]") {
  CHECK(tree("store(5)") == "(store 5)");
  CHECK(tree("store([1, 2]).append(3)") == "(call (. (store (list 1 2)) append) 3)");
  CHECK(tree("len(root.items) + 1") == "(+ (len (. root items)) 1)");
  CHECK(tree("str(root)") == "(str root)");
  CHECK(tree("bool(root.value)") == "(bool (. root value))");
  CHECK(tree("attach(root.child(0), 'kid')") == "(attach (call (. root child) 0) 'kid')");
  CHECK(tree("detach(\"kid\")") == "(detach 'kid')");
  CHECK(tree("browse()") == "(browse)");
  CHECK(tree("describe(root)") == "(describe root)");
  CHECK(tree("str") == "str");
  CHECK(tree("root.str(1)") == "(call (. root str) 1)");
  CHECK(tree("root.store = 1") == "(= (. root store) 1)");
}

TEST_CASE("evaluating builtins must be the whole statement", "[parser]") {
  std::string message;
  CHECK(error_column("str(a) + 'x'", &message) == 0);
  CHECK(message == "str() must be the whole expression, it cannot be part of one");
  CHECK(error_column("1 + bool(a)") == 4);
  CHECK(error_column("f(attach(a, 'n'))") == 2);
  CHECK(error_column("a.b = detach('n')") == 6);
  CHECK(error_column("store(str(a))") == 6);
  CHECK(error_column("[browse()]") == 1);
  CHECK(error_column("describe(a).x") == 0);
}

TEST_CASE("builtins check their argument count and name arguments", "[parser]") {
  std::string message;
  CHECK(error_column("store()", &message) == 6);
  CHECK(message == "store() takes 1 argument: store(EXPR)");
  CHECK(error_column("len(a, b)") == 7);
  CHECK(error_column("attach(a)", &message) == 8);
  CHECK(message == "attach() takes 2 arguments: attach(EXPR, \"name\")");
  CHECK(error_column("attach(a, b)", &message) == 10);
  CHECK(message == "attach() takes the export name as a string literal");
  CHECK(error_column("detach(1)") == 7);
  CHECK(error_column("browse(1)") == 7);
}

TEST_CASE("chained comparisons are refused at the second operator", "[parser]") {
  std::string message;
  CHECK(error_column("a < b < c", &message) == 6);
  CHECK(message == "chained comparisons are not supported; use parentheses");
  CHECK(tree("(a < b) < c") == "(< (< a b) c)");
}

TEST_CASE("syntax errors point at the offending token", "[parser]") {
  std::string message;
  CHECK(error_column("root.a)", &message) == 6);
  CHECK(message == "unexpected ')'");
  CHECK(error_column("root.", &message) == 5);
  CHECK(message == "expected a name after '.', found end of input");
  CHECK(error_column("root.1") == 4);  // ".1" lexes as a float
  CHECK(error_column("root.(x)") == 5);
  CHECK(error_column("f(1, 2") == 6);
  CHECK(error_column("f(1,, 2)") == 4);
  CHECK(error_column("f(,)") == 2);
  CHECK(error_column("a[]") == 2);
  CHECK(error_column("a[1") == 3);
  CHECK(error_column("(1 + 2") == 6);
  CHECK(error_column("()") == 1);
  CHECK(error_column("1 +") == 3);
  CHECK(error_column("1 + * 2") == 4);
  CHECK(error_column("a b") == 2);
  CHECK(error_column("") == 0);
  CHECK(error_column("   ") == 3);
  CHECK(error_column("1 + not a") == 4);
  CHECK(error_column("[1, 2") == 5);
  CHECK(error_column("x = 1") == 0);
  CHECK(error_column("root.a $ 1") == 7);  // lexer errors come through parse too
}

TEST_CASE("expressions record the column they start at", "[parser]") {
  Statement s = parse("  root.child(0) + 4");
  CHECK(s.value->column == 2);
  auto& sum = std::get<Binary>(s.value->node);
  CHECK(sum.left->column == 2);
  CHECK(sum.right->column == 18);
}

TEST_CASE("a lone expression refuses assignments and acting builtins", "[parser]") {
  CHECK(dump(*parse_expression("root.child(0)")) == "(call (. root child) 0)");
  CHECK(dump(*parse_expression("store(1)")) == "(store 1)");
  try {
    parse_expression("root.a = 1");
    FAIL("expected an error");
  } catch (const SyntaxError& e) {
    CHECK(e.column() == 7);
  }
  try {
    parse_expression("str(root)");
    FAIL("expected an error");
  } catch (const SyntaxError& e) {
    CHECK(e.column() == 0);
  }
}

TEST_CASE("let binds a local name to an expression", "[parser]") {
  CHECK(tree("let x = store(3)") == "(let x (store 3))");
  CHECK(tree("let n = root.child(0)") == "(let n (call (. root child) 0))");
  CHECK(tree("let x = a or b") == "(let x (or a b))");
  // `let` is an ordinary name elsewhere.
  CHECK(tree("let.x") == "(. let x)");
  CHECK(tree("let") == "let");
  std::string message;
  CHECK(error_column("let = 1", &message) == 4);
  CHECK(message == "expected a name after 'let', found '='");
  CHECK(error_column("let x", &message) == 5);
  CHECK(error_column("let x = ") == 8);
  CHECK(error_column("let store = 1", &message) == 4);
  CHECK(message == "'store' is a builtin; choose another name");
  CHECK(error_column("let x = str(1)") == 8);  // acting builtins stay whole statements
}

TEST_CASE("and / or bind looser than not, or looser than and, as in Python", "[parser]") {
  CHECK(tree("a and b") == "(and a b)");
  CHECK(tree("a or b and c") == "(or a (and b c))");
  CHECK(tree("a and b or c") == "(or (and a b) c)");
  CHECK(tree("not a and b") == "(and (not a) b)");
  CHECK(tree("a == 1 or b < 2") == "(or (== a 1) (< b 2))");
  CHECK(tree("a or b or c") == "(or (or a b) c)");
  CHECK(tree("f(a or b)") == "(call f (or a b))");
  CHECK(error_column("a and") == 5);
  CHECK(error_column("or a") == 0);
}

TEST_CASE("nesting deeper than max_nesting is a syntax error, not a crash", "[parser]") {
  std::string deep(10000, '(');
  deep += "1";
  deep += std::string(10000, ')');
  std::string message;
  error_column(deep, &message);
  CHECK(message.find("nested too deeply") != std::string::npos);
  std::string long_sum = "1";
  for (int i = 0; i < 10000; ++i) long_sum += " + 1";
  error_column(long_sum, &message);
  CHECK(message.find("nested too deeply") != std::string::npos);
  std::string long_chain = "a";
  for (int i = 0; i < 10000; ++i) long_chain += ".b";
  error_column(long_chain, &message);
  CHECK(message.find("nested too deeply") != std::string::npos);
  std::string nots;
  for (int i = 0; i < 10000; ++i) nots += "not ";
  error_column(nots + "a", &message);
  CHECK(message.find("nested too deeply") != std::string::npos);
  // Within the limit all is well.
  std::string fine = "1";
  for (int i = 0; i < 50; ++i) fine = "(" + fine + " + 1)";
  CHECK_NOTHROW(parse(fine));
}

TEST_CASE("x[a:b] is a slice with integer-literal bounds, either left out", "[parser]") {
  CHECK(tree("xs[1:3]") == "([:] xs 1 3)");
  CHECK(tree("xs[-3:]") == "([:] xs -3 end)");
  CHECK(tree("xs[:2]") == "([:] xs 0 2)");
  CHECK(tree("xs[:]") == "([:] xs 0 end)");
  CHECK(tree("a.b[1:-1].c") == "(. ([:] (. a b) 1 -1) c)");
  CHECK(tree("xs[1]") == "([] xs 1)");  // an index stays an index
  std::string message;
  CHECK(error_column("xs[a:2]", &message) == 3);
  CHECK(message == "a slice bound must be an integer literal");
  CHECK(error_column("xs[1:b]", &message) == 5);
  CHECK(error_column("xs[1:2", &message) == 6);
}
