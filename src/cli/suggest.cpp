#include "cli/suggest.hpp"

#include <algorithm>
#include <numeric>

namespace remoteable::cli {

namespace {

constexpr std::size_t longest_word = 64;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Optimal string alignment distance, giving up (returning bound + 1) once it must exceed `bound`.
std::size_t distance(std::string_view a, std::string_view b, std::size_t bound) {
  std::size_t gap = a.size() > b.size() ? a.size() - b.size() : b.size() - a.size();
  if (gap > bound) return bound + 1;
  std::vector<std::size_t> before(b.size() + 1), row(b.size() + 1), next(b.size() + 1);
  std::iota(row.begin(), row.end(), std::size_t{0});
  for (std::size_t i = 1; i <= a.size(); ++i) {
    next[0] = i;
    std::size_t best = next[0];
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      next[j] = std::min({row[j] + 1, next[j - 1] + 1, row[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        next[j] = std::min(next[j], before[j - 2] + 1);
      best = std::min(best, next[j]);
    }
    if (best > bound) return bound + 1;
    before.swap(row);
    row.swap(next);
  }
  return row[b.size()];
}

}  // namespace

std::vector<std::string> similar_names(std::string_view word, const std::vector<std::string>& candidates,
                                       std::size_t limit) {
  if (word.empty() || word.size() > longest_word) return {};
  std::size_t bound = word.size() <= 4 ? 1 : 2;
  std::vector<std::pair<std::size_t, const std::string*>> close;
  for (auto& c : candidates) {
    if (c == word || c.size() > longest_word) continue;
    std::size_t d = distance(word, c, bound);
    if (d <= bound && std::none_of(close.begin(), close.end(), [&](auto& p) { return *p.second == c; }))
      close.emplace_back(d, &c);
  }
  std::stable_sort(close.begin(), close.end(), [](auto& x, auto& y) { return x.first < y.first; });
  std::vector<std::string> out;
  for (std::size_t i = 0; i < close.size() && i < limit; ++i) out.push_back(*close[i].second);
  return out;
}

std::optional<std::string> quoted_after(std::string_view message, std::string_view marker) {
  auto at = message.find(marker);
  if (at == std::string_view::npos) return std::nullopt;
  auto open = at + marker.size();
  if (open >= message.size() || message[open] != '\'') return std::nullopt;
  auto close = message.find('\'', open + 1);
  if (close == std::string_view::npos) return std::nullopt;
  return std::string(message.substr(open + 1, close - open - 1));
}

CompletionContext completion_context(std::string_view line) {
  CompletionContext out;
  std::size_t start = line.size();
  while (start > 0 && is_name_char(line[start - 1])) --start;
  out.prefix = std::string(line.substr(start));
  out.start = start;
  if (start > 0 && line[start - 1] == '.') {
    std::size_t begin = start - 1;
    while (begin > 0 && (is_name_char(line[begin - 1]) || line[begin - 1] == '.')) --begin;
    std::string_view path = line.substr(begin, start - 1 - begin);
    // A path that follows a call or an index, "f(x).", is not completed: it would call again.
    bool after_call = begin > 0 && (line[begin - 1] == ')' || line[begin - 1] == ']');
    if (is_dotted_path(path) && !after_call) out.object = std::string(path);
    else out.object = ".";  // a member of something that cannot be read again: no candidates
  }
  return out;
}

bool is_dotted_path(std::string_view path) {
  if (path.empty()) return false;
  bool at_start = true;
  for (char c : path) {
    if (c == '.') {
      if (at_start) return false;
      at_start = true;
    } else if (is_name_char(c)) {
      if (at_start && c >= '0' && c <= '9') return false;
      at_start = false;
    } else {
      return false;
    }
  }
  return !at_start;
}

std::string did_you_mean(const std::vector<std::string>& suggestions) {
  if (suggestions.empty()) return "";
  std::string out = " did you mean ";
  for (std::size_t i = 0; i < suggestions.size(); ++i) {
    if (i > 0) out += i + 1 == suggestions.size() ? " or " : ", ";
    out += "'" + suggestions[i] + "'";
  }
  return out + "?";
}

}  // namespace remoteable::cli
