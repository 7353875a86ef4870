#include <remoteable/registry.hpp>

#include <stdexcept>
#include <string>

namespace remoteable {

namespace detail {

std::string EnumInfo::kind() const {
  constexpr std::size_t shown = 10;
  std::string s = name + " {";
  std::size_t i = 0;
  // In the order of their values, as the enum declares them.
  for (auto& [value, text] : by_value) {
    if (i == shown) {
      s += ", ...";
      break;
    }
    s += (i++ ? ", " : "") + text;
  }
  return s + "}";
}

void check_uses(const Registry& r, const std::vector<TypeUse>& uses, std::string_view who) {
  for (auto& u : uses) {
    if (u.is_enum ? registry_enum(r, u.type) != nullptr : r.find(u.type) != nullptr) continue;
    throw std::invalid_argument(std::string(who) + " uses " + (u.is_enum ? "enum " : "class ") +
                                demangle(u.cpp_name) + ", which is not registered in the Registry (register it with " +
                                (u.is_enum ? "Registry::enum_" : "Registry::class_") + " before making the Server)");
  }
}

}  // namespace detail

void Registry::check_complete() const {
  for (auto& [index, type] : types_) {
    for (auto& [name, member] : type->members) {
      const std::string who = "'" + type->name + "." + name + "'";
      detail::check_uses(*this, member.uses, who);
      for (auto& o : member.overloads) detail::check_uses(*this, o.uses, who);
    }
    for (auto& o : type->call) detail::check_uses(*this, o.uses, "calling '" + type->name + "'");
  }
  for (auto& [index, cls] : classes_)
    for (auto& o : cls->constructors) detail::check_uses(*this, o.uses, "a constructor of '" + cls->type->name + "'");
}

}  // namespace remoteable
