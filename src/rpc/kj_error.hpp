#pragma once
// The one place where kj::Exception and RemoteError are converted into each other.

#include <kj/exception.h>

#include <exception>

#include <remoteable/error.hpp>

namespace remoteable::detail {

/// Encodes a RemoteError for the wire: disconnected/overloaded keep KJ's own types; the kind
/// travels in the description as "remoteable.<kind>: <message>".
kj::Exception to_kj(const RemoteError& error);

/// Decodes what a remote (or local) KJ failure means for the user.
RemoteError from_kj(const kj::Exception& error);

/// True if `error` carries a RemoteError that to_kj encoded (here or at the peer), rather than
/// one KJ made up ("Peer disconnected.", a failed read).
bool carries_remote_error(const kj::Exception& error);

/// from_kj, thrown and caught so the result carries a proper std::exception_ptr.
std::exception_ptr to_exception_ptr(const kj::Exception& error);

}  // namespace remoteable::detail
