#pragma once
// remoteable::cli suggest: "did you mean" and tab-completion helpers over plain strings.
//
// Plain functions over plain data: no state, no threads.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace remoteable::cli {

/// The candidates close to `word` (a typo of it): at most `limit`, closest first, ties in the
/// candidates' order. Close means an edit distance (insert, delete, change, swap two neighbours)
/// of at most 1 for words of up to 4 characters, at most 2 for longer ones. Words longer than
/// 64 characters get no suggestions (the cost is quadratic in the length).
std::vector<std::string> similar_names(std::string_view word, const std::vector<std::string>& candidates,
                                       std::size_t limit = 3);

/// The text between the quotes after `marker` in `message`: quoted_after("no export named
/// 'rooot'", "named ") is "rooot". Nothing if the marker or the quotes are missing.
std::optional<std::string> quoted_after(std::string_view message, std::string_view marker);

/// What a tab completes: `prefix`, the part of the word before the cursor, and `object`, the
/// dotted path before it when the word follows a '.' ("root.child" for "x = root.child.va").
/// `object` is empty when the word is a bare name. `start` is the byte offset of the prefix.
struct CompletionContext {
  std::string object;
  std::string prefix;
  std::size_t start = 0;
};
CompletionContext completion_context(std::string_view line_before_cursor);

/// True if `path` is a dotted path of names, "a" or "a.b.c": what completion and suggestions may
/// evaluate again (reading attributes, never calling).
bool is_dotted_path(std::string_view path);

/// The " did you mean 'a' or 'b'?" sentence for suggestions; empty for none.
std::string did_you_mean(const std::vector<std::string>& suggestions);

}  // namespace remoteable::cli
