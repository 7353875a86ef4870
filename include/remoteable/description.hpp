#pragma once
// What describe() reports about an object: its type's name and its members.

#include <string>
#include <vector>

namespace remoteable {

/// A member as `describe()` reports it.
struct MemberInfo {
  std::string name;
  std::string kind;  ///< "field", "readonly field", "property", "readonly property", "method"
  /// Fields and properties: the kind of their value ("int64", "list of text", "Node or none").
  std::string type = {};
  /// Methods: each overload's parameter and result kinds, "(int64, text) -> Node".
  std::vector<std::string> signatures = {};
};
struct Description {
  std::string type_name;
  std::vector<MemberInfo> members;
  /// Calling the object itself (a function, a class's constructors): each overload, as above.
  std::vector<std::string> signatures = {};
};

}  // namespace remoteable
