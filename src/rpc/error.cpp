#include <remoteable/error.hpp>

namespace remoteable {

std::string_view to_string(ErrorKind kind) noexcept {
  switch (kind) {
#define REMOTEABLE_ERROR_KIND_NAME(kind, meaning) \
  case ErrorKind::kind: return #kind;
    REMOTEABLE_ERROR_KINDS(REMOTEABLE_ERROR_KIND_NAME)
#undef REMOTEABLE_ERROR_KIND_NAME
  }
  return "unknown";
}

RemoteError::RemoteError(ErrorKind kind, std::string message)
    : std::runtime_error(std::string(to_string(kind)) + ": " + message),
      kind_(kind),
      message_(std::move(message)) {}

}  // namespace remoteable
