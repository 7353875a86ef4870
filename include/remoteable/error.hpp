#pragma once
// remoteable::RemoteError: the one exception type that every remote failure surfaces as.

#include <stdexcept>
#include <string>
#include <string_view>

namespace remoteable {

/// What went wrong, independent of the message text (DESIGN §7).
enum class ErrorKind {
  name,           ///< no export by that name
  attribute,      ///< no such member, or the member cannot be written
  type,           ///< wrong argument count or kind, unsupported operation for the type
  index,          ///< index or key out of range
  value,          ///< a value is out of its domain: division by zero, integer overflow
  user,           ///< a user method threw; the message is "TypeName: what()"
  disconnected,   ///< the connection is gone
  overloaded,     ///< a server limit was reached
  cancelled,      ///< the call was cancelled
  timeout,        ///< a deadline passed
};

/// The kind's name as it appears in messages and on the wire: "name", "attribute", ...
std::string_view to_string(ErrorKind kind) noexcept;

/// A remote failure. `kind()` says what went wrong; `what()` is "kind: message".
class RemoteError : public std::runtime_error {
 public:
  RemoteError(ErrorKind kind, std::string message);

  ErrorKind kind() const noexcept { return kind_; }
  /// The message without the kind prefix, as the server phrased it.
  const std::string& message() const noexcept { return message_; }

 private:
  ErrorKind kind_;
  std::string message_;
};

}  // namespace remoteable
