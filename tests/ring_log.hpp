#pragma once
// A logger whose lines the test reads back, for tests of what the library logs.

#include <spdlog/logger.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include <memory>
#include <string>
#include <string_view>

namespace test {

/// A spdlog logger writing "<level> <message>" lines into a ring buffer. The test may read the
/// lines while the server's or client's threads write them: the sink locks both.
struct RingLog {
  explicit RingLog(const char* name, spdlog::level::level_enum level = spdlog::level::info)
      : sink(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(4096)),
        logger(std::make_shared<spdlog::logger>(name, sink)) {
    logger->set_pattern("%l %v");
    logger->set_level(level);
  }
  /// Lines at `level` ("trace", "debug", "info", "warning", "error") that contain `text`.
  std::size_t count(std::string_view level, std::string_view text = {}) const {
    std::size_t n = 0;
    auto prefix = std::string(level) + " ";
    for (auto& line : sink->last_formatted())
      if (line.rfind(prefix, 0) == 0 && line.find(text) != std::string::npos) ++n;
    return n;
  }
  bool has(std::string_view level, std::string_view text) const { return count(level, text) > 0; }

  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink;
  std::shared_ptr<spdlog::logger> logger;
};

}  // namespace test
