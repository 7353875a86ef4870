#include "rpc/log.hpp"

#include <spdlog/logger.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
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

}  // namespace

std::shared_ptr<spdlog::logger> make_logger(std::shared_ptr<spdlog::logger> given, const char* name,
                                            std::optional<spdlog::level::level_enum> level) {
  bool own = given == nullptr;
  auto logger = own ? std::make_shared<spdlog::logger>(name, std::make_shared<spdlog::sinks::stderr_color_sink_mt>())
                    : std::move(given);
  if (level) {
    logger->set_level(*level);  // REMOTEABLE_LOG is not consulted
    return logger;
  }
  bool known = true;
  if (auto from_env = env_level(known)) logger->set_level(*from_env);
  else if (own) logger->set_level(spdlog::level::warn);
  // Said once per process: a process with many clients would otherwise repeat it for each.
  static std::atomic<bool> warned{false};
  if (!known && !warned.exchange(true))
    logger->warn("REMOTEABLE_LOG='{}' is not a level (trace, debug, info, warn, error, critical, off); ignored",
                 std::getenv("REMOTEABLE_LOG"));
  return logger;
}

}  // namespace remoteable::detail
