#include "cli/evaluator.hpp"

#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>

namespace remoteable::cli {

namespace {

// What an expression became: a literal known here, or a handle to a result on the server.
using Operand = std::variant<Value, Handle>;

bool contains_handle(const Value& value) {
  return std::visit(
      [](const auto& v) -> bool {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, Handle>) {
          return true;
        } else if constexpr (std::is_same_v<V, Value::List>) {
          for (auto& item : v)
            if (contains_handle(item)) return true;
          return false;
        } else if constexpr (std::is_same_v<V, Value::Map>) {
          for (auto& [key, item] : v)
            if (contains_handle(item)) return true;
          return false;
        } else {
          return false;
        }
      },
      value.storage());
}

// GCC 12 miscompiles co_await inside braced initialisers and constructor arguments (temporaries
// destroyed twice), so every awaited result lands in a named local first.

// The parser lets only string literals through as attach()/detach() names.
const std::string& string_argument(const Expr& e) {
  return std::get<std::string>(std::get<Literal>(e.node).value.storage());
}

// Builds the chain for one expression. Nothing here waits: every Handle operation returns at
// once, so the whole expression goes out pipelined.
class ChainBuilder {
 public:
  explicit ChainBuilder(const Client& client) : client_(client) {}

  Operand build(const Expr& e) const {
    return std::visit([&](const auto& n) -> Operand { return build_node(n); }, e.node);
  }

  // A handle for an operand: a literal is stored on the server first (no round trip).
  Handle handle(const Expr& e) const { return to_handle(build(e)); }

  Handle to_handle(Operand operand) const {
    if (auto* h = std::get_if<Handle>(&operand)) return std::move(*h);
    return client_.store(std::move(std::get<Value>(operand)));
  }

  Value value(const Expr& e) const {
    Operand operand = build(e);
    if (auto* h = std::get_if<Handle>(&operand)) return Value(std::move(*h));
    return std::move(std::get<Value>(operand));
  }

 private:
  Operand build_node(const Literal& n) const { return n.value; }
  Operand build_node(const Name& n) const { return client_.fetch(n.name); }
  Operand build_node(const Attribute& n) const { return handle(*n.object).attr(n.name); }

  std::vector<Value> values(const std::vector<ExprPtr>& exprs) const {
    std::vector<Value> out;
    out.reserve(exprs.size());
    for (auto& e : exprs) out.push_back(value(*e));
    return out;
  }

  Operand build_node(const Call& n) const {
    // `obj.name(args)` is one method call, not an attribute read followed by a call.
    if (auto* method = std::get_if<Attribute>(&n.callee->node))
      return handle(*method->object).call_list(method->name, values(n.args));
    return handle(*n.callee).invoke_list(values(n.args));
  }

  Operand build_node(const Index& n) const { return handle(*n.object).item(value(*n.key)); }
  Operand build_node(const Unary& n) const { return handle(*n.operand).unary(n.op); }

  Operand build_node(const Binary& n) const {
    Operand left = build(*n.left);
    Operand right = build(*n.right);
    if (auto* l = std::get_if<Handle>(&left)) {
      Value operand = std::holds_alternative<Handle>(right)
                          ? Value(std::get<Handle>(std::move(right)))
                          : std::get<Value>(std::move(right));
      return l->binary(n.op, std::move(operand));
    }
    if (auto* r = std::get_if<Handle>(&right))
      return r->binary(n.op, std::get<Value>(std::move(left)), /*reflected=*/true);
    return to_handle(std::move(left)).binary(n.op, std::get<Value>(std::move(right)));
  }

  Operand build_node(const ListDisplay& n) const { return Value(values(n.items)); }

  Operand build_node(const MapDisplay& n) const {
    Value::Map map;
    for (auto& [key, item] : n.entries) map.insert_or_assign(key, value(*item));
    return Value(std::move(map));
  }

  Operand build_node(const Builtin& n) const {
    switch (n.kind) {
      case BuiltinKind::store: return client_.store(value(*n.args.at(0)));
      case BuiltinKind::len: return handle(*n.args.at(0)).len();
      default: break;
    }
    // The parser keeps the other builtins at the top of a statement, where evaluate() takes them.
    throw std::logic_error("remoteable cli: " + std::string(to_string(n.kind)) +
                           "() inside an expression");
  }

  const Client& client_;
};

}  // namespace

asio::awaitable<Outcome> Evaluator::evaluate(const Statement& statement) const {
  ChainBuilder chain(client_);

  if (statement.target) {
    Value value = chain.value(*statement.value);
    if (auto* attr = std::get_if<Attribute>(&statement.target->node)) {
      co_await chain.handle(*attr->object).set(attr->name, std::move(value));
    } else {
      auto& index = std::get<Index>(statement.target->node);
      Handle object = chain.handle(*index.object);
      co_await object.set_item(chain.value(*index.key), std::move(value));
    }
    co_return NoResult{};
  }

  const Expr& e = *statement.value;
  if (auto* builtin = std::get_if<Builtin>(&e.node)) {
    switch (builtin->kind) {
      case BuiltinKind::str: {
        std::string text = co_await chain.handle(*builtin->args.at(0)).str();
        co_return Value(std::move(text));
      }
      case BuiltinKind::boolean: {
        bool truth = co_await chain.handle(*builtin->args.at(0)).truthy();
        co_return Value(truth);
      }
      case BuiltinKind::attach: {
        Handle target = chain.handle(*builtin->args.at(0));
        co_await client_.attach(target, string_argument(*builtin->args.at(1)));
        co_return NoResult{};
      }
      case BuiltinKind::detach:
        co_await client_.detach(string_argument(*builtin->args.at(0)));
        co_return NoResult{};
      case BuiltinKind::browse: {
        Outcome names = co_await browse();
        co_return names;
      }
      case BuiltinKind::describe: {
        Outcome description = co_await describe(*builtin->args.at(0));
        co_return description;
      }
      case BuiltinKind::store:
      case BuiltinKind::len: break;
    }
  }

  Operand result = chain.build(e);
  if (auto* literal = std::get_if<Value>(&result); literal && !contains_handle(*literal))
    co_return std::move(*literal);
  // A list or map display that holds handles is stored, so the server resolves them.
  Handle h = chain.to_handle(std::move(result));
  Value value = co_await h.get();
  co_return value;
}

asio::awaitable<Outcome> Evaluator::describe(const Expr& expr) const {
  ChainBuilder chain(client_);
  Description description = co_await chain.handle(expr).describe();
  co_return description;
}

asio::awaitable<Outcome> Evaluator::browse() const {
  std::vector<std::string> names = co_await client_.browse();
  co_return ExportNames{std::move(names)};
}

}  // namespace remoteable::cli
