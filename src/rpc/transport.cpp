#include "rpc/transport.hpp"

#include <kj/debug.h>
#include <sys/socket.h>

namespace remoteable::detail {

void TransportStream::getsockopt(int level, int option, void* value, uint* length) {
  socklen_t len = *length;
  KJ_SYSCALL(::getsockopt(descriptor(), level, option, value, &len));
  *length = len;
}

void TransportStream::setsockopt(int level, int option, const void* value, uint length) {
  KJ_SYSCALL(::setsockopt(descriptor(), level, option, value, length));
}

void TransportStream::getsockname(struct sockaddr* addr, uint* length) {
  socklen_t len = *length;
  KJ_SYSCALL(::getsockname(descriptor(), addr, &len));
  *length = len;
}

void TransportStream::getpeername(struct sockaddr* addr, uint* length) {
  socklen_t len = *length;
  KJ_SYSCALL(::getpeername(descriptor(), addr, &len));
  *length = len;
}

}  // namespace remoteable::detail
