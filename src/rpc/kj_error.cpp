#include "rpc/kj_error.hpp"

#include <string>
#include <string_view>

namespace remoteable::detail {
namespace {
constexpr std::string_view marker = "remoteable.";
constexpr ErrorKind all_kinds[] = {
#define REMOTEABLE_ERROR_KIND_ENTRY(kind, meaning) ErrorKind::kind,
    REMOTEABLE_ERROR_KINDS(REMOTEABLE_ERROR_KIND_ENTRY)
#undef REMOTEABLE_ERROR_KIND_ENTRY
};
}  // namespace

kj::Exception to_kj(const RemoteError& error) {
  auto type = kj::Exception::Type::FAILED;
  if (error.kind() == ErrorKind::disconnected) type = kj::Exception::Type::DISCONNECTED;
  if (error.kind() == ErrorKind::overloaded) type = kj::Exception::Type::OVERLOADED;
  auto kind = to_string(error.kind());
  return kj::Exception(type, __FILE__, __LINE__,
                       kj::str(marker.data(), kj::StringPtr(kind.data(), kind.size()), ": ", error.message().c_str()));
}

RemoteError from_kj(const kj::Exception& error) {
  std::string_view text(error.getDescription().cStr());
  auto at = text.find(marker);
  if (at != std::string_view::npos) {
    auto rest = text.substr(at + marker.size());
    auto colon = rest.find(": ");
    auto kind = rest.substr(0, colon);
    for (auto k : all_kinds)
      if (to_string(k) == kind) return RemoteError(k, std::string(colon == std::string_view::npos ? "" : rest.substr(colon + 2)));
  }
  switch (error.getType()) {
    case kj::Exception::Type::DISCONNECTED: return RemoteError(ErrorKind::disconnected, std::string(text));
    case kj::Exception::Type::OVERLOADED: return RemoteError(ErrorKind::overloaded, std::string(text));
    case kj::Exception::Type::UNIMPLEMENTED: return RemoteError(ErrorKind::type, std::string(text));
    default: return RemoteError(ErrorKind::user, std::string(text));
  }
}

bool carries_remote_error(const kj::Exception& error) {
  return std::string_view(error.getDescription().cStr()).find(marker) != std::string_view::npos;
}

std::exception_ptr to_exception_ptr(const kj::Exception& error) {
  try {
    throw from_kj(error);
  } catch (...) {
    return std::current_exception();
  }
}

}  // namespace remoteable::detail
