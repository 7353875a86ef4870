#include "rpc/log.hpp"

#include <spdlog/logger.h>
#include <spdlog/spdlog.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <mutex>
#include <string>

namespace remoteable::detail {
namespace {

/// REMOTEABLE_LOG as a level: nullopt when unset or empty; `known` false for a name spdlog does
/// not know (spdlog::level::from_str answers `off` for those, which would silence everything).
std::optional<spdlog::level::level_enum> env_level(bool& known) {
  known = true;
  const char* env = std::getenv("REMOTEABLE_LOG");
  if (env == nullptr || *env == '\0') return std::nullopt;
  std::string name(env);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto level = spdlog::level::from_str(name);
  if (level == spdlog::level::off && name != "off") {
    known = false;
    return std::nullopt;
  }
  return level;
}

/// Says once per process that REMOTEABLE_LOG is not a level (a process with many clients would
/// otherwise repeat it for each).
void warn_unknown_level(spdlog::logger& logger) {
  static std::atomic<bool> warned{false};
  if (!warned.exchange(true))
    logger.warn("REMOTEABLE_LOG='{}' is not a level (trace, debug, info, warn, error, critical, off); ignored",
                std::getenv("REMOTEABLE_LOG"));
}

/// The logger registered with spdlog under `name`: the one already there (the application's, or
/// the one an earlier Server or Client made), or a new one writing to stderr, initialised by
/// spdlog's registry (its level, pattern and SPDLOG_LEVEL entries) and then set to REMOTEABLE_LOG
/// if that is set. Registered, it follows spdlog::set_level from then on.
std::shared_ptr<spdlog::logger> registered_logger(const char* name) {
  static std::mutex mutex;  // two first uses at once would both register
  std::lock_guard lock(mutex);
  if (auto existing = spdlog::get(name)) return existing;
  auto logger = std::make_shared<spdlog::logger>(name, std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  spdlog::initialize_logger(logger);
  bool known = true;
  if (auto from_env = env_level(known)) logger->set_level(*from_env);
  if (!known) warn_unknown_level(*logger);
  return logger;
}

}  // namespace

std::shared_ptr<spdlog::logger> make_logger(std::shared_ptr<spdlog::logger> given, const char* name,
                                            std::optional<spdlog::level::level_enum> level) {
  if (given == nullptr) {
    auto shared = registered_logger(name);
    if (!level) return shared;
    // A level of its own: a logger of the same name and sinks, not registered, so that neither
    // spdlog::set_level nor another Server's or Client's level changes it.
    auto own = shared->clone(name);
    own->set_level(*level);
    return own;
  }
  if (level) {
    given->set_level(*level);  // REMOTEABLE_LOG is not consulted
    return given;
  }
  bool known = true;
  if (auto from_env = env_level(known)) given->set_level(*from_env);
  if (!known) warn_unknown_level(*given);
  return given;
}

}  // namespace remoteable::detail
