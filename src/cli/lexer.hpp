#pragma once
// remoteable::cli lexer: turns one line of the CLI expression language into tokens.
//
// Plain functions over plain data: no state, no threads.

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace remoteable::cli {

/// A syntax error in an expression. `column()` is the byte offset of the offending character
/// in the source line (0-based); `caret_lines()` renders it for a terminal.
class SyntaxError : public std::runtime_error {
 public:
  SyntaxError(std::string message, std::size_t column);
  std::size_t column() const noexcept { return column_; }
  const std::string& message() const noexcept { return message_; }

 private:
  std::string message_;
  std::size_t column_;
};

/// The 1-based column a byte offset shows at: counts UTF-8 code points, not bytes.
std::size_t display_column(std::string_view source, std::size_t offset);

/// Two lines: `source` and a caret under byte offset `column` (tabs are kept so the caret lines
/// up in a terminal). Each line ends in '\n'.
std::string caret_lines(std::string_view source, std::size_t column);

enum class TokenKind {
  end,
  name,
  integer,   ///< Token::integer holds the magnitude; it may be 2^63 (only valid after '-')
  floating,
  text,      ///< a string literal, escapes already decoded
  bytes,     ///< b'...' literal, escapes already decoded
  kw_true,
  kw_false,
  kw_none,
  kw_not,
  kw_and,
  kw_or,
  lparen,
  rparen,
  lbracket,
  rbracket,
  lbrace,
  rbrace,
  dot,
  comma,
  colon,
  assign,
  plus,
  minus,
  star,
  slash,
  percent,
  shl,
  shr,
  amp,
  caret,
  pipe,
  tilde,
  bang,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
};

/// How a token kind is written, for messages: "')'", "'<<'", "a name", "end of input".
std::string_view describe(TokenKind kind) noexcept;

struct Token {
  TokenKind kind = TokenKind::end;
  std::size_t column = 0;      ///< byte offset of the first character
  std::size_t length = 0;      ///< bytes of source the token spans
  std::string text;            ///< the name, or the decoded string/bytes contents
  std::uint64_t integer = 0;   ///< for TokenKind::integer
  double floating = 0;         ///< for TokenKind::floating
};

/// Splits `source` into tokens; the last one is always TokenKind::end at source.size().
/// Throws SyntaxError at the first character that starts no token, at the opening quote of an
/// unterminated string, at a bad escape, or at a malformed or too large number.
std::vector<Token> tokenize(std::string_view source);

}  // namespace remoteable::cli
