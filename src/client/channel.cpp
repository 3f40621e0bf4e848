#include "frs/client/channel.h"

#include <grpcpp/support/client_interceptor.h>

#include <fstream>

#include "frs/core/error.h"
#include "frs/core/text.h"

namespace frs {
namespace {

// Adds the credentials metadata to every call of the channel.
class CredentialsInterceptor final : public grpc::experimental::Interceptor {
 public:
  CredentialsInterceptor(const std::string& authorization, const std::string& purpose)
      : authorization_(authorization), purpose_(purpose) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      auto* metadata = methods->GetSendInitialMetadata();
      if (!authorization_.empty()) metadata->emplace("authorization", authorization_);
      if (!purpose_.empty()) {
        // Plain `purpose` for printable ASCII; anything else as bytes (UTF-8) in purpose-bin.
        bool ascii = true;
        for (const char c : purpose_) ascii = ascii && c >= ' ' && c < 127;
        metadata->emplace(ascii ? "purpose" : "purpose-bin", purpose_);
      }
    }
    methods->Proceed();
  }

 private:
  const std::string& authorization_;
  const std::string& purpose_;
};

class CredentialsInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  CredentialsInterceptorFactory(std::string token, std::string purpose)
      : authorization_(token.empty() ? "" : "Bearer " + token), purpose_(std::move(purpose)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new CredentialsInterceptor(authorization_, purpose_);
  }

 private:
  std::string authorization_;
  std::string purpose_;
};

std::string read_pem(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string("cannot read ") + what + " " + quote_for_message(path, 200));
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

std::shared_ptr<grpc::Channel> make_channel(const ClientOptions& o) {
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "--tls-cert and --tls-key go together: give both");
  }
  if (o.purpose.find_first_of("\r\n") != std::string::npos) {
    throw Error(ErrorCode::kInvalidArgument, "the purpose must be one line of text");
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (o.tls || !o.tls_ca.empty() || !o.tls_cert.empty()) {
    grpc::SslCredentialsOptions ssl;
    if (!o.tls_ca.empty()) ssl.pem_root_certs = read_pem(o.tls_ca, "the CA file (--tls-ca)");
    if (!o.tls_cert.empty()) {
      ssl.pem_cert_chain = read_pem(o.tls_cert, "the certificate (--tls-cert)");
      ssl.pem_private_key = read_pem(o.tls_key, "the private key (--tls-key)");
    }
    credentials = grpc::SslCredentials(ssl);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(o.max_message_mb << 20);
  args.SetMaxReceiveMessageSize(o.max_message_mb << 20);
  if (o.own_connection) args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<CredentialsInterceptorFactory>(o.token, o.purpose));
  return grpc::experimental::CreateCustomChannelWithInterceptors(o.server, credentials, args,
                                                                 std::move(interceptors));
}

}  // namespace frs
