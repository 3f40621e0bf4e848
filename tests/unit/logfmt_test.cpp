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

TEST(Logfmt, CameraPasswordsNeverReachTheLog) {
  EXPECT_EQ(url_for_logs("rtsp://admin:s3cret@10.0.0.5:554/stream1"),
            "rtsp://admin:***@10.0.0.5:554/stream1");
  EXPECT_EQ(url_for_logs("rtsp://admin:p@ss@cam/x"), "rtsp://admin:***@cam/x");
  EXPECT_EQ(url_for_logs("rtsp://10.0.0.5:554/stream1"), "rtsp://10.0.0.5:554/stream1");
  EXPECT_EQ(url_for_logs("rtsp://viewer@cam/live"), "rtsp://viewer@cam/live");
  EXPECT_EQ(url_for_logs("http://cam/snap?user=a@b"), "http://cam/snap?user=a@b");
  EXPECT_EQ(url_for_logs("/videos/a:b@c.mp4"), "/videos/a:b@c.mp4");
}

}  // namespace
}  // namespace frs
