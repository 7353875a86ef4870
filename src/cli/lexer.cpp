#include "cli/lexer.hpp"

#include <charconv>
#include <limits>
#include <system_error>

namespace remoteable::cli {

SyntaxError::SyntaxError(std::string message, std::size_t column)
    : std::runtime_error(message), message_(std::move(message)), column_(column) {}

namespace {

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

}  // namespace

std::size_t display_column(std::string_view source, std::size_t offset) {
  if (offset > source.size()) offset = source.size();
  std::size_t line_start = source.rfind('\n', offset == 0 ? 0 : offset - 1);
  line_start = (line_start == std::string_view::npos || line_start >= offset) ? 0 : line_start + 1;
  std::size_t column = 1;
  for (std::size_t i = line_start; i < offset; ++i)
    if (!is_continuation(static_cast<unsigned char>(source[i]))) ++column;
  return column;
}

std::string caret_lines(std::string_view source, std::size_t column) {
  if (column > source.size()) column = source.size();
  // Only the line holding the column is shown, so that a caret under it lines up.
  std::size_t begin = source.rfind('\n', column == 0 ? 0 : column - 1);
  begin = (begin == std::string_view::npos || begin >= column) ? 0 : begin + 1;
  std::size_t end = source.find('\n', column);
  if (end == std::string_view::npos) end = source.size();
  std::string out(source.substr(begin, end - begin));
  out += '\n';
  for (std::size_t i = begin; i < column; ++i) {
    auto c = static_cast<unsigned char>(source[i]);
    if (c == '\t') out += '\t';
    else if (!is_continuation(c)) out += ' ';
  }
  out += "^\n";
  return out;
}

std::string_view describe(TokenKind kind) noexcept {
  switch (kind) {
    case TokenKind::end: return "end of input";
    case TokenKind::name: return "a name";
    case TokenKind::integer: return "an integer";
    case TokenKind::floating: return "a float";
    case TokenKind::text: return "a string";
    case TokenKind::bytes: return "a bytes literal";
    case TokenKind::kw_true: return "'true'";
    case TokenKind::kw_false: return "'false'";
    case TokenKind::kw_none: return "'none'";
    case TokenKind::kw_not: return "'not'";
    case TokenKind::kw_and: return "'and'";
    case TokenKind::kw_or: return "'or'";
    case TokenKind::lparen: return "'('";
    case TokenKind::rparen: return "')'";
    case TokenKind::lbracket: return "'['";
    case TokenKind::rbracket: return "']'";
    case TokenKind::lbrace: return "'{'";
    case TokenKind::rbrace: return "'}'";
    case TokenKind::dot: return "'.'";
    case TokenKind::comma: return "','";
    case TokenKind::colon: return "':'";
    case TokenKind::assign: return "'='";
    case TokenKind::plus: return "'+'";
    case TokenKind::minus: return "'-'";
    case TokenKind::star: return "'*'";
    case TokenKind::slash: return "'/'";
    case TokenKind::percent: return "'%'";
    case TokenKind::shl: return "'<<'";
    case TokenKind::shr: return "'>>'";
    case TokenKind::amp: return "'&'";
    case TokenKind::caret: return "'^'";
    case TokenKind::pipe: return "'|'";
    case TokenKind::tilde: return "'~'";
    case TokenKind::bang: return "'!'";
    case TokenKind::eq: return "'=='";
    case TokenKind::ne: return "'!='";
    case TokenKind::lt: return "'<'";
    case TokenKind::le: return "'<='";
    case TokenKind::gt: return "'>'";
    case TokenKind::ge: return "'>='";
  }
  return "a token";
}

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 99;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// 2^63: the magnitude of INT64_MIN, the largest integer literal the lexer lets through.
constexpr std::uint64_t max_magnitude = std::uint64_t{1} << 63;

class Lexer {
 public:
  explicit Lexer(std::string_view source) : src_(source) {}

  std::vector<Token> run() {
    std::vector<Token> tokens;
    for (;;) {
      skip_space();
      if (pos_ >= src_.size()) break;
      tokens.push_back(next());
    }
    Token end;
    end.kind = TokenKind::end;
    end.column = src_.size();
    tokens.push_back(std::move(end));
    return tokens;
  }

 private:
  char peek(std::size_t ahead = 0) const {
    return pos_ + ahead < src_.size() ? src_[pos_ + ahead] : '\0';
  }

  void skip_space() {
    while (pos_ < src_.size() &&
           (src_[pos_] == ' ' || src_[pos_] == '\t' || src_[pos_] == '\n' || src_[pos_] == '\r'))
      ++pos_;
  }

  Token make(TokenKind kind, std::size_t start) const {
    Token t;
    t.kind = kind;
    t.column = start;
    t.length = pos_ - start;
    return t;
  }

  Token op(TokenKind kind, std::size_t length) {
    std::size_t start = pos_;
    pos_ += length;
    return make(kind, start);
  }

  Token next() {
    char c = peek();
    if ((c == 'b' || c == 'B') && (peek(1) == '\'' || peek(1) == '"')) {
      std::size_t start = pos_++;
      return string_literal(start, true);
    }
    if (is_name_start(c)) return name();
    if (is_digit(c) || (c == '.' && is_digit(peek(1)))) return number();
    switch (c) {
      case '\'':
      case '"': return string_literal(pos_, false);
      case '(': return op(TokenKind::lparen, 1);
      case ')': return op(TokenKind::rparen, 1);
      case '[': return op(TokenKind::lbracket, 1);
      case ']': return op(TokenKind::rbracket, 1);
      case '{': return op(TokenKind::lbrace, 1);
      case '}': return op(TokenKind::rbrace, 1);
      case '.': return op(TokenKind::dot, 1);
      case ',': return op(TokenKind::comma, 1);
      case ':': return op(TokenKind::colon, 1);
      case '+': return op(TokenKind::plus, 1);
      case '-': return op(TokenKind::minus, 1);
      case '*': return op(TokenKind::star, 1);
      case '/': return op(TokenKind::slash, 1);
      case '%': return op(TokenKind::percent, 1);
      case '&': return op(TokenKind::amp, 1);
      case '^': return op(TokenKind::caret, 1);
      case '|': return op(TokenKind::pipe, 1);
      case '~': return op(TokenKind::tilde, 1);
      case '=': return peek(1) == '=' ? op(TokenKind::eq, 2) : op(TokenKind::assign, 1);
      case '!': return peek(1) == '=' ? op(TokenKind::ne, 2) : op(TokenKind::bang, 1);
      case '<':
        if (peek(1) == '<') return op(TokenKind::shl, 2);
        return peek(1) == '=' ? op(TokenKind::le, 2) : op(TokenKind::lt, 1);
      case '>':
        if (peek(1) == '>') return op(TokenKind::shr, 2);
        return peek(1) == '=' ? op(TokenKind::ge, 2) : op(TokenKind::gt, 1);
      default: break;
    }
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F)
      throw SyntaxError("unexpected control character", pos_);
    throw SyntaxError("unexpected character '" + std::string(src_.substr(pos_, char_length(pos_))) + "'",
                      pos_);
  }

  // The bytes of the UTF-8 character at `at`, so messages quote it whole.
  std::size_t char_length(std::size_t at) const {
    std::size_t n = 1;
    while (at + n < src_.size() && is_continuation(static_cast<unsigned char>(src_[at + n]))) ++n;
    return n;
  }

  Token name() {
    std::size_t start = pos_;
    while (is_name_char(peek())) ++pos_;
    std::string_view word = src_.substr(start, pos_ - start);
    TokenKind kind = TokenKind::name;
    if (word == "true" || word == "True") kind = TokenKind::kw_true;
    else if (word == "false" || word == "False") kind = TokenKind::kw_false;
    else if (word == "none" || word == "None") kind = TokenKind::kw_none;
    else if (word == "not") kind = TokenKind::kw_not;
    else if (word == "and") kind = TokenKind::kw_and;
    else if (word == "or") kind = TokenKind::kw_or;
    Token t = make(kind, start);
    t.text = std::string(word);
    return t;
  }

  // Reads digits of `base` with single underscores between them; returns them without the
  // underscores. Stops at the first character that is not such a digit.
  std::string digits(int base, std::size_t number_start) {
    std::string out;
    for (;;) {
      char c = peek();
      if (c == '_') {
        if (out.empty() || digit_value(peek(1)) >= base)
          throw SyntaxError("invalid number: '_' must sit between digits", number_start);
        ++pos_;
        continue;
      }
      if (digit_value(c) >= base) break;
      out += c;
      ++pos_;
    }
    return out;
  }

  // True if an exponent ("e5", "E+5", "e-5") starts `ahead` characters on.
  bool exponent_follows(std::size_t ahead) const {
    char e = peek(ahead);
    if (e != 'e' && e != 'E') return false;
    char next = peek(ahead + 1);
    if (next == '+' || next == '-') next = peek(ahead + 2);
    return is_digit(next);
  }

  void reject_trailing_name(std::size_t start) {
    if (is_name_char(peek())) throw SyntaxError("invalid number literal", start);
  }

  Token integer_token(std::size_t start, std::string_view text, int base) {
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
    if (ec == std::errc::result_out_of_range || (ec == std::errc() && value > max_magnitude))
      throw SyntaxError("integer literal too large for 64 bits", start);
    if (ec != std::errc() || end != text.data() + text.size())
      throw SyntaxError("invalid number literal", start);
    Token t = make(TokenKind::integer, start);
    t.integer = value;
    t.text = std::string(src_.substr(start, pos_ - start));
    return t;
  }

  Token number() {
    std::size_t start = pos_;
    if (peek() == '0' && (peek(1) == 'x' || peek(1) == 'X' || peek(1) == 'o' || peek(1) == 'O' ||
                          peek(1) == 'b' || peek(1) == 'B')) {
      char prefix = static_cast<char>(peek(1) | 0x20);
      int base = prefix == 'x' ? 16 : prefix == 'o' ? 8 : 2;
      pos_ += 2;
      if (peek() == '_') ++pos_;  // Python allows 0x_ff
      std::string text = digits(base, start);
      if (text.empty()) throw SyntaxError("invalid number literal", start);
      reject_trailing_name(start);
      return integer_token(start, text, base);
    }

    std::string whole = digits(10, start);
    bool is_float = false;
    std::string text = whole;
    if (peek() == '.' && (!is_name_start(peek(1)) || exponent_follows(1))) {
      is_float = true;
      ++pos_;
      text += '.';
      if (is_digit(peek())) text += digits(10, start);
    }
    if (peek() == 'e' || peek() == 'E') {
      std::size_t save = pos_;
      std::string exponent = "e";
      ++pos_;
      if (peek() == '+' || peek() == '-') exponent += src_[pos_++];
      if (!is_digit(peek())) {
        pos_ = save;
        throw SyntaxError("invalid number literal: exponent has no digits", start);
      }
      exponent += digits(10, start);
      text += exponent;
      is_float = true;
    }
    reject_trailing_name(start);
    if (!is_float) {
      if (whole.size() > 1 && whole[0] == '0' && whole.find_first_not_of('0') != std::string::npos)
        throw SyntaxError("leading zeros are not allowed in integer literals (use 0o for octal)",
                          start);
      return integer_token(start, whole, 10);
    }
    if (text.front() == '.') text.insert(text.begin(), '0');
    double value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc::result_out_of_range) {
      // Underflow to zero is harmless; overflow to infinity is not what anyone typed.
      if (text.find("e-") == std::string::npos)
        throw SyntaxError("float literal out of range", start);
      value = 0;
    } else if (ec != std::errc() || end != text.data() + text.size()) {
      throw SyntaxError("invalid number literal", start);
    }
    Token t = make(TokenKind::floating, start);
    t.floating = value;
    t.text = std::string(src_.substr(start, pos_ - start));
    return t;
  }

  // Reads `count` hex digits after an escape starting at `escape`.
  std::uint32_t hex_escape(std::size_t count, std::size_t escape) {
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < count; ++i) {
      int d = digit_value(peek());
      if (d >= 16)
        throw SyntaxError("escape needs " + std::to_string(count) + " hex digits", escape);
      value = value * 16 + static_cast<std::uint32_t>(d);
      ++pos_;
    }
    return value;
  }

  Token string_literal(std::size_t start, bool is_bytes) {
    char quote = peek();
    ++pos_;
    std::string out;
    for (;;) {
      if (pos_ >= src_.size() || peek() == '\n')
        throw SyntaxError("unterminated string literal", start);
      char c = src_[pos_];
      if (c == quote) {
        ++pos_;
        break;
      }
      if (c != '\\') {
        if (is_bytes && static_cast<unsigned char>(c) >= 0x80)
          throw SyntaxError("bytes literals may hold only ASCII characters (use \\x escapes)",
                            pos_);
        out += c;
        ++pos_;
        continue;
      }
      std::size_t escape = pos_;
      ++pos_;
      if (pos_ >= src_.size()) throw SyntaxError("unterminated string literal", start);
      char e = src_[pos_++];
      switch (e) {
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case 'x': {
          std::uint32_t v = hex_escape(2, escape);
          if (is_bytes) out += static_cast<char>(v);
          else append_utf8(out, v);
          break;
        }
        case 'u':
        case 'U': {
          if (is_bytes) throw SyntaxError("\\u escapes are not allowed in bytes literals", escape);
          std::uint32_t v = hex_escape(e == 'u' ? 4 : 8, escape);
          if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
            throw SyntaxError("escape is not a valid Unicode code point", escape);
          append_utf8(out, v);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            std::uint32_t v = static_cast<std::uint32_t>(e - '0');
            for (int i = 0; i < 2 && peek() >= '0' && peek() <= '7'; ++i)
              v = v * 8 + static_cast<std::uint32_t>(src_[pos_++] - '0');
            if (is_bytes) {
              if (v > 0xFF) throw SyntaxError("octal escape out of range for a byte", escape);
              out += static_cast<char>(v);
            } else {
              append_utf8(out, v);
            }
            break;
          }
          throw SyntaxError("unknown escape sequence '\\" +
                                std::string(src_.substr(escape + 1, char_length(escape + 1))) + "'",
                            escape);
      }
    }
    Token t = make(is_bytes ? TokenKind::bytes : TokenKind::text, start);
    t.text = std::move(out);
    return t;
  }

  std::string_view src_;
  std::size_t pos_ = 0;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace remoteable::cli
