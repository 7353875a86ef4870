#include "cli/parser.hpp"

#include <cstdint>
#include <limits>
#include <optional>

#include "cli/format.hpp"

namespace remoteable::cli {

std::string_view to_string(BuiltinKind kind) noexcept {
  switch (kind) {
    case BuiltinKind::store: return "store";
    case BuiltinKind::len: return "len";
    case BuiltinKind::str: return "str";
    case BuiltinKind::boolean: return "bool";
    case BuiltinKind::attach: return "attach";
    case BuiltinKind::detach: return "detach";
    case BuiltinKind::browse: return "browse";
    case BuiltinKind::describe: return "describe";
  }
  return "?";
}

// The language spells logical negation as Python does; every other operator as C++ does.
std::string_view source_spelling(UnaryOp op) noexcept {
  return op == UnaryOp::logical_not ? "not" : remoteable::spelling(op);
}

namespace {

std::optional<BuiltinKind> builtin_named(std::string_view name) {
  if (name == "store") return BuiltinKind::store;
  if (name == "len") return BuiltinKind::len;
  if (name == "str") return BuiltinKind::str;
  if (name == "bool") return BuiltinKind::boolean;
  if (name == "attach") return BuiltinKind::attach;
  if (name == "detach") return BuiltinKind::detach;
  if (name == "browse") return BuiltinKind::browse;
  if (name == "describe") return BuiltinKind::describe;
  return std::nullopt;
}

}  // namespace

bool is_builtin_name(std::string_view name) noexcept { return builtin_named(name).has_value(); }

namespace {

// Builtins that evaluate or act on the server cannot feed a pipelined chain.
bool nests(BuiltinKind kind) { return kind == BuiltinKind::store || kind == BuiltinKind::len; }

template <class Node>
ExprPtr make_expr(Node node, std::size_t column) {
  auto e = std::make_unique<Expr>();
  e->node = std::move(node);
  e->column = column;
  return e;
}

std::optional<BinaryOp> comparison_op(TokenKind kind) {
  switch (kind) {
    case TokenKind::eq: return BinaryOp::eq;
    case TokenKind::ne: return BinaryOp::ne;
    case TokenKind::lt: return BinaryOp::lt;
    case TokenKind::le: return BinaryOp::le;
    case TokenKind::gt: return BinaryOp::gt;
    case TokenKind::ge: return BinaryOp::ge;
    default: return std::nullopt;
  }
}

constexpr std::uint64_t int64_max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

class Parser {
 public:
  explicit Parser(std::string_view source) : tokens_(tokenize(source)) {}

  Statement statement() {
    if (at(TokenKind::end)) throw SyntaxError("expected an expression", current().column);
    Statement s;
    // `let NAME ...` or `let = ...`; `let` stays an ordinary name elsewhere (`let.x`, `let`).
    if (at(TokenKind::name) && current().text == "let" &&
        (ahead(1).kind == TokenKind::name || ahead(1).kind == TokenKind::assign))
      return let_statement();
    ExprPtr first = expr();
    if (at(TokenKind::assign)) {
      const Token& eq = advance();
      check_target(*first, eq);
      s.target = std::move(first);
      if (at(TokenKind::end)) throw SyntaxError("expected an expression after '='", current().column);
      s.value = expr();
    } else {
      s.value = std::move(first);
    }
    if (!at(TokenKind::end)) unexpected();
    // The value of a plain expression statement may be any builtin; everything else only those
    // that yield a handle without a round trip.
    if (s.target) {
      check_builtins(*s.target, false);
      check_builtins(*s.value, false);
    } else {
      check_builtins(*s.value, true);
    }
    return s;
  }

  Statement let_statement() {
    advance();  // let
    if (!at(TokenKind::name)) {
      if (at(TokenKind::end)) throw SyntaxError("expected a name after 'let'", current().column);
      throw SyntaxError("expected a name after 'let', found " + found(current()), current().column);
    }
    const Token& name = advance();
    if (is_builtin_name(name.text) || name.text == "let")
      throw SyntaxError("'" + name.text + "' is a builtin; choose another name", name.column);
    expect(TokenKind::assign, "after 'let " + name.text + "'");
    if (at(TokenKind::end)) throw SyntaxError("expected an expression after '='", current().column);
    Statement s;
    s.binding = name.text;
    s.value = expr();
    if (!at(TokenKind::end)) unexpected();
    check_builtins(*s.value, false);
    return s;
  }

  ExprPtr lone_expression() {
    if (at(TokenKind::end)) throw SyntaxError("expected an expression", current().column);
    ExprPtr e = expr();
    if (!at(TokenKind::end)) unexpected();
    check_builtins(*e, false);
    return e;
  }

 private:
  const Token& current() const { return tokens_[pos_]; }
  const Token& ahead(std::size_t n) const {
    return tokens_[std::min(pos_ + n, tokens_.size() - 1)];
  }
  bool at(TokenKind kind) const { return current().kind == kind; }
  const Token& advance() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }

  // How a token reads in a message: "')'", "name 'abc'", "number 12", "string", "end of input".
  static std::string found(const Token& t) {
    switch (t.kind) {
      case TokenKind::name: return "name '" + t.text + "'";
      case TokenKind::integer:
      case TokenKind::floating: return "number " + t.text;
      case TokenKind::text: return "string";
      case TokenKind::bytes: return "bytes literal";
      default: return std::string(describe(t.kind));
    }
  }

  [[noreturn]] void unexpected() const {
    throw SyntaxError("unexpected " + found(current()), current().column);
  }

  const Token& expect(TokenKind kind, std::string_view context) {
    if (!at(kind)) {
      std::string message = "expected " + std::string(describe(kind));
      if (!context.empty()) message += " " + std::string(context);
      throw SyntaxError(message + ", found " + found(current()), current().column);
    }
    return advance();
  }

  void check_target(const Expr& target, const Token& eq) {
    if (std::holds_alternative<Attribute>(target.node) || std::holds_alternative<Index>(target.node))
      return;
    if (auto* name = std::get_if<Name>(&target.node))
      throw SyntaxError("cannot assign to a bare name; use 'let " + name->name +
                            " = EXPR' for a local name, or attach(EXPR, \"" + name->name +
                            "\") to export it",
                        target.column);
    (void)eq;
    throw SyntaxError("cannot assign to this expression; assign to x.name or x[key]",
                      target.column);
  }

  void check_builtins(const Expr& e, bool whole) {
    std::visit(
        [&](const auto& n) {
          using N = std::decay_t<decltype(n)>;
          if constexpr (std::is_same_v<N, Builtin>) {
            if (!whole && !nests(n.kind))
              throw SyntaxError(std::string(to_string(n.kind)) +
                                    "() must be the whole expression, it cannot be part of one",
                                e.column);
            for (auto& a : n.args) check_builtins(*a, false);
          } else if constexpr (std::is_same_v<N, Attribute>) {
            check_builtins(*n.object, false);
          } else if constexpr (std::is_same_v<N, Call>) {
            check_builtins(*n.callee, false);
            for (auto& a : n.args) check_builtins(*a, false);
          } else if constexpr (std::is_same_v<N, Index>) {
            check_builtins(*n.object, false);
            check_builtins(*n.key, false);
          } else if constexpr (std::is_same_v<N, Slice>) {
            check_builtins(*n.object, false);
          } else if constexpr (std::is_same_v<N, Unary>) {
            check_builtins(*n.operand, false);
          } else if constexpr (std::is_same_v<N, Binary> || std::is_same_v<N, Logical>) {
            check_builtins(*n.left, false);
            check_builtins(*n.right, false);
          } else if constexpr (std::is_same_v<N, ListDisplay>) {
            for (auto& a : n.items) check_builtins(*a, false);
          } else if constexpr (std::is_same_v<N, MapDisplay>) {
            for (auto& [k, v] : n.entries) check_builtins(*v, false);
          }
        },
        e.node);
  }

  // Counts nesting on the way down, so that a deep expression is an error, not a stack overflow.
  struct Nested {
    explicit Nested(Parser& p) : parser(p) {
      if (++parser.depth_ > max_nesting)
        throw SyntaxError("expression nested too deeply (limit " + std::to_string(max_nesting) + ")",
                          parser.current().column);
    }
    ~Nested() { --parser.depth_; }
    Parser& parser;
  };
  // A left-deep chain (a.b.c, 1 + 2 + 3) nests its tree as deeply as it is long: each link
  // counts as a level for the rest of the chain.
  struct Links {
    explicit Links(Parser& p) : parser(p) {}
    ~Links() { parser.depth_ -= count; }
    void add() {
      ++count;
      if (++parser.depth_ > max_nesting)
        throw SyntaxError("expression nested too deeply (limit " + std::to_string(max_nesting) + ")",
                          parser.current().column);
    }
    Parser& parser;
    std::size_t count = 0;
  };

  ExprPtr expr() {
    Nested nested(*this);
    return logical(TokenKind::kw_or, LogicalOp::or_);
  }

  // or_test and and_test: left-associative, `or` looser than `and`.
  ExprPtr logical(TokenKind keyword, LogicalOp op) {
    auto next = [&] { return op == LogicalOp::or_ ? logical(TokenKind::kw_and, LogicalOp::and_) : not_test(); };
    ExprPtr left = next();
    Links links(*this);
    while (at(keyword)) {
      links.add();
      advance();
      if (at(TokenKind::end)) throw SyntaxError("expected an expression", current().column);
      ExprPtr right = next();
      std::size_t column = left->column;
      left = make_expr(Logical{op, std::move(left), std::move(right)}, column);
    }
    return left;
  }

  ExprPtr not_test() {
    if (at(TokenKind::kw_not)) {
      Nested nested(*this);
      std::size_t column = advance().column;
      ExprPtr operand = not_test();
      return make_expr(Unary{UnaryOp::logical_not, std::move(operand)}, column);
    }
    return comparison();
  }

  ExprPtr comparison() {
    ExprPtr left = bit_or();
    auto op = comparison_op(current().kind);
    if (!op) return left;
    advance();
    ExprPtr right = bit_or();
    if (comparison_op(current().kind))
      throw SyntaxError("chained comparisons are not supported; use parentheses",
                        current().column);
    std::size_t column = left->column;
    return make_expr(Binary{*op, std::move(left), std::move(right)}, column);
  }

  template <class Next>
  ExprPtr left_assoc(Next next, std::initializer_list<std::pair<TokenKind, BinaryOp>> ops) {
    ExprPtr left = (this->*next)();
    Links links(*this);
    for (;;) {
      std::optional<BinaryOp> op;
      for (auto& [kind, bop] : ops)
        if (at(kind)) op = bop;
      if (!op) return left;
      links.add();
      advance();
      ExprPtr right = (this->*next)();
      std::size_t column = left->column;
      left = make_expr(Binary{*op, std::move(left), std::move(right)}, column);
    }
  }

  ExprPtr bit_or() { return left_assoc(&Parser::bit_xor, {{TokenKind::pipe, BinaryOp::bit_or}}); }
  ExprPtr bit_xor() { return left_assoc(&Parser::bit_and, {{TokenKind::caret, BinaryOp::bit_xor}}); }
  ExprPtr bit_and() { return left_assoc(&Parser::shift, {{TokenKind::amp, BinaryOp::bit_and}}); }
  ExprPtr shift() {
    return left_assoc(&Parser::sum,
                      {{TokenKind::shl, BinaryOp::shl}, {TokenKind::shr, BinaryOp::shr}});
  }
  ExprPtr sum() {
    return left_assoc(&Parser::term,
                      {{TokenKind::plus, BinaryOp::add}, {TokenKind::minus, BinaryOp::sub}});
  }
  ExprPtr term() {
    return left_assoc(&Parser::unary, {{TokenKind::star, BinaryOp::mul},
                                       {TokenKind::slash, BinaryOp::div},
                                       {TokenKind::percent, BinaryOp::mod}});
  }

  static bool starts_postfix(TokenKind kind) {
    return kind == TokenKind::dot || kind == TokenKind::lparen || kind == TokenKind::lbracket;
  }

  ExprPtr unary() {
    Nested nested(*this);
    std::optional<UnaryOp> op;
    if (at(TokenKind::minus)) op = UnaryOp::neg;
    else if (at(TokenKind::tilde)) op = UnaryOp::invert;
    else if (at(TokenKind::bang)) op = UnaryOp::logical_not;
    if (!op) return postfix();
    std::size_t column = advance().column;
    // -9223372036854775808 is the one literal whose magnitude alone does not fit.
    if (*op == UnaryOp::neg && at(TokenKind::integer) && current().integer > int64_max &&
        !starts_postfix(ahead(1).kind)) {
      advance();
      return make_expr(Literal{Value(std::numeric_limits<std::int64_t>::min())}, column);
    }
    ExprPtr operand = unary();
    // A negative number is a constant, passed by value like any other literal.
    if (*op == UnaryOp::neg) {
      if (auto* lit = std::get_if<Literal>(&operand->node)) {
        auto& storage = lit->value.storage();
        if (auto* i = std::get_if<std::int64_t>(&storage)) {
          if (*i != std::numeric_limits<std::int64_t>::min())
            return make_expr(Literal{Value(-*i)}, column);
        } else if (auto* d = std::get_if<double>(&storage)) {
          return make_expr(Literal{Value(-*d)}, column);
        }
      }
    }
    return make_expr(Unary{*op, std::move(operand)}, column);
  }

  std::vector<ExprPtr> arguments(TokenKind close, std::string_view context) {
    std::vector<ExprPtr> args;
    while (!at(close)) {
      if (at(TokenKind::end) || at(TokenKind::comma)) unexpected();
      args.push_back(expr());
      if (!at(TokenKind::comma)) break;
      advance();
    }
    expect(close, context);
    return args;
  }

  ExprPtr postfix() {
    ExprPtr e = primary();
    Links links(*this);
    for (;;) {
      if (starts_postfix(current().kind)) links.add();
      if (at(TokenKind::dot)) {
        advance();
        const Token& name = expect(TokenKind::name, "after '.'");
        std::size_t column = e->column;
        e = make_expr(Attribute{std::move(e), name.text}, column);
      } else if (at(TokenKind::lparen)) {
        advance();
        auto args = arguments(TokenKind::rparen, "to close the call");
        std::size_t column = e->column;
        e = make_expr(Call{std::move(e), std::move(args)}, column);
      } else if (at(TokenKind::lbracket)) {
        advance();
        if (at(TokenKind::rbracket)) throw SyntaxError("expected an index", current().column);
        std::size_t column = e->column;
        if (at(TokenKind::colon)) {  // x[:b], x[:]
          e = slice(std::move(e), nullptr, column);
          continue;
        }
        ExprPtr key = expr();
        if (at(TokenKind::colon)) {  // x[a:b], x[a:]
          e = slice(std::move(e), std::move(key), column);
          continue;
        }
        expect(TokenKind::rbracket, "to close the index");
        e = make_expr(Index{std::move(e), std::move(key)}, column);
      } else {
        return e;
      }
    }
  }

  /// A slice bound: an integer literal, negative or not.
  static std::int64_t slice_bound(const Expr& bound) {
    const Expr* e = &bound;
    bool negative = false;
    if (auto* u = std::get_if<Unary>(&e->node); u && u->op == UnaryOp::neg) {
      negative = true;
      e = u->operand.get();
    }
    if (auto* l = std::get_if<Literal>(&e->node); l && l->value.holds<std::int64_t>()) {
      auto v = l->value.as<std::int64_t>();
      return negative ? -v : v;
    }
    throw SyntaxError("a slice bound must be an integer literal", bound.column);
  }

  /// The rest of `object[start:stop]`, at the ':' (`start` null when left out).
  ExprPtr slice(ExprPtr object, ExprPtr start, std::size_t column) {
    expect(TokenKind::colon, "");
    Slice s{std::move(object)};
    if (start) s.start = slice_bound(*start);
    if (!at(TokenKind::rbracket)) s.stop = slice_bound(*expr());
    expect(TokenKind::rbracket, "to close the slice");
    return make_expr(std::move(s), column);
  }

  ExprPtr builtin(BuiltinKind kind, std::size_t column) {
    expect(TokenKind::lparen, "");
    auto args = arguments(TokenKind::rparen, "to close the call");
    std::size_t close = tokens_[pos_ - 1].column;
    std::size_t want = kind == BuiltinKind::browse ? 0 : kind == BuiltinKind::attach ? 2 : 1;
    std::string name(to_string(kind));
    if (args.size() != want) {
      std::string shape = kind == BuiltinKind::browse   ? "()"
                          : kind == BuiltinKind::attach ? "(EXPR, \"name\")"
                          : kind == BuiltinKind::detach ? "(\"name\")"
                                                        : "(EXPR)";
      throw SyntaxError(name + "() takes " + std::to_string(want) + " argument" +
                            (want == 1 ? "" : "s") + ": " + name + shape,
                        args.size() > want ? args[want]->column : close);
    }
    if (kind == BuiltinKind::attach || kind == BuiltinKind::detach) {
      const Expr& n = *args.back();
      auto* lit = std::get_if<Literal>(&n.node);
      if (!lit || !lit->value.holds<std::string>())
        throw SyntaxError(name + "() takes the export name as a string literal", n.column);
    }
    return make_expr(Builtin{kind, std::move(args)}, column);
  }

  ExprPtr primary() {
    const Token& t = current();
    std::size_t column = t.column;
    switch (t.kind) {
      case TokenKind::name: {
        advance();
        if (auto kind = builtin_named(t.text); kind && at(TokenKind::lparen))
          return builtin(*kind, column);
        return make_expr(Name{t.text}, column);
      }
      case TokenKind::integer:
        if (t.integer > int64_max)
          throw SyntaxError("integer literal too large for 64 bits", column);
        advance();
        return make_expr(Literal{Value(static_cast<std::int64_t>(t.integer))}, column);
      case TokenKind::floating:
        advance();
        return make_expr(Literal{Value(t.floating)}, column);
      case TokenKind::text:
        advance();
        return make_expr(Literal{Value(t.text)}, column);
      case TokenKind::bytes: {
        advance();
        Bytes b;
        b.reserve(t.text.size());
        for (char c : t.text) b.push_back(static_cast<std::byte>(c));
        return make_expr(Literal{Value(std::move(b))}, column);
      }
      case TokenKind::kw_true:
        advance();
        return make_expr(Literal{Value(true)}, column);
      case TokenKind::kw_false:
        advance();
        return make_expr(Literal{Value(false)}, column);
      case TokenKind::kw_none:
        advance();
        return make_expr(Literal{Value(None{})}, column);
      case TokenKind::lparen: {
        advance();
        if (at(TokenKind::rparen)) throw SyntaxError("expected an expression", current().column);
        ExprPtr inner = expr();
        expect(TokenKind::rparen, "to close '('");
        return inner;
      }
      case TokenKind::lbracket: {
        advance();
        auto items = arguments(TokenKind::rbracket, "to close the list");
        return make_expr(ListDisplay{std::move(items)}, column);
      }
      case TokenKind::lbrace: return map_display();
      default: break;
    }
    if (t.kind == TokenKind::end) throw SyntaxError("expected an expression", t.column);
    throw SyntaxError("expected an expression, found " + found(t), t.column);
  }

  ExprPtr map_display() {
    std::size_t column = advance().column;
    MapDisplay map;
    while (!at(TokenKind::rbrace)) {
      if (!at(TokenKind::text)) {
        if (at(TokenKind::end)) unexpected();
        throw SyntaxError("map keys must be string literals", current().column);
      }
      std::string key = advance().text;
      expect(TokenKind::colon, "after a map key");
      map.entries.emplace_back(std::move(key), expr());
      if (!at(TokenKind::comma)) break;
      advance();
    }
    expect(TokenKind::rbrace, "to close the map");
    return make_expr(std::move(map), column);
  }

  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
  std::size_t depth_ = 0;
};

void dump_to(std::string& out, const Expr& e);

void dump_list(std::string& out, const std::vector<ExprPtr>& items) {
  for (auto& item : items) {
    out += ' ';
    dump_to(out, *item);
  }
}

void dump_to(std::string& out, const Expr& e) {
  std::visit(
      [&](const auto& n) {
        using N = std::decay_t<decltype(n)>;
        if constexpr (std::is_same_v<N, Literal>) {
          out += format_repr(n.value);
        } else if constexpr (std::is_same_v<N, Name>) {
          out += n.name;
        } else if constexpr (std::is_same_v<N, Attribute>) {
          out += "(. ";
          dump_to(out, *n.object);
          out += ' ' + n.name + ')';
        } else if constexpr (std::is_same_v<N, Call>) {
          out += "(call ";
          dump_to(out, *n.callee);
          dump_list(out, n.args);
          out += ')';
        } else if constexpr (std::is_same_v<N, Index>) {
          out += "([] ";
          dump_to(out, *n.object);
          out += ' ';
          dump_to(out, *n.key);
          out += ')';
        } else if constexpr (std::is_same_v<N, Slice>) {
          out += "([:] ";
          dump_to(out, *n.object);
          out += ' ' + std::to_string(n.start) + ' ';
          out += n.stop == std::numeric_limits<std::int64_t>::max() ? std::string("end") : std::to_string(n.stop);
          out += ')';
        } else if constexpr (std::is_same_v<N, Unary>) {
          out += '(';
          out += source_spelling(n.op);
          out += ' ';
          dump_to(out, *n.operand);
          out += ')';
        } else if constexpr (std::is_same_v<N, Binary>) {
          out += '(';
          out += remoteable::spelling(n.op);
          out += ' ';
          dump_to(out, *n.left);
          out += ' ';
          dump_to(out, *n.right);
          out += ')';
        } else if constexpr (std::is_same_v<N, Logical>) {
          out += n.op == LogicalOp::and_ ? "(and " : "(or ";
          dump_to(out, *n.left);
          out += ' ';
          dump_to(out, *n.right);
          out += ')';
        } else if constexpr (std::is_same_v<N, ListDisplay>) {
          out += "(list";
          dump_list(out, n.items);
          out += ')';
        } else if constexpr (std::is_same_v<N, MapDisplay>) {
          out += "(map";
          for (auto& [k, v] : n.entries) {
            out += ' ' + format_repr(Value(k)) + ' ';
            dump_to(out, *v);
          }
          out += ')';
        } else if constexpr (std::is_same_v<N, Builtin>) {
          out += '(';
          out += to_string(n.kind);
          dump_list(out, n.args);
          out += ')';
        }
      },
      e.node);
}

}  // namespace

Statement parse(std::string_view source) { return Parser(source).statement(); }

ExprPtr parse_expression(std::string_view source) { return Parser(source).lone_expression(); }

std::string dump(const Expr& expr) {
  std::string out;
  dump_to(out, expr);
  return out;
}

std::string dump(const Statement& statement) {
  if (!statement.binding.empty()) return "(let " + statement.binding + ' ' + dump(*statement.value) + ')';
  if (!statement.target) return dump(*statement.value);
  return "(= " + dump(*statement.target) + ' ' + dump(*statement.value) + ')';
}

}  // namespace remoteable::cli
