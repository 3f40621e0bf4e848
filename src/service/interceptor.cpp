// The server's one interceptor. Today it turns a request gRPC could not parse into
// INVALID_ARGUMENT naming the field; the access checks of the next issue (token -> principal,
// the method -> roles table) belong here too.

#include <google/protobuf/stubs/logging.h>
#include <grpcpp/support/server_interceptor.h>
#include <spdlog/spdlog.h>

#include <string>

#include "frs/service/services.h"

namespace frs::service {
namespace {

// protobuf reports why a message did not parse only in a log line ("String field
// 'frs.v1.X.name' contains invalid UTF-8 data when parsing ..."); gRPC then answers
// INTERNAL with an empty message. The log line is kept for the thread that parsed, which in
// the synchronous server is the one that sends the status.
thread_local std::string last_parse_problem;

void protobuf_log(google::protobuf::LogLevel level, const char* file, int line,
                  const std::string& message) {
  if (message.find("when parsing") != std::string::npos) {
    last_parse_problem = message;
    return;  // reported to the client instead; a client's bad bytes are not a server event
  }
  if (level >= google::protobuf::LOGLEVEL_ERROR) {
    spdlog::error("protobuf {}:{}: {}", file, line, message);
  } else {
    spdlog::warn("protobuf {}:{}: {}", file, line, message);
  }
}

// The field named in protobuf's message ('frs.v1.CreateWatchlistRequest.name'), or "".
std::string field_in(const std::string& message) {
  const auto open = message.find('\'');
  const auto close = open == std::string::npos ? open : message.find('\'', open + 1);
  if (close == std::string::npos) return "";
  return message.substr(open + 1, close - open - 1);
}

class RequestInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit RequestInterceptor(grpc::experimental::ServerRpcInfo* info) : info_(info) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      unparsed_ = methods->GetRecvMessage() == nullptr;
      if (!unparsed_) last_parse_problem.clear();  // a stale line never names a later field
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) && unparsed_) {
      const grpc::Status sent = methods->GetSendStatus();
      if (sent.error_code() == grpc::StatusCode::INTERNAL && sent.error_message().empty()) {
        const std::string field = field_in(last_parse_problem);
        std::string message;
        if (last_parse_problem.find("UTF-8") != std::string::npos && !field.empty()) {
          message = "field " + field + " is not valid UTF-8 text: string fields take UTF-8";
        } else {
          message = std::string("the request is not a valid message for ") + info_->method() +
                    (field.empty() ? "" : " (field " + field + ")");
        }
        last_parse_problem.clear();
        methods->ModifySendStatus({grpc::StatusCode::INVALID_ARGUMENT, message});
      }
    }
    methods->Proceed();
  }

 private:
  grpc::experimental::ServerRpcInfo* info_;
  bool unparsed_ = false;
};

class RequestInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RequestInterceptor(info);
  }
};

}  // namespace

std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
make_interceptors() {
  static const bool log_handler_set = [] {
    google::protobuf::SetLogHandler(protobuf_log);
    return true;
  }();
  (void)log_handler_set;
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> out;
  out.push_back(std::make_unique<RequestInterceptorFactory>());
  return out;
}

}  // namespace frs::service
