#include "frs/core/logfmt.h"

#include <gtest/gtest.h>

namespace frs {
namespace {

TEST(Logfmt, PlainWordsStayAsTheyAreOthersAreQuotedAndEscaped) {
  EXPECT_EQ(logfmt_value("gate-2"), "gate-2");
  EXPECT_EQ(logfmt_value(""), "\"\"");
  EXPECT_EQ(logfmt_value("no route to host"), "\"no route to host\"");
  EXPECT_EQ(logfmt_value("a=b"), "\"a=b\"");
  EXPECT_EQ(logfmt_value("say \"hi\" \\ bye"), "\"say \\\"hi\\\" \\\\ bye\"");
  EXPECT_EQ(logfmt_value("two\nlines\t"), "\"two\\nlines\\x09\"");
}

}  // namespace
}  // namespace frs
