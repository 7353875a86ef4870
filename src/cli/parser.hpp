#pragma once
// remoteable::cli parser: the AST of the CLI expression language and the parser that builds it.
//
// The language is small and Python-like. Precedence, loosest first (Python's order; `!` is C's):
//
//   statement   := expr [ '=' expr ]            target must be `x.name` or `x[key]`
//   expr        := 'not' expr | comparison
//   comparison  := bit_or [ ('=='|'!='|'<'|'<='|'>'|'>=') bit_or ]     (no chains: a < b < c)
//   bit_or      := bit_xor { '|' bit_xor }
//   bit_xor     := bit_and { '^' bit_and }
//   bit_and     := shift { '&' shift }
//   shift       := sum { ('<<'|'>>') sum }
//   sum         := term { ('+'|'-') term }
//   term        := unary { ('*'|'/'|'%') unary }
//   unary       := ('-'|'~'|'!') unary | postfix
//   postfix     := primary { '.' NAME | '(' args ')' | '[' expr ']' }
//   primary     := NAME | literal | '(' expr ')' | '[' items ']' | '{' STRING ':' expr, ... '}'
//                | builtin '(' args ')'
//
// Builtins are the bare names store, len, str, bool, attach, detach, browse and describe when
// called. store(x) and len(x) may appear anywhere; the others evaluate or act, so they must be
// the whole statement. Any other bare name is an export.
//
// Plain functions over plain data: no state, no threads.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "cli/lexer.hpp"
#include <remoteable/handle.hpp>

namespace remoteable::cli {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

/// A constant: none, bool, integer, float, string, bytes. Never holds a handle.
struct Literal {
  Value value;
};
/// An export, fetched by name.
struct Name {
  std::string name;
};
/// `object.name`
struct Attribute {
  ExprPtr object;
  std::string name;
};
/// `callee(args...)`. A callee that is an Attribute is a method call.
struct Call {
  ExprPtr callee;
  std::vector<ExprPtr> args;
};
/// `object[key]`
struct Index {
  ExprPtr object;
  ExprPtr key;
};
struct Unary {
  UnaryOp op;
  ExprPtr operand;
};
struct Binary {
  BinaryOp op;
  ExprPtr left;
  ExprPtr right;
};
/// `[a, b, ...]`
struct ListDisplay {
  std::vector<ExprPtr> items;
};
/// `{"key": value, ...}`: keys are string literals.
struct MapDisplay {
  std::vector<std::pair<std::string, ExprPtr>> entries;
};

enum class BuiltinKind { store, len, str, boolean, attach, detach, browse, describe };
std::string_view to_string(BuiltinKind kind) noexcept;

/// `store(x)`, `len(x)`, `str(x)`, `bool(x)`, `attach(x, "name")`, `detach("name")`, `browse()`,
/// `describe(x)`. Arity and argument kinds are checked by the parser.
struct Builtin {
  BuiltinKind kind;
  std::vector<ExprPtr> args;
};

struct Expr {
  std::variant<Literal, Name, Attribute, Call, Index, Unary, Binary, ListDisplay, MapDisplay,
               Builtin>
      node;
  std::size_t column = 0;  ///< byte offset in the source where the expression starts
};

/// One line: an expression, or an assignment `target = value`.
struct Statement {
  ExprPtr target;  ///< null unless an assignment; then an Attribute or Index
  ExprPtr value;
};

/// Parses one statement. Throws SyntaxError with the column of the first offending token.
Statement parse(std::string_view source);

/// Parses one expression that must yield a handle or value without acting: no assignment, and
/// only the builtins store() and len(). Used for `remoteable HOST:PORT describe EXPR`.
ExprPtr parse_expression(std::string_view source);

/// A fully parenthesised rendering of the tree, for tests and debugging:
/// `(+ 1 (* 2 3))`, `(. root child)`, `(call (. root child) 0)`, `(= (. a b) 1)`.
std::string dump(const Expr& expr);
std::string dump(const Statement& statement);

/// The source spelling of a unary operator: "-", "~", "not" (binary operators are spelled as
/// remoteable::spelling spells them).
std::string_view source_spelling(UnaryOp op) noexcept;

}  // namespace remoteable::cli
