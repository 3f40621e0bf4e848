// StreamAlerts over a real (in-process, loopback) gRPC server: a subscriber that stops
// reading is cut off with ABORTED instead of growing the server's memory, and resuming
// from the last id it received delivers every alert exactly once; one stalled subscriber
// never holds up nine others.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <thread>

#include "frs/auth/audit_log.h"
#include "frs/auth/tokens.h"
#include "frs/client/channel.h"
#include "frs/service/services.h"
#include "frs/v1/live.grpc.pb.h"
#include "test_tokens.h"
#include "testdata.h"

namespace frs {
namespace {

namespace pb = ::frs::v1;

class AlertStream : public ::testing::Test {
 protected:
  AlertStream() : AlertStream(std::chrono::seconds(3)) {}
  explicit AlertStream(std::chrono::milliseconds write_timeout)
      : limits_{.max_streams = 12, .write_timeout = write_timeout, .max_streams_per_token = 12} {}
  void SetUp() override {
    builder_.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder_.experimental().SetInterceptorCreators(service::make_interceptors(access_));
    builder_.RegisterService(service_.get());
    server_ = builder_.BuildAndStart();
    ASSERT_GT(port_, 0);
  }
  void TearDown() override { server_->Shutdown(); }

  std::unique_ptr<pb::Alerts::Stub> stub() {
    ClientOptions o;
    o.server = "127.0.0.1:" + std::to_string(port_);
    o.token = secret_;
    return pb::Alerts::NewStub(make_channel(o));
  }
  // A client with a small receive window and no window growth, so that the server's writes
  // back up as soon as the client stops reading (as over a slow link).
  std::unique_ptr<pb::Alerts::Stub> slow_stub() {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 4096);
    return pb::Alerts::NewStub(grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_),
                                                         grpc::InsecureChannelCredentials(), args));
  }
  void wait_for_subscribers(std::size_t count) {
    for (int i = 0; i < 6000 && feed_.subscribers() < count; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_EQ(feed_.subscribers(), count);
  }
  void publish(int count) {
    for (int i = 0; i < count; ++i) {
      Alert a;
      a.camera = "door";
      a.watchlist = "wanted";
      a.display_name = std::string(200, 'x');  // big enough messages to fill a small window
      a.distance = 0.4f;
      a.face_jpeg = {1, 2, 3};
      feed_.publish(store_.append(a));
    }
  }

  testing::ScopedTempDir dir_{"alert-stream"};
  AlertStore store_{dir_ / "alerts.db"};
  std::unique_ptr<TokenStore> tokens_ = open_token_store(dir_ / "tokens.db");
  std::unique_ptr<AuditLog> audit_ = open_audit_log(dir_ / "audit.db");
  std::string secret_ = testing::make_token(*tokens_, "console", Role::kDispatcher);
  // Several consoles share one token here: the per-token bound is the global one.
  service::AccessControl access_{*tokens_, *audit_, {.calls_per_second = 0, .burst = 1}};
  AlertFeed feed_;
  service::AlertStreamLimits limits_;
  std::unique_ptr<grpc::Service> service_ =
      service::make_alert_service(access_, store_, feed_, {}, limits_);
  grpc::ServerBuilder builder_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

// Only the queue's bound: a write timeout longer than any machine takes to publish below, so
// that a server write blocked on the stalled client cannot be reset first (under ASan, 3000
// alerts took longer than a 3 s timeout, and the stream ended CANCELLED by the reset).
class AlertStreamQueueBound : public AlertStream {
 protected:
  AlertStreamQueueBound() : AlertStream(std::chrono::minutes(30)) {}
};

TEST_F(AlertStreamQueueBound, ASlowSubscriberIsCutOffAndResumesWithoutLoss) {
  auto stub = slow_stub();
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer " + secret_);  // a channel without frs's interceptor
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(180));
  pb::StreamAlertsRequest request;
  auto reader = stub->StreamAlerts(&context, request);
  wait_for_subscribers(1);

  // Far more alerts than the subscriber's queue (256) and the client's window hold, while
  // the client reads nothing (with 600, one run on a loaded machine delivered them all
  // without a cut-off).
  constexpr int kAlerts = 3000;
  publish(kAlerts);

  std::vector<std::int64_t> received;
  pb::Alert alert;
  while (reader->Read(&alert)) received.push_back(alert.id());
  const grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED) << status.error_message();
  EXPECT_NE(status.error_message().find("fell behind"), std::string::npos);
  ASSERT_LT(received.size(), static_cast<std::size_t>(kAlerts));

  // Resume after the last id received: the backlog brings the rest.
  grpc::ClientContext again;
  again.AddMetadata("authorization", "Bearer " + secret_);  // a channel without frs's interceptor
  again.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
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
}

TEST_F(AlertStream, TenSubscribersOneNeverReadingTheOthersGetEverything) {
  constexpr int kReaders = 9, kAlerts = 600;
  std::vector<std::vector<std::int64_t>> received(kReaders);
  std::vector<grpc::Status> finished(kReaders);
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::thread> readers;
  auto stub_for_readers = stub();
  for (int r = 0; r < kReaders; ++r) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    contexts.back()->AddMetadata("authorization", "Bearer " + secret_);
    contexts.back()->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(180));
    readers.emplace_back([&, r, context = contexts.back().get()] {
      auto reader = stub_for_readers->StreamAlerts(context, pb::StreamAlertsRequest{});
      pb::Alert alert;
      while (received[r].size() < kAlerts && reader->Read(&alert)) {
        received[r].push_back(alert.id());
      }
      context->TryCancel();
      finished[r] = reader->Finish();
    });
  }
  auto slow = slow_stub();
  grpc::ClientContext stalled;
  stalled.AddMetadata("authorization", "Bearer " + secret_);  // a channel without frs's interceptor
  stalled.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(180));
  auto never_read = slow->StreamAlerts(&stalled, pb::StreamAlertsRequest{});
  wait_for_subscribers(kReaders + 1);

  // Faster than any real watchlist alerts (500 a second), for longer than the stalled
  // client's window and queue can hold.
  for (int i = 0; i < kAlerts; ++i) {
    publish(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (auto& t : readers) t.join();
  for (int r = 0; r < kReaders; ++r) {
    ASSERT_EQ(received[r].size(), static_cast<std::size_t>(kAlerts)) << "reader " << r;
    for (int i = 0; i < kAlerts; ++i) ASSERT_EQ(received[r][static_cast<std::size_t>(i)], i + 1);
  }
  // The stalled one was cut off (its queue stayed bounded) rather than holding anyone up.
  pb::Alert alert;
  int stalled_got = 0;
  while (never_read->Read(&alert)) ++stalled_got;
  const grpc::Status status = never_read->Finish();
  // Cut off by whichever bound came first: its queue overflowed (ABORTED "fell behind"), or
  // its blocked write outlasted the write timeout (the reset: CANCELLED). Which one depends
  // on how fast this machine publishes (under ASan, on a loaded machine, the reset).
  EXPECT_TRUE(status.error_code() == grpc::StatusCode::ABORTED ||
              status.error_code() == grpc::StatusCode::CANCELLED)
      << status.error_code() << " " << status.error_message();
  EXPECT_LT(stalled_got, kAlerts);
}

// Over a large backlog a client that reads nothing blocked its server thread for good (24
// such clients: 24 threads); the "fell behind" path never ran for them. A write that does
// not complete within the write timeout resets the stream; streams are bounded in number.
TEST_F(AlertStream, AClientThatStopsReadingOverABacklogIsResetAndStreamsAreBounded) {
  publish(600);  // the backlog: more than the client's window holds
  auto slow = slow_stub();
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<pb::Alert>>> stalled;
  for (int i = 0; i < limits_.max_streams; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    contexts.back()->AddMetadata("authorization", "Bearer " + secret_);
    // Far past the wait below: what ends them there is the server, not their deadline.
    contexts.back()->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(180));
    stalled.push_back(slow->StreamAlerts(contexts.back().get(), pb::StreamAlertsRequest{}));
  }
  wait_for_subscribers(static_cast<std::size_t>(limits_.max_streams));
  // One more is refused while those are open.
  grpc::ClientContext extra;
  extra.AddMetadata("authorization", "Bearer " + secret_);  // a channel without frs's interceptor
  extra.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto refused = stub()->StreamAlerts(&extra, pb::StreamAlertsRequest{});
  pb::Alert alert;
  EXPECT_FALSE(refused->Read(&alert));
  EXPECT_EQ(refused->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Reading nothing, every stalled stream is reset once a write has waited the write
  // timeout (3 s here; the wait allows for a loaded machine) and its server thread freed:
  // the subscriptions end.
  const auto give_up = std::chrono::steady_clock::now() + 20 * limits_.write_timeout;
  while (feed_.subscribers() > 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(feed_.subscribers(), 0u);
  for (auto& reader : stalled) {
    while (reader->Read(&alert)) {
    }
    EXPECT_FALSE(reader->Finish().ok());
  }
  // And a reader that keeps up gets the whole backlog as before.
  grpc::ClientContext fine;
  fine.AddMetadata("authorization", "Bearer " + secret_);  // a channel without frs's interceptor
  fine.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  auto reader = stub()->StreamAlerts(&fine, pb::StreamAlertsRequest{});
  int got = 0;
  while (got < 600 && reader->Read(&alert)) ++got;
  fine.TryCancel();
  reader->Finish();
  EXPECT_EQ(got, 600);
}

}  // namespace
}  // namespace frs
