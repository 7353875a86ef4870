#pragma once
// remoteable::cli::LineReader: where the REPL's lines come from. On a terminal, Debian's
// libedit (its readline interface) edits them, with history and tab completion; otherwise they
// are read plainly, one per line, as from a pipe.

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace remoteable::cli {

/// Reads the REPL's lines.
///
/// Editing (`interactive`): arrow keys, emacs keys, Ctrl-R search (libedit's defaults, and
/// ~/.editrc under the name "remoteable"); the prompt and echo go to stderr, so stdout carries
/// only results. History is loaded from `history_file` and saved to it after every line, at
/// most history_lines lines (empty: no file). Tab calls `complete` with the line up to the
/// cursor; it returns whole words for the word ending there.
///
/// Ownership and threads: libedit's readline state is global, so at most one interactive
/// LineReader may exist at a time; use it from one thread. The completer runs on that thread,
/// inside read().
class LineReader {
 public:
  using Completer = std::function<std::vector<std::string>(const std::string& line_before_cursor)>;
  static constexpr int history_lines = 1000;

  LineReader(bool interactive, std::string history_file, Completer complete);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  /// The next line without its newline (and a trailing '\r'); nullopt at the end of input.
  std::optional<std::string> read(const char* prompt);

  bool interactive() const noexcept { return interactive_; }

 private:
  bool interactive_;
  std::string history_file_;
  std::string last_;  // the last line added to the history
};

/// The history file: $REMOTEABLE_HISTORY if set (empty: none), else ~/.remoteable_history
/// ($HOME), else none.
std::string default_history_file();

}  // namespace remoteable::cli
