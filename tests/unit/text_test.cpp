#include "frs/core/text.h"

#include <gtest/gtest.h>

#include "frs/core/error.h"

namespace frs {
namespace {

std::string message_of(std::string_view value, const TextRule& rule) {
  try {
    check_text(value, "name", rule);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    return e.what();
  }
  return "";
}

TEST(Text, LimitsCountCharactersNotBytes) {
  std::string emoji;
  for (int i = 0; i < 33; ++i) emoji += "\xF0\x9F\x98\x80";  // U+1F600, 4 bytes each
  EXPECT_EQ(utf8_length(emoji), 33u);
  EXPECT_EQ(message_of(emoji, {.max_chars = 128}), "");  // 132 bytes, 33 characters
  EXPECT_NE(message_of(emoji, {.max_chars = 32}).find("over 32 characters"), std::string::npos);
  EXPECT_EQ(message_of("Zoë Ångström", {.max_chars = 12}), "");
  EXPECT_NE(message_of("", {.required = true}).find("required"), std::string::npos);
  EXPECT_EQ(message_of("", {}), "");
}

TEST(Text, RefusesInvalidUtf8AndControlCharactersWithShortMessages) {
  for (const std::string bad : {"\xC3", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "a\xFFz"}) {
    EXPECT_FALSE(is_valid_utf8(bad)) << bad;
    EXPECT_NE(message_of(bad, {}).find("not valid UTF-8"), std::string::npos);
  }
  EXPECT_NE(message_of("cam\x1b[31mred", {}).find("control character"), std::string::npos);
  EXPECT_NE(message_of("two\nlines", {}).find("control character"), std::string::npos);
  EXPECT_EQ(message_of("two\nlines\tok", {.max_chars = 100, .single_line = false}), "");
  EXPECT_NE(message_of("\xC2\x9B"
                       "c1",
                       {})
                .find("control character"),
            std::string::npos);
  // A megabyte of input is refused with a message of bounded size.
  const std::string huge(1 << 20, 'x');
  const std::string message = message_of(huge, {.max_chars = 128});
  EXPECT_LT(message.size(), 200u) << message;
  EXPECT_NE(message.find("more characters"), std::string::npos);
}

TEST(Text, QuotesEscapesAndTruncatesWhatIsShownBack) {
  EXPECT_EQ(quote_for_message("gate"), "'gate'");
  EXPECT_EQ(quote_for_message("it's"), "'it\\'s'");
  EXPECT_EQ(quote_for_message("a\x1b[2Jb"), "'a\\x1b[2Jb'");
  EXPECT_EQ(quote_for_message("abcdef", 3), "'abc' (3 more characters)");
  EXPECT_EQ(escape_for_terminal("wanted\x1b]0;owned\x07"), "wanted\\x1b]0;owned\\x07");
  EXPECT_EQ(escape_for_terminal("Zoë\n"), "Zoë\n");
  EXPECT_EQ(escape_for_terminal("bad\xFF"), "bad\\xff");
  EXPECT_EQ(prometheus_label_value("x\"} 1\nfrs_injected{camera=\"y"),
            "x\\\"} 1\\nfrs_injected{camera=\\\"y");
  EXPECT_EQ(prometheus_label_value("a\\b"), "a\\\\b");
}

}  // namespace
}  // namespace frs
