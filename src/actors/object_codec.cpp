// The server's side of the value codec (rpc/codec.hpp): ServerCore::decode and encode, between
// wire values and boxed objects.

#include <kj/debug.h>

#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <remoteable/detail/builtins.hpp>
#include "actors/detail/server_core.hpp"
#include "rpc/codec.hpp"
#include "rpc/kj_error.hpp"
#include "rpc/wire_checks.hpp"

namespace remoteable::detail {

namespace {
/// A capability met while decoding, and the slot in the decoded tree it resolves into.
struct Hole {
  Object* slot;
  wire::Handle::Client cap;
};

RemoteError too_deep(int limit) { return detail::too_deep(limit, "is refused"); }

/// The server's side of decoding (see decode_value): boxed built-in objects. The capabilities
/// ServerCore::unwrap_now resolves are filled in at once (leaves: no shape changes); it collects
/// the others to resolve, and the lists and maps made, children before parents, whose shapes
/// change once those holes are filled.
struct ObjectDecoding {
  using Out = Object;
  using List = builtin::ObjectList;
  using Map = builtin::ObjectMap;
  ServerCore& core;
  const std::shared_ptr<Budget>& budget;
  int limit;
  kj::Vector<Hole> holes{};
  std::vector<const Object*> containers{};

  int max_depth() const { return limit; }
  [[noreturn]] void too_deep() const { throw to_kj(detail::too_deep(limit, "is refused")); }
  void set(Object& slot, None) { slot = builtin::none(); }
  template <class S> void set(Object& slot, S&& scalar) { slot = builtin::box(std::forward<S>(scalar)); }
  void set_list(Object& slot, List&& list) {
    slot = builtin::box(std::move(list));  // moving a vector keeps its elements (and the holes) in place
    containers.push_back(&slot);
  }
  void set_map(Object& slot, Map&& map) {
    slot = builtin::box(std::move(map));  // map nodes stay in place
    containers.push_back(&slot);
  }
  Object& map_slot(Map& map, std::string key) {
    auto [it, inserted] = map.try_emplace(std::move(key));
    if (!inserted) throw to_kj(RemoteError(ErrorKind::value, "a map on the wire has the key '" + it->first + "' twice"));
    return it->second;
  }
  void handle(Object& slot, wire::Handle::Client cap) {
    KJ_IF_MAYBE(object, core.unwrap_now(cap, budget)) {
      slot = kj::mv(*object);
    } else {
      holes.add(Hole{&slot, kj::mv(cap)});
    }
  }
};

/// Decodes `value` into `out` with `d`, Cap'n Proto's own checks (a pointer out of bounds, a
/// message nested past its limit) turned into a `value` error: the value is malformed. Ours
/// carry their kind already.
void decode_checked(wire::Value::Reader value, Object& out, ObjectDecoding& d) {
  try {
    decode_value(value, out, d);
  } catch (kj::Exception& e) {
    if (from_kj(e).kind() != ErrorKind::user) throw;
    throw to_kj(RemoteError(ErrorKind::value, std::string("a malformed value on the wire: ") + e.getDescription().cStr()));
  }
}
}  // namespace

kj::Maybe<Object> ServerCore::decode_now(wire::Value::Reader value, const std::shared_ptr<Budget>& budget) {
  ObjectDecoding d{*this, budget, options.max_nesting};
  Object out;
  decode_checked(value, out, d);
  if (!d.holes.empty()) return nullptr;
  return kj::mv(out);
}

kj::Maybe<std::vector<Object>> ServerCore::decode_now(capnp::List<wire::Value>::Reader values,
                                                      const std::shared_ptr<Budget>& budget) {
  if (zero_sized_elements(values)) throw to_kj(zero_sized_error(values.size()));
  std::vector<Object> out(values.size());
  for (unsigned i = 0; i < values.size(); ++i) {
    ObjectDecoding d{*this, budget, options.max_nesting};
    decode_checked(values[i], out[i], d);
    if (!d.holes.empty()) return nullptr;
  }
  return kj::mv(out);
}

kj::Promise<Object> ServerCore::decode(wire::Value::Reader value, const std::shared_ptr<Budget>& budget) {
  auto root = kj::heap<Object>();
  ObjectDecoding d{*this, budget, options.max_nesting};  // on the stack: most values hold no handle
  decode_checked(value, *root, d);
  if (d.holes.empty()) return kj::mv(*root);
  auto unwrapped = KJ_MAP(h, d.holes) { return look_up(kj::mv(h.cap), budget); };  // (unwrap_now left them)
  auto slots = KJ_MAP(h, d.holes) { return h.slot; };
  return kj::joinPromises(kj::mv(unwrapped))
      .then([root = kj::mv(root), containers = std::move(d.containers), max_depth = d.limit, slots = kj::mv(slots)](kj::Array<std::pair<Object, std::shared_ptr<Actor>>> resolved) mutable {
        for (size_t i = 0; i < slots.size(); ++i) *slots[i] = kj::mv(resolved[i].first);
        // The handles are values stored before: their depth adds to this one's. Children first.
        for (auto* c : containers) builtin::reshape(*c);
        if (builtin::shape(*root).depth > static_cast<std::uint32_t>(max_depth)) throw to_kj(too_deep(max_depth));
        return kj::mv(*root);
      });
}

kj::Promise<std::vector<Object>> ServerCore::decode(capnp::List<wire::Value>::Reader values, const std::shared_ptr<Budget>& budget) {
  if (zero_sized_elements(values)) throw to_kj(zero_sized_error(values.size()));
  auto parts = kj::heapArrayBuilder<kj::Promise<Object>>(values.size());
  for (auto v : values) parts.add(decode(v, budget));
  return kj::joinPromises(parts.finish()).then([](kj::Array<Object> objects) {
    return std::vector<Object>(std::make_move_iterator(objects.begin()), std::make_move_iterator(objects.end()));
  });
}

void ServerCore::encode(wire::Value::Builder out, const Plain& value, const std::shared_ptr<Actor>& actor,
                        const std::shared_ptr<Budget>& budget, bool read_only) {
  auto cap = [&](const Object& o) { return wrap(o, actor, budget, false, read_only); };
  encode_value(out, value, cap, options.max_nesting);
}

}  // namespace remoteable::detail
