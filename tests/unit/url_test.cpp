#include "frs/core/url.h"

#include <gtest/gtest.h>

namespace frs {
namespace {

TEST(RedactUrl, HidesEveryFormOfCameraCredential) {
  EXPECT_EQ(redact_url("rtsp://admin:s3cret@10.0.0.5:554/stream1"),
            "rtsp://admin:***@10.0.0.5:554/stream1");
  EXPECT_EQ(redact_url("rtsp://admin:p@ss@cam/x"), "rtsp://admin:***@cam/x");
  // A '/' in the password: the user info still ends at the last '@'.
  EXPECT_EQ(redact_url("rtsp://admin:pa/ss@cam/x"), "rtsp://admin:***@cam/x");
  EXPECT_EQ(redact_url("rtsp://admin:pa:ss@[fe80::1]:554/x"), "rtsp://admin:***@[fe80::1]:554/x");
  EXPECT_EQ(redact_url("http://cam/snap.cgi?user=admin&password=hunter2&res=hd"),
            "http://cam/snap.cgi?user=admin&password=***&res=hd");
  EXPECT_EQ(redact_url("https://cam/live?PWD=x;token=abc#top"),
            "https://cam/live?PWD=***;token=***#top");
  EXPECT_EQ(redact_url("rtsps://u:p@cam/live?api_key=k&AuthSig=s"),
            "rtsps://u:***@cam/live?api_key=***&AuthSig=***");
  // Nothing secret: unchanged.
  // Path parameters, which RTSP servers take as well as a query.
  EXPECT_EQ(redact_url("rtsp://127.0.0.1:1/x;password=hunter2"),
            "rtsp://127.0.0.1:1/x;password=***");
  EXPECT_EQ(redact_url("rtsp://u:p;w@cam/live;res=hd;Token=t/track1;x=1?sig=s"),
            "rtsp://u:***@cam/live;res=hd;Token=***/track1;x=1?sig=***");
  EXPECT_EQ(redact_url("rtsp://cam/live;password=;"), "rtsp://cam/live;password=***;");
  EXPECT_EQ(redact_url("rtsp://cam/a;b;;c"), "rtsp://cam/a;b;;c");
  EXPECT_EQ(redact_urls_in("open rtsp://cam/x;pwd=s3cr failed"),
            "open rtsp://cam/x;pwd=*** failed");
  EXPECT_EQ(redact_url("rtsp://10.0.0.5:554/stream1"), "rtsp://10.0.0.5:554/stream1");
  EXPECT_EQ(redact_url("rtsp://viewer@cam/live"), "rtsp://viewer@cam/live");
  EXPECT_EQ(redact_url("http://cam/snap?user=a@b"), "http://cam/snap?user=a@b");
  EXPECT_EQ(redact_url("/videos/a:b@c.mp4"), "/videos/a:b@c.mp4");
  EXPECT_EQ(redact_url(""), "");
}

TEST(RedactUrl, FindsUrlsInsideMessages) {
  EXPECT_EQ(redact_urls_in("Could not open rtsp://a:b@cam/x (timeout); retry http://u:v@h/?"
                           "password=z later"),
            "Could not open rtsp://a:***@cam/x (timeout); retry http://u:***@h/?password=*** "
            "later");
  EXPECT_EQ(redact_urls_in("uri='rtsp://a:b@cam/x'"), "uri='rtsp://a:***@cam/x'");
  EXPECT_EQ(redact_urls_in("no url here"), "no url here");
  EXPECT_EQ(redact_urls_in("://"), "://");
}

TEST(SplitUrl, HostPortAndUserInfo) {
  auto p = split_url("RTSP://admin:pa/ss@Cam.Example:8554/live?x=1");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->scheme, "rtsp");
  EXPECT_EQ(p->user_info, "admin:pa/ss");
  EXPECT_EQ(p->host, "cam.example");
  EXPECT_EQ(p->port, "8554");
  EXPECT_EQ(p->rest, "/live?x=1");
  p = split_url("rtsp://[::1]:554/x");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->host, "::1");
  EXPECT_EQ(p->port, "554");
  p = split_url("http://10.0.0.7");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->host, "10.0.0.7");
  EXPECT_EQ(p->rest, "");
  EXPECT_FALSE(split_url("/videos/a.mp4"));
}

}  // namespace
}  // namespace frs
