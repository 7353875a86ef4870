#pragma once
// What describe() reports about an object: its type's name and its members.

#include <string>
#include <vector>

namespace remoteable {

/// A member as `describe()` reports it.
struct MemberInfo {
  std::string name;
  std::string kind;  ///< "field", "readonly field", "property", "readonly property", "method"
};
struct Description {
  std::string type_name;
  std::vector<MemberInfo> members;
};

}  // namespace remoteable
