// StreamAlerts over a real (in-process, loopback) gRPC server: a subscriber that stops
// reading is cut off with ABORTED instead of growing the server's memory, and resuming
// from the last id it received delivers every alert exactly once.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <thread>

#include "frs/service/services.h"
#include "frs/v1/live.grpc.pb.h"
#include "testdata.h"

namespace frs {
namespace {

namespace pb = ::frs::v1;

TEST(AlertStream, ASlowSubscriberIsCutOffAndResumesWithoutLoss) {
  testing::ScopedTempDir dir("alert-stream");
  AlertStore store(dir / "alerts.db");
  AlertFeed feed;
  auto service = service::make_alert_service(store, feed);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(service.get());
  const auto server = builder.BuildAndStart();
  ASSERT_GT(port, 0);
  // A client with a small receive window and no window growth, so that the server's writes
  // back up as soon as the client stops reading (as over a slow link).
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 4096);
  auto stub = pb::Alerts::NewStub(grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(), args));

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  pb::StreamAlertsRequest request;
  auto reader = stub->StreamAlerts(&context, request);
  // Wait until the server side has subscribed.
  for (int i = 0; i < 200 && feed.subscribers() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(feed.subscribers(), 1u);

  // More alerts than the subscriber's queue (256) and the client's window hold, while the
  // client reads nothing.
  constexpr int kAlerts = 600;
  for (int i = 0; i < kAlerts; ++i) {
    Alert a;
    a.camera = "door";
    a.watchlist = "wanted";
    a.display_name = std::string(200, 'x');  // makes each message big enough to fill the window
    a.distance = 0.4f;
    a.face_jpeg = {1, 2, 3};
    feed.publish(store.append(a));
  }

  std::vector<std::int64_t> received;
  pb::Alert alert;
  while (reader->Read(&alert)) received.push_back(alert.id());
  const grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED) << status.error_message();
  EXPECT_NE(status.error_message().find("fell behind"), std::string::npos);
  ASSERT_LT(received.size(), static_cast<std::size_t>(kAlerts));

  // Resume after the last id received: the backlog brings the rest.
  grpc::ClientContext again;
  again.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  pb::StreamAlertsRequest resume;
  resume.set_after_id(received.empty() ? 0 : received.back());
  auto rest = stub->StreamAlerts(&again, resume);
  while (received.size() < static_cast<std::size_t>(kAlerts) && rest->Read(&alert)) {
    received.push_back(alert.id());
  }
  again.TryCancel();
  rest->Finish();
  ASSERT_EQ(received.size(), static_cast<std::size_t>(kAlerts));
  for (int i = 0; i < kAlerts; ++i) EXPECT_EQ(received[static_cast<std::size_t>(i)], i + 1);
  server->Shutdown();
}

}  // namespace
}  // namespace frs
