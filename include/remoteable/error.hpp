#pragma once
// remoteable::RemoteError: the one exception type that every remote failure surfaces as.

#include <stdexcept>
#include <string>
#include <string_view>

namespace remoteable {

/// The error kinds, one list: X(kind, what it means). The enum, its spelling (to_string, the
/// "kind: message" text on the wire) and the decoding of a received error all come from it.
#define REMOTEABLE_ERROR_KINDS(X)                                                        \
  X(name, "no export by that name")                                                      \
  X(attribute, "no such member, or the member cannot be written")                        \
  X(type, "wrong argument count or kind, unsupported operation for the type")            \
  X(index, "index or key out of range")                                                  \
  X(value, "a value is out of its domain: division by zero, integer overflow, a limit")  \
  X(user, "a user method threw; the message is \"TypeName: what()\"")                    \
  X(disconnected, "the connection is gone")                                              \
  X(overloaded, "a server limit was reached")                                            \
  X(cancelled, "the call was cancelled")                                                 \
  X(timeout, "a deadline passed")                                                        \
  X(protocol, "client and server speak different protocol versions")                     \
  X(security, "TLS failed (an untrusted, expired or wrong-name certificate, no TLS at the other end), "     \
              "or authentication: a refused or missing token, an operation the principal may not do")

/// What went wrong, independent of the message text (DESIGN §7): see REMOTEABLE_ERROR_KINDS.
enum class ErrorKind {
#define REMOTEABLE_ERROR_KIND_ENUM(kind, meaning) kind,
  REMOTEABLE_ERROR_KINDS(REMOTEABLE_ERROR_KIND_ENUM)
#undef REMOTEABLE_ERROR_KIND_ENUM
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
