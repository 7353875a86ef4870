#include <remoteable/error.hpp>

namespace remoteable {

std::string_view to_string(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::name: return "name";
    case ErrorKind::attribute: return "attribute";
    case ErrorKind::type: return "type";
    case ErrorKind::index: return "index";
    case ErrorKind::value: return "value";
    case ErrorKind::user: return "user";
    case ErrorKind::disconnected: return "disconnected";
    case ErrorKind::overloaded: return "overloaded";
    case ErrorKind::cancelled: return "cancelled";
    case ErrorKind::timeout: return "timeout";
  }
  return "unknown";
}

RemoteError::RemoteError(ErrorKind kind, std::string message)
    : std::runtime_error(std::string(to_string(kind)) + ": " + message),
      kind_(kind),
      message_(std::move(message)) {}

}  // namespace remoteable
