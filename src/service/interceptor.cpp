// The server's one interceptor. It makes the access decision of every call before the
// request reaches a service (AccessControl::admit: token, role, rate, purpose), and turns
// a request gRPC could not parse into INVALID_ARGUMENT naming the field.

#include <google/protobuf/stubs/logging.h>
#include <grpc/grpc.h>
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
  RequestInterceptor(grpc::experimental::ServerRpcInfo* info, AccessControl* access)
      : info_(info), access_(access) {}
  ~RequestInterceptor() override {
    if (access_ != nullptr) access_->forget(info_->server_context());
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA) &&
        access_ != nullptr && !is_public_method(info_->method())) {
      grpc::ServerContextBase* context = info_->server_context();
      const CallDecision& decision = access_->admit(
          context, info_->method(), *methods->GetRecvInitialMetadata(), context->peer());
      // frs's own services apply the decision in serve(), with the status it carries. Any
      // other (the server reflection) cannot be made to answer from here, so its call is
      // ended before its handler reads the request, with the refusal's status (through the
      // core API: TryCancel alone would answer CANCELLED, which says nothing of why).
      if (!decision.refusal.ok() && std::string_view(info_->method()).rfind("/frs.", 0) != 0) {
        grpc_call_cancel_with_status(context->c_call(),
                                     static_cast<grpc_status_code>(decision.refusal.error_code()),
                                     decision.refusal.error_message().c_str(), nullptr);
        context->TryCancel();
      }
    }
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
  AccessControl* access_;
  bool unparsed_ = false;
};

class RequestInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RequestInterceptorFactory(AccessControl* access) : access_(access) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RequestInterceptor(info, access_);
  }

 private:
  AccessControl* access_;
};

}  // namespace

std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
make_interceptors(AccessControl& access) {
  static const bool log_handler_set = [] {
    google::protobuf::SetLogHandler(protobuf_log);
    return true;
  }();
  (void)log_handler_set;
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> out;
  out.push_back(std::make_unique<RequestInterceptorFactory>(&access));
  return out;
}

}  // namespace frs::service
