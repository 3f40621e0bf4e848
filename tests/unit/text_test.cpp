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

TEST(Text, RefusesBlankRequiredTextAndBidiControlsInNames) {
  const TextRule required{.max_chars = 200, .required = true};
  for (const std::string blank :
       {"    ", " \t ", "\xC2\xA0\xE2\x80\x8B", "\xE3\x80\x80\xEF\xBB\xBF"}) {
    EXPECT_TRUE(is_blank(blank));
    // Tabs are control characters in a single-line field: refused either way.
    EXPECT_NE(message_of(blank, required), "") << blank;
  }
  EXPECT_NE(message_of("    ", required).find("blank"), std::string::npos);
  EXPECT_EQ(message_of("    ", {}), "");  // optional text may be only spaces
  EXPECT_EQ(message_of(" case 7 ", required), "");
  EXPECT_FALSE(is_blank("x"));
  EXPECT_TRUE(same_name_ignoring_case("T-Dispatcher", "t-dispatcher"));
  EXPECT_FALSE(same_name_ignoring_case("ana", "ana2"));
  EXPECT_FALSE(same_name_ignoring_case("a.b", "a-b"));
  EXPECT_FALSE(is_blank("\xFF"));
  EXPECT_TRUE(is_blank(""));
  // U+202E (right-to-left override), U+2066 (left-to-right isolate), U+200F (RLM).
  for (const std::string bidi : {"case\xE2\x80\xAE"
                                 "7102",
                                 "\xE2\x81\xA6x", "a\xE2\x80\x8F"}) {
    EXPECT_NE(message_of(bidi, {}).find("bidirectional control"), std::string::npos) << bidi;
    EXPECT_EQ(message_of(bidi, {.max_chars = 100, .single_line = false}), "");
  }
  EXPECT_EQ(escape_for_terminal("case\xE2\x80\xAE"
                                "7102"),
            "case\\u202e7102");
  EXPECT_EQ(message_of("\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D", {}), "");  // Hebrew text itself is fine
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
