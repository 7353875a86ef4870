#pragma once
// The logger a Server or Client owns, and how its level is chosen.

#include <memory>
#include <optional>

#include <spdlog/common.h>

namespace spdlog { class logger; }

namespace remoteable::detail {

/// The logger for a Server or Client: `given`, or else a new one named `name` writing to stderr.
/// Its level, in order: `level` if set (REMOTEABLE_LOG is then not read); else the REMOTEABLE_LOG
/// environment variable if set and known; else `given`'s own level, or warn for a new logger.
/// An unknown REMOTEABLE_LOG value counts as unset, and the first logger in the process that
/// meets it says so at warn (silencing everything would hide the mistake). Called once per
/// Server or Client connection, never on a call's path.
std::shared_ptr<spdlog::logger> make_logger(std::shared_ptr<spdlog::logger> given, const char* name,
                                            std::optional<spdlog::level::level_enum> level);

}  // namespace remoteable::detail
