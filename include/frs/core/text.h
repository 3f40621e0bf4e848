#pragma once
// User text at frs's edges: how long it is (in characters, not bytes), whether it is fit to
// store, and how it is shown back in error messages, terminals and metrics. One place for
// each rule, so that every field and every output follows the same one.

#include <cstddef>
#include <string>
#include <string_view>

namespace frs {

// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or values > U+10FFFF).
bool is_valid_utf8(std::string_view text);

// Whether `text` holds nothing but white space and invisible spaces (U+200B, U+FEFF...);
// true for "".
bool is_blank(std::string_view text);

// Whether two names are the same but for the case of ASCII letters: token names, which
// name people ("ana" and "ANA" are one person, never two reviewers).
bool same_name_ignoring_case(std::string_view a, std::string_view b);

// Characters (Unicode code points) in well-formed UTF-8 `text`.
std::size_t utf8_length(std::string_view text);

struct TextRule {
  std::size_t max_chars = 128;  // most characters (code points) accepted
  bool required = false;        // empty or blank (only spaces) refused
  // Names, purposes, references: no control characters at all, and no bidirectional
  // controls (U+202E...); else tab and newline are allowed.
  bool single_line = true;
};

// Throws Error(kInvalidArgument) naming `field` when `value` is not UTF-8, too long, empty
// when required, or holds control characters the rule does not allow. The message never
// echoes more than a short, escaped prefix of the value.
void check_text(std::string_view value, std::string_view field, const TextRule& rule);

// `text` for an error or log message: in single quotes, control characters and quotes
// escaped, cut after `max_chars` characters with the count of what was left out. Input a
// client sent goes through this before it is echoed back.
std::string quote_for_message(std::string_view text, std::size_t max_chars = 64);

// `text` fit for a terminal: control characters (C0, DEL, C1) and invalid UTF-8 bytes are
// shown as \xNN escapes, bidirectional controls as \uNNNN, so no stored name can move the
// cursor, change the colours or reorder what is shown.
std::string escape_for_terminal(std::string_view text);

// A Prometheus text-format label value (what goes between the quotes): backslash, double
// quote and newline escaped as the exposition format requires.
std::string prometheus_label_value(std::string_view text);

}  // namespace frs
