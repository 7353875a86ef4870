#include "cli/evaluator.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <variant>

#include "cli/suggest.hpp"

namespace remoteable::cli {

namespace {

// What an expression became: a literal known here, or a handle to a result on the server.
using Operand = std::variant<Value, Handle>;


// GCC 12 miscompiles co_await inside braced initialisers and constructor arguments (temporaries
// destroyed twice), so every awaited result lands in a named local first.

// The parser lets only string literals through as attach()/detach() names.
const std::string& string_argument(const Expr& e) {
  return std::get<std::string>(std::get<Literal>(e.node).value.storage());
}

// The sub-expressions of `e`, in evaluation order.
std::vector<const Expr*> children(const Expr& e) {
  std::vector<const Expr*> out;
  auto all = [&](const std::vector<ExprPtr>& v) {
    for (auto& x : v) out.push_back(x.get());
  };
  std::visit(
      [&](const auto& n) {
        using N = std::decay_t<decltype(n)>;
        if constexpr (std::is_same_v<N, Attribute>) {
          out.push_back(n.object.get());
        } else if constexpr (std::is_same_v<N, Call>) {
          out.push_back(n.callee.get());
          all(n.args);
        } else if constexpr (std::is_same_v<N, Index>) {
          out.push_back(n.object.get());
          out.push_back(n.key.get());
        } else if constexpr (std::is_same_v<N, Slice>) {
          out.push_back(n.object.get());
        } else if constexpr (std::is_same_v<N, Unary>) {
          out.push_back(n.operand.get());
        } else if constexpr (std::is_same_v<N, Binary> || std::is_same_v<N, Logical>) {
          out.push_back(n.left.get());
          out.push_back(n.right.get());
        } else if constexpr (std::is_same_v<N, ListDisplay>) {
          all(n.items);
        } else if constexpr (std::is_same_v<N, Builtin>) {
          all(n.args);
        } else if constexpr (std::is_same_v<N, MapDisplay>) {
          for (auto& [key, item] : n.entries) out.push_back(item.get());
        }
      },
      e.node);
  return out;
}

// A name or a chain of attribute reads on one: safe to evaluate again (it calls nothing).
bool is_path(const Expr& e) {
  if (std::holds_alternative<Name>(e.node)) return true;
  if (auto* a = std::get_if<Attribute>(&e.node)) return is_path(*a->object);
  return false;
}

Operand operand_of(const Value& bound) {
  if (auto* h = std::get_if<Handle>(&bound.storage())) return *h;
  return bound;
}

using Names = std::map<std::string, Value>;
// The value each and/or node came to, found before the rest of its expression is built.
using Resolved = std::unordered_map<const Expr*, Operand>;

// Builds the chain for one expression. Nothing here waits: every Handle operation returns at
// once, so the whole expression goes out pipelined. (and/or are resolved first, by resolve().)
class ChainBuilder {
 public:
  ChainBuilder(const Client& client, const Names& names) : client_(client), names_(names) {}

  Operand build(const Expr& e) const {
    if (std::holds_alternative<Logical>(e.node)) {
      auto it = resolved_.find(&e);
      if (it == resolved_.end()) throw std::logic_error("remoteable cli: and/or not resolved");
      Operand out = std::move(it->second);
      resolved_.erase(it);
      return out;
    }
    return std::visit([&](const auto& n) -> Operand { return build_node(n); }, e.node);
  }

  /// Evaluates every and/or in `e` that evaluating `e` reaches, innermost first, so that
  /// build() finds their results: the left operand, and the right one only if the left's truth
  /// calls for it.
  asio::awaitable<void> resolve(const Expr& e) const {
    auto* logical = std::get_if<Logical>(&e.node);
    if (!logical) {
      for (const Expr* child : children(e)) co_await resolve(*child);
      co_return;
    }
    co_await resolve(*logical->left);
    Operand left = build(*logical->left);
    Handle probe = to_handle(left);
    bool truth = co_await probe.truthy();
    if (truth == (logical->op == LogicalOp::or_)) {
      resolved_.insert_or_assign(&e, std::move(left));
      co_return;
    }
    co_await resolve(*logical->right);
    Operand right = build(*logical->right);
    resolved_.insert_or_assign(&e, std::move(right));
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
  Operand build_node(const Name& n) const {
    if (auto it = names_.find(n.name); it != names_.end()) return operand_of(it->second);
    return client_.fetch(n.name);
  }
  Operand build_node(const Logical&) const { throw std::logic_error("remoteable cli: and/or not resolved"); }
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
  Operand build_node(const Slice& n) const { return handle(*n.object).slice(n.start, n.stop); }
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
  const Names& names_;
  mutable Resolved resolved_;
};

// The handles in `value`, in the order format() prints them, at most `limit`.
void collect_handles(const Value& value, std::vector<Handle>& out, std::size_t limit) {
  if (out.size() >= limit) return;
  std::visit(
      [&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, Handle>) {
          out.push_back(v);
        } else if constexpr (std::is_same_v<V, Value::List>) {
          for (auto& item : v) collect_handles(item, out, limit);
        } else if constexpr (std::is_same_v<V, Value::Map>) {
          for (auto& [key, item] : v) collect_handles(item, out, limit);
        }
      },
      value.storage());
}

// The first Attribute read or method named `member` on a dotted path, in `e`.
const Expr* path_reading(const Expr& e, const std::string& member) {
  if (auto* a = std::get_if<Attribute>(&e.node); a && a->name == member && is_path(*a->object))
    return a->object.get();
  for (const Expr* child : children(e))
    if (const Expr* found = path_reading(*child, member)) return found;
  return nullptr;
}

const std::vector<std::string>& keywords() {
  static const std::vector<std::string> words{"and",   "or",  "not",     "true",   "false",  "none",
                                              "let",   "help", "store",  "len",    "str",    "bool",
                                              "attach", "detach", "browse", "describe"};
  return words;
}

}  // namespace

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

asio::awaitable<Outcome> Evaluator::evaluate(const Statement& statement) {
  ChainBuilder chain(client_, names_);
  if (statement.target) co_await chain.resolve(*statement.target);
  co_await chain.resolve(*statement.value);

  if (!statement.binding.empty()) {
    if (!names_.contains(statement.binding) && names_.size() >= max_names)
      throw SessionError("too many local names (limit " + std::to_string(max_names) +
                         "); reuse one with let");
    Operand result = chain.build(*statement.value);
    if (auto* literal = std::get_if<Value>(&result); literal && !contains_handle(*literal)) {
      names_.insert_or_assign(statement.binding, std::move(*literal));
      co_return NoResult{};
    }
    Handle h = chain.to_handle(std::move(result));
    Value value = co_await h.get();
    names_.insert_or_assign(statement.binding, std::move(value));
    co_return NoResult{};
  }

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
        // On this chain: its and/or are resolved already.
        Description description = co_await chain.handle(*builtin->args.at(0)).describe();
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
  ChainBuilder chain(client_, names_);
  co_await chain.resolve(expr);
  Description description = co_await chain.handle(expr).describe();
  co_return description;
}

asio::awaitable<std::vector<std::string>> Evaluator::handle_types(const Value& value) const {
  std::vector<Handle> handles;
  collect_handles(value, handles, max_typed_handles);
  std::vector<std::string> types;
  for (auto& h : handles) {
    std::string type;
    try {
      Description d = co_await h.describe();
      type = std::move(d.type_name);
    } catch (const RemoteError&) {
    }
    types.push_back(std::move(type));
  }
  co_return types;
}

asio::awaitable<std::vector<std::string>> Evaluator::suggestions(const Statement& statement,
                                                                 const RemoteError& error) const {
  std::vector<std::string> candidates;
  std::optional<std::string> missing;
  if (error.kind() == ErrorKind::name) {
    missing = quoted_after(error.message(), "no export named ");
    if (!missing) co_return candidates;
    candidates = co_await client_.browse();
    for (auto& [name, value] : names_) candidates.push_back(name);
  } else if (error.kind() == ErrorKind::attribute) {
    missing = quoted_after(error.message(), "has no attribute ");
    if (!missing) co_return candidates;
    const Expr* object = statement.target ? path_reading(*statement.target, *missing) : nullptr;
    if (!object) object = path_reading(*statement.value, *missing);
    if (!object) co_return candidates;
    ChainBuilder chain(client_, names_);
    Description d = co_await chain.handle(*object).describe();
    for (auto& m : d.members) candidates.push_back(m.name);
  } else {
    co_return candidates;
  }
  co_return similar_names(*missing, candidates);
}

asio::awaitable<std::vector<std::string>> Evaluator::completions(std::string line) const {
  CompletionContext context = completion_context(line);
  std::vector<std::string> words;
  if (context.object == ".") co_return words;
  if (!context.object.empty()) {
    ExprPtr object = parse_expression(context.object);
    ChainBuilder chain(client_, names_);
    Description d = co_await chain.handle(*object).describe();
    for (auto& m : d.members) words.push_back(m.name);
  } else {
    for (auto& [name, value] : names_) words.push_back(name);
    std::vector<std::string> exports = co_await client_.browse();
    words.insert(words.end(), exports.begin(), exports.end());
    words.insert(words.end(), keywords().begin(), keywords().end());
  }
  std::erase_if(words, [&](const std::string& w) { return !w.starts_with(context.prefix); });
  std::sort(words.begin(), words.end());
  words.erase(std::unique(words.begin(), words.end()), words.end());
  co_return words;
}

asio::awaitable<Outcome> Evaluator::browse() const {
  std::vector<std::string> names = co_await client_.browse();
  co_return ExportNames{std::move(names)};
}

}  // namespace remoteable::cli
