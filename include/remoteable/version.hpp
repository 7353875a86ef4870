#pragma once
// The library's version, and the version of the protocol its clients and servers speak.
//
// The library version is also the CMake package's (CMakeLists.txt reads it from here). The
// protocol version changes when a client and a server of different versions could no longer
// understand each other (a change that keeps existing clients working, such as a new method,
// does not change it). Client::connect asks the server for its protocol version and refuses a
// server of another one with a `protocol` error.

#define REMOTEABLE_VERSION_MAJOR 0
#define REMOTEABLE_VERSION_MINOR 1
#define REMOTEABLE_VERSION_PATCH 0
/// MAJOR * 10000 + MINOR * 100 + PATCH, for comparisons in the preprocessor.
#define REMOTEABLE_VERSION (REMOTEABLE_VERSION_MAJOR * 10000 + REMOTEABLE_VERSION_MINOR * 100 + REMOTEABLE_VERSION_PATCH)
#define REMOTEABLE_VERSION_STRING "0.1.0"

namespace remoteable {

/// The library's version as text, "MAJOR.MINOR.PATCH".
inline constexpr const char* version = REMOTEABLE_VERSION_STRING;

/// The protocol version this library speaks; Registry.version reports the server's.
inline constexpr unsigned protocol_version = 1;

}  // namespace remoteable
