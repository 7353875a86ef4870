#pragma once
// Test support: run a program with given stdin, collect its output, bounded in time.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace cli_test {

struct Completed {
  int exit_code = -1;  ///< the exit status, or 128 + signal if it was killed
  std::string out;
  std::string err;
  bool timed_out = false;  ///< it outlived the limit and was killed
};

/// Runs `argv` with `input` on its stdin and waits for it to exit, at most `limit` (then kills
/// it). Waits on the pipes and the process, never sleeps.
Completed run_process(const std::vector<std::string>& argv, std::string_view input,
                      std::chrono::milliseconds limit);

}  // namespace cli_test
