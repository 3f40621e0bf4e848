#include "frs/core/text.h"

#include <cstdint>
#include <cstdio>

#include "frs/core/error.h"

namespace frs {
namespace {

// Length of the well-formed UTF-8 sequence at text[i], or 0 when it is not one.
std::size_t sequence_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(text[k]); };
  const std::uint8_t b0 = byte(i);
  if (b0 < 0x80) return 1;
  std::size_t n = 0;
  std::uint32_t code = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
    code = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    code = b0 & 0x0F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    code = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(i + k) & 0x3F);
  }
  const bool overlong = (n == 3 && code < 0x800) || (n == 4 && code < 0x10000);
  const bool surrogate = code >= 0xD800 && code <= 0xDFFF;
  if (overlong || surrogate || code > 0x10FFFF) return 0;
  return n;
}

bool is_control(std::uint32_t c) {
  return c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F);
}

// The characters that change the order text is shown in (the "Trojan Source" ones): stored
// in a name or a reference, they make it read differently from what it is.
bool is_bidi_control(std::uint32_t c) {
  return c == 0x061C || c == 0x200E || c == 0x200F || (c >= 0x202A && c <= 0x202E) ||
         (c >= 0x2066 && c <= 0x2069);
}

// White space, and the invisible characters that look like none.
bool is_blank_character(std::uint32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x85 ||
         c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200B) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000 || c == 0xFEFF;
}

// The code point of the well-formed sequence of `n` bytes at text[i].
std::uint32_t code_point(std::string_view text, std::size_t i, std::size_t n) {
  const auto b0 = static_cast<std::uint8_t>(text[i]);
  if (n == 1) return b0;
  std::uint32_t code = b0 & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
  for (std::size_t k = 1; k < n; ++k) code = (code << 6) | (text[i + k] & 0x3F);
  return code;
}

void append_escape(std::string& out, std::uint32_t value) {
  char escaped[12];
  std::snprintf(escaped, sizeof escaped, value <= 0xFF ? "\\x%02x" : "\\u%04x", value);
  out += escaped;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = sequence_length(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

bool same_name_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto fold = [](char c) {
      return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    };
    if (fold(a[i]) != fold(b[i])) return false;
  }
  return true;
}

bool is_blank(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = sequence_length(text, i);
    if (n == 0 || !is_blank_character(code_point(text, i, n))) return false;
    i += n;
  }
  return true;
}

std::size_t utf8_length(std::string_view text) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < text.size(); ++count) {
    const std::size_t n = sequence_length(text, i);
    i += n == 0 ? 1 : n;
  }
  return count;
}

void check_text(std::string_view value, std::string_view field, const TextRule& rule) {
  const std::string name(field);
  if (value.empty()) {
    if (rule.required) throw Error(ErrorCode::kInvalidArgument, name + " is required");
    return;
  }
  // A character is at most 4 bytes: a longer value is refused without reading all of it.
  const bool too_long = value.size() > 4 * rule.max_chars;
  if (!too_long && !is_valid_utf8(value)) {
    throw Error(ErrorCode::kInvalidArgument, name + " is not valid UTF-8 text");
  }
  if (too_long || utf8_length(value) > rule.max_chars) {
    throw Error(ErrorCode::kInvalidArgument, name + " is over " + std::to_string(rule.max_chars) +
                                                 " characters (" + quote_for_message(value, 24) +
                                                 ")");
  }
  for (std::size_t i = 0; i < value.size();) {
    const std::size_t n = sequence_length(value, i);
    const std::uint32_t c = code_point(value, i, n);
    const bool allowed_space = !rule.single_line && (c == '\n' || c == '\t' || c == '\r');
    if (is_control(c) && !allowed_space) {
      throw Error(ErrorCode::kInvalidArgument, name + " holds a control character (" +
                                                   quote_for_message(value, 24) +
                                                   "); use printable text");
    }
    if (rule.single_line && is_bidi_control(c)) {
      throw Error(ErrorCode::kInvalidArgument,
                  name + " holds a bidirectional control character (" +
                      quote_for_message(value, 24) +
                      "), which would show it in another order than it is stored; remove it");
    }
    i += n;
  }
  if (rule.required && is_blank(value)) {
    throw Error(ErrorCode::kInvalidArgument,
                name + " is blank (" + quote_for_message(value, 24) + "): give the text itself");
  }
}

namespace {

// Appends the character at text[i] as it is safe to show: invalid bytes and control
// characters as \xNN (newline and tab kept when `keep_layout`), quotes and backslashes
// escaped when `quoting`. Returns the bytes it took.
std::size_t append_shown(std::string& out, std::string_view text, std::size_t i, bool keep_layout,
                         bool quoting) {
  const std::size_t n = sequence_length(text, i);
  if (n == 0) {
    append_escape(out, static_cast<std::uint8_t>(text[i]));
    return 1;
  }
  const std::uint32_t c = code_point(text, i, n);
  if (quoting && (c == '\'' || c == '\\')) {
    out += '\\';
    out += static_cast<char>(c);
  } else if ((is_control(c) && !(keep_layout && (c == '\n' || c == '\t'))) || is_bidi_control(c)) {
    append_escape(out, c);
  } else {
    out.append(text.substr(i, n));
  }
  return n;
}

}  // namespace

std::string quote_for_message(std::string_view text, std::size_t max_chars) {
  std::string out = "'";
  std::size_t i = 0;
  for (std::size_t chars = 0; i < text.size() && chars < max_chars; ++chars) {
    i += append_shown(out, text, i, false, true);
  }
  out += "'";
  if (i < text.size()) {
    out += " (" + std::to_string(utf8_length(text.substr(i))) + " more characters)";
  }
  return out;
}

std::string escape_for_terminal(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) i += append_shown(out, text, i, true, false);
  return out;
}

std::string prometheus_label_value(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace frs
