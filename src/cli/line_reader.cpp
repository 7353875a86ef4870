#include "cli/line_reader.hpp"

#include <editline/readline.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <utility>

namespace remoteable::cli {

namespace {

// libedit calls back through plain functions: the one live reader's completer and the words
// it offered for the word being completed. [the reading thread]
LineReader::Completer* active_completer = nullptr;
std::vector<std::string> offered;

char* next_match(const char*, int state) {
  static std::size_t next = 0;
  if (state == 0) next = 0;
  if (next >= offered.size()) return nullptr;
  return ::strdup(offered[next++].c_str());  // libedit frees it
}

char** complete(const char* text, int, int end) {
  rl_attempted_completion_over = 1;  // no file names
  rl_completion_append_character = '\0';  // no space: a name is often followed by . ( or [
  offered.clear();
  if (active_completer == nullptr || !*active_completer) return nullptr;
  try {
    std::string before(rl_line_buffer, static_cast<std::size_t>(std::max(end, 0)));
    offered = (*active_completer)(before);
  } catch (...) {
    offered.clear();  // a failed completion offers nothing; the line stays as it is
  }
  if (offered.empty()) return nullptr;
  return rl_completion_matches(text, next_match);
}

// Breaks words at '.' too, so that a member is completed on its own after `object.`.
char word_breaks[] = " \t\n\"\\'`@$><=;|&{(,.[]+-*/%~!^:";

}  // namespace

std::string default_history_file() {
  if (const char* path = std::getenv("REMOTEABLE_HISTORY")) return path;
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') return "";
  return std::string(home) + "/.remoteable_history";
}

LineReader::LineReader(bool interactive, std::string history_file, Completer complete_fn)
    : interactive_(interactive), history_file_(std::move(history_file)) {
  if (!interactive_) return;
  static Completer completer;
  completer = std::move(complete_fn);
  active_completer = &completer;
  rl_readline_name = "remoteable";
  rl_instream = stdin;
  rl_outstream = stderr;
  rl_attempted_completion_function = complete;
  rl_basic_word_break_characters = word_breaks;
  rl_completer_word_break_characters = word_breaks;
  using_history();
  stifle_history(history_lines);
  if (!history_file_.empty()) read_history(history_file_.c_str());
}

LineReader::~LineReader() {
  if (!interactive_) return;
  active_completer = nullptr;
  offered.clear();
}

std::optional<std::string> LineReader::read(const char* prompt) {
  std::string line;
  if (interactive_) {
    char* raw = readline(prompt);
    if (raw == nullptr) return std::nullopt;
    line = raw;
    std::free(raw);
    if (line.find_first_not_of(" \t") != std::string::npos && line != last_) {
      add_history(line.c_str());
      last_ = line;
      // What was typed may be private: the file is the user's alone.
      if (!history_file_.empty() && write_history(history_file_.c_str()) == 0)
        ::chmod(history_file_.c_str(), S_IRUSR | S_IWUSR);
    }
  } else if (!std::getline(std::cin, line)) {
    return std::nullopt;
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

}  // namespace remoteable::cli
