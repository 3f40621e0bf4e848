// Who may do what, on a real frs-server: the whole method -> roles table walked with a token
// of every role, the token lifecycle, purposes, TLS and mTLS, plain text refused off
// loopback, the per-token rate limit, and the audit log (its rows, fail-closed writes, and
// tampering found at the row).

#include "frs/auth/access.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <sqlite3.h>

#include <algorithm>
#include <future>
#include <nlohmann/json.hpp>
#include <set>

#include "frs/core/digest.h"
#include "frs/v1/audit.grpc.pb.h"
#include "frs/v1/eval.grpc.pb.h"
#include "frs/v1/tokens.grpc.pb.h"
#include "model_fixture.h"
#include "server_process.h"

namespace frs::testing {
namespace {

using namespace std::chrono_literals;

// Every method of every frs service, from the compiled descriptors (not from the table).
std::vector<std::string> frs_methods() {
  // Touch one message of each file so that its descriptors are in the generated pool.
  (void)pb::Watchlist::descriptor();
  (void)pb::Alert::descriptor();
  (void)pb::EvaluateRequest::descriptor();
  (void)pb::Token::descriptor();
  (void)pb::AuditRecord::descriptor();
  std::vector<std::string> methods;
  for (const char* service : {"frs.v1.Gallery", "frs.v1.Search", "frs.v1.Evaluation",
                              "frs.v1.Cameras", "frs.v1.Alerts", "frs.v1.Tokens", "frs.v1.Audit"}) {
    const auto* s = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    EXPECT_NE(s, nullptr) << service;
    if (s == nullptr) continue;
    for (int i = 0; i < s->method_count(); ++i) {
      methods.push_back("/" + std::string(service) + "/" + s->method(i)->name());
    }
  }
  return methods;
}

class AccessTest : public ::testing::Test {
 protected:
  void TearDown() override {
    server_.reset();
    if (HasFailure()) {
      std::ifstream log(root_ / "server.log");
      std::cerr << "--- frs-server log ---\n" << log.rdbuf() << "\n";
    }
  }
  void start(std::vector<std::string> extra = {}, ClientOptions client = {},
             std::string listen_host = "127.0.0.1") {
    server_ = std::make_unique<Server>(root_ / "data", std::move(extra), std::move(client),
                                       std::move(listen_host));
  }
  std::string create_token(const std::string& name, const std::string& role,
                           std::int64_t expires_at_ms = 0) {
    return server_->create_token(name, role, expires_at_ms);
  }

  ScopedTempDir root_{"access"};
  std::unique_ptr<Server> server_;
};

TEST(AccessTable, IsSortedAndNamesEveryMethodOfEveryService) {
  const auto table = access_table();
  for (std::size_t i = 1; i < table.size(); ++i) {
    EXPECT_LT(table[i - 1].method, table[i].method) << "keep the table sorted";
  }
  std::set<std::string> in_table;
  for (const MethodAccess& m : table) in_table.insert(std::string(m.method));
  for (const std::string& method : frs_methods()) {
    EXPECT_TRUE(in_table.count(method)) << method << " is not in the access table";
    EXPECT_NE(find_method_access(method), nullptr);
    in_table.erase(method);
  }
  in_table.erase("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo");
  EXPECT_TRUE(in_table.empty()) << "the table names a method no service has: " << *in_table.begin();
  EXPECT_EQ(find_method_access("/frs.v1.Gallery/NoSuchMethod"), nullptr);
}

// Each role against each method: allowed, or PERMISSION_DENIED; no token, a wrong, a
// revoked or an expired token: UNAUTHENTICATED, for every method.
TEST_F(AccessTest, EveryRoleAgainstEveryMethodAndEveryBadToken) {
  start({"--refused-rate-limit", "0"});  // its 100 refused calls are the point here
  std::map<Role, std::shared_ptr<grpc::Channel>> channels;
  for (Role role : kAllRoles) {
    const std::string name = "t-" + std::string(to_string(role));
    channels[role] = server_->channel_with(create_token(name, std::string(to_string(role))));
  }
  const auto methods = frs_methods();
  ASSERT_GE(methods.size(), 25u);
  for (const std::string& method : methods) {
    const MethodAccess* rule = find_method_access(method);
    ASSERT_NE(rule, nullptr) << method;
    for (Role role : kAllRoles) {
      const grpc::Status status = call_method(channels[role], method);
      if (rule->roles.contains(role)) {
        EXPECT_NE(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << to_string(role) << " " << method << ": " << status.error_message();
        EXPECT_NE(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
            << to_string(role) << " " << method;
      } else {
        EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << to_string(role) << " " << method << ": " << status.error_message();
        EXPECT_NE(status.error_message().find("needs " + rule->roles.names()), std::string::npos)
            << status.error_message();
      }
    }
  }

  const std::string revoked = create_token("leaver", "operator");
  {
    auto tokens = pb::Tokens::NewStub(server_->channel());
    grpc::ClientContext c;
    pb::RevokeTokenRequest r;
    r.set_name("leaver");
    pb::Token t;
    ASSERT_TRUE(tokens->RevokeToken(&c, r, &t).ok());
    EXPECT_GT(t.revoked_at_ms(), 0);
    EXPECT_EQ(t.revoked_by(), "admin");
  }
  // Valid for 3 s (ample for one call on a loaded machine), then expired.
  const auto expiry = std::chrono::system_clock::now() + 3s;
  const std::string expired = create_token(
      "temp", "admin",
      std::chrono::duration_cast<std::chrono::milliseconds>(expiry.time_since_epoch()).count());
  EXPECT_TRUE(call_method(server_->channel_with(expired), "/frs.v1.Gallery/ListWatchlists").ok());
  std::this_thread::sleep_until(expiry + 100ms);
  const std::map<std::string, std::string> bad_tokens = {
      {"none", ""},
      {"wrong", new_token_secret()},
      {"revoked", revoked},
      {"expired", expired},
  };
  for (const auto& [kind, secret] : bad_tokens) {
    const auto channel = server_->channel_with(secret);
    for (const std::string& method : methods) {
      const grpc::Status status = call_method(channel, method);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << kind << " token, " << method << ": " << status.error_message();
    }
    // The server reflection is refused too, saying why (not CANCELLED).
    const grpc::Status reflection =
        call_method(channel, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo");
    EXPECT_EQ(reflection.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << kind << ": " << reflection.error_message();
    EXPECT_NE(reflection.error_message().find("token"), std::string::npos)
        << reflection.error_message();
    // The standard health service needs no token.
    EXPECT_TRUE(call_method(channel, "/grpc.health.v1.Health/Check").ok()) << kind;
  }
  const grpc::Status revoked_status =
      call_method(server_->channel_with(revoked), "/frs.v1.Gallery/ListWatchlists");
  EXPECT_NE(revoked_status.error_message().find("revoked"), std::string::npos);
  const grpc::Status expired_status =
      call_method(server_->channel_with(expired), "/frs.v1.Gallery/ListWatchlists");
  EXPECT_NE(expired_status.error_message().find("expired"), std::string::npos);
}

TEST_F(AccessTest, PurposeIsRequiredWhereFacesAreSearchedAddedOrShown) {
  start();
  const auto no_purpose = server_->channel_with(server_->admin_token(), "");
  for (const char* method : {"/frs.v1.Search/Search", "/frs.v1.Gallery/Enroll",
                             "/frs.v1.Gallery/AddFaces", "/frs.v1.Gallery/CreateWatchlist",
                             "/frs.v1.Cameras/AddCamera", "/frs.v1.Alerts/GetAlert"}) {
    const grpc::Status status = call_method(no_purpose, method);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << method;
    EXPECT_NE(status.error_message().find("needs a purpose"), std::string::npos)
        << status.error_message();
  }
  EXPECT_TRUE(call_method(no_purpose, "/frs.v1.Gallery/ListWatchlists").ok());
  const grpc::Status too_short =
      call_method(server_->channel_with(server_->admin_token(), "abc"), "/frs.v1.Search/Search");
  EXPECT_EQ(too_short.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(too_short.error_message().find("at least 4"), std::string::npos);
  const grpc::Status too_long =
      call_method(server_->channel_with(server_->admin_token(), std::string(201, 'x')),
                  "/frs.v1.Search/Search");
  EXPECT_EQ(too_long.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // UTF-8 purposes travel as purpose-bin.
  const grpc::Status utf8 = call_method(
      server_->channel_with(server_->admin_token(), "Fall 17 — Müller"), "/frs.v1.Search/Search");
  EXPECT_EQ(utf8.error_code(), grpc::StatusCode::INVALID_ARGUMENT);  // no image: but past purpose
  EXPECT_EQ(utf8.error_message().find("purpose"), std::string::npos) << utf8.error_message();
}

TEST_F(AccessTest, TokenLifecycleThroughTheCli) {
  start();
  const std::string frs = std::string(FRS_CLI) + " --server " + server_->address() + " ";
  // The admin token comes from FRS_TOKEN_FILE (set by Server): create a token, use it.
  auto [code, out] = run_command(frs + "token create alice@agency --role investigator");
  ASSERT_EQ(code, 0) << out;
  const std::string secret = out.substr(0, out.find('\n'));
  EXPECT_EQ(secret.rfind("frs_", 0), 0u) << out;
  EXPECT_EQ(secret.size(), 47u);
  const std::string image = face_path("obama.jpg").string();
  // An option shared by every command goes before or after the subcommand.
  std::tie(code, out) =
      run_command("FRS_TOKEN_FILE= " + std::string(FRS_CLI) + " --token " + secret + " search " +
                  image + " --server " + server_->address() + " --json");
  EXPECT_EQ(code, 0) << out;
  std::tie(code, out) =
      run_command("FRS_TOKEN_FILE= FRS_TOKEN=" + secret + " " + frs + "watchlist list");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("has the role investigator"), std::string::npos) << out;
  std::tie(code, out) = run_command(frs + "token list --json");
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("\"name\":\"alice@agency\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"role\":\"investigator\""), std::string::npos) << out;
  EXPECT_EQ(out.find(secret), std::string::npos) << "a listed token shows its secret";
  std::tie(code, out) = run_command(frs + "token create alice@agency --role admin");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("revoke it first"), std::string::npos) << out;
  std::tie(code, out) = run_command(frs + "token create 'bad name' --role admin");
  EXPECT_EQ(code, 1);
  std::tie(code, out) = run_command(frs + "token create temp --role admin --expires 2001-01-01");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("past"), std::string::npos) << out;
  std::tie(code, out) = run_command(frs + "token revoke alice@agency");
  ASSERT_EQ(code, 0) << out;
  std::tie(code, out) =
      run_command("FRS_TOKEN_FILE= FRS_TOKEN=" + secret + " " + frs + "search " + image);
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("revoked"), std::string::npos) << out;
  std::tie(code, out) = run_command("FRS_TOKEN_FILE= FRS_TOKEN= " + frs + "watchlist list");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("no token"), std::string::npos) << out;

  // The admin token file: mode 0600, and its secret never in the log.
  struct stat st {};
  ASSERT_EQ(::stat((root_ / "data" / "admin.token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string log = bytes_of(root_ / "server.log");
  EXPECT_NE(log.find("admin.token"), std::string::npos);
  EXPECT_EQ(log.find(server_->admin_token()), std::string::npos);
  EXPECT_EQ(log.find(secret), std::string::npos);
}

// One value per use of a repeatable option: the images after it are images.
TEST_F(AccessTest, RepeatableOptionsTakeOneValueEach) {
  start();
  const std::string frs = std::string(FRS_CLI) + " --server " + server_->address() + " ";
  ASSERT_EQ(run_command(frs + "watchlist create wanted").first, 0);
  const auto [code, out] =
      run_command(frs + "search --json --watchlist wanted " + face_path("obama.jpg").string() +
                  " " + face_path("biden.jpg").string());
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("obama.jpg"), std::string::npos) << out;
  EXPECT_NE(out.find("biden.jpg"), std::string::npos) << out;
}

TEST_F(AccessTest, RateLimitPerTokenSaysWhenToRetry) {
  start({"--rate-limit", "1", "--rate-burst", "3"});
  const auto channel = server_->channel();
  // The start-up check took some of the burst; within a few calls it runs out (more on a
  // loaded machine, where the bucket refills between slow calls).
  std::string retry_after;
  grpc::Status status;
  for (int i = 0; i < 30 && status.ok(); ++i) {
    status = call_method(channel, "/frs.v1.Gallery/ListWatchlists", 3000ms, &retry_after);
  }
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_FALSE(retry_after.empty());
  EXPECT_GT(std::stoi(retry_after), 0);
  EXPECT_LE(std::stoi(retry_after), 1000);
  // Once the wait it was told has passed, the same token may call again.
  std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(retry_after) + 50));
  EXPECT_TRUE(call_method(channel, "/frs.v1.Gallery/ListWatchlists").ok());
}

// Calls without a valid token are limited per address, and a flood of them is a few log
// lines that say how many were left out; a valid token at the same address is not held up.
TEST_F(AccessTest, RefusedCallsAreLimitedPerAddressAndSummarisedInTheLog) {
  start({"--refused-rate-limit", "1", "--refused-rate-burst", "5"});
  const auto stranger = server_->channel_with("frs_" + std::string(43, 'x'));
  int unauthenticated = 0, limited = 0;
  std::string retry_after;
  for (int i = 0; i < 40; ++i) {
    std::string retry;
    const grpc::Status s = call_method(stranger, "/frs.v1.Gallery/ListWatchlists", 3000ms, &retry);
    if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED) ++unauthenticated;
    if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++limited;
      retry_after = retry;
      EXPECT_NE(s.error_message().find("too many calls without a valid token from ipv4:127.0.0.1"),
                std::string::npos)
          << s.error_message();
    }
  }
  EXPECT_GE(unauthenticated, 5);
  EXPECT_GT(limited, 0) << "40 refused calls, none limited";
  EXPECT_EQ(unauthenticated + limited, 40);
  ASSERT_FALSE(retry_after.empty());
  EXPECT_GT(std::stoi(retry_after), 0);
  EXPECT_TRUE(call_method(server_->channel(), "/frs.v1.Gallery/ListWatchlists").ok());
  const std::string log = bytes_of(root_ / "server.log");
  std::size_t lines = 0;
  for (auto at = log.find("refused="); at != std::string::npos; at = log.find("refused=", at + 1)) {
    ++lines;
  }
  EXPECT_LT(lines, 40u) << "one line per refused call";
  EXPECT_GE(lines, 1u);
}

// Certificates made here with openssl: a CA, the server's (for 127.0.0.1) and a client's.
struct TestCertificates {
  explicit TestCertificates(const std::filesystem::path& dir) : dir(dir) {
    const std::string d = dir.string();
    const std::string script =
        "set -e; cd " + d +
        "; openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
        "-subj /CN=frs-test-ca 2>/dev/null"
        "; openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
        "-subj /CN=127.0.0.1 2>/dev/null"
        "; printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > server.ext"
        "; openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out server.pem -days 2 -extfile server.ext 2>/dev/null"
        "; openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr "
        "-subj /CN=console-1 2>/dev/null"
        "; openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out client.pem -days 2 2>/dev/null";
    made = std::system(script.c_str()) == 0;
  }
  std::string file(const char* name) const { return (dir / name).string(); }
  std::filesystem::path dir;
  bool made = false;
};

TEST_F(AccessTest, TlsAndMutualTlsAndPlainTextRefusedOffLoopback) {
  const TestCertificates certs(root_.path());
  ASSERT_TRUE(certs.made) << "openssl could not make the test certificates";
  ClientOptions tls;
  tls.tls_ca = certs.file("ca.pem");
  start({"--tls-cert", certs.file("server.pem"), "--tls-key", certs.file("server.key")}, tls);
  EXPECT_TRUE(call_method(server_->channel(), "/frs.v1.Gallery/ListWatchlists").ok());
  ClientOptions plain;
  plain.server = server_->address();
  plain.token = server_->admin_token();
  EXPECT_EQ(call_method(make_channel(plain), "/frs.v1.Gallery/ListWatchlists", 2000ms).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // The CLI with --tls-ca.
  auto [code, out] = run_command(std::string(FRS_CLI) + " watchlist list --server " +
                                 server_->address() + " --tls-ca " + certs.file("ca.pem"));
  EXPECT_EQ(code, 0) << out;
  // Without it: told that the server may serve TLS, not to start it.
  std::tie(code, out) =
      run_command(std::string(FRS_CLI) + " watchlist list --server " + server_->address());
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("if it serves TLS"), std::string::npos) << out;
  EXPECT_EQ(out.find("start it"), std::string::npos) << out;
  // With a CA that did not sign its certificate: the handshake, named.
  std::tie(code, out) = run_command(std::string(FRS_CLI) + " watchlist list --server " +
                                    server_->address() + " --tls-ca " + certs.file("client.pem"));
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("the TLS handshake with frs-server"), std::string::npos) << out;
  server_.reset();

  // A key that is not the certificate's: named as such, not as a port in use.
  std::tie(code, out) = run_command(
      std::string(FRS_SERVER) + " --listen 127.0.0.1:" + std::to_string(free_port()) +
      " --data-dir " + (root_ / "mismatch").string() + " --metrics-listen '' --tls-cert " +
      certs.file("server.pem") + " --tls-key " + certs.file("client.key"));
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("is not the private key of --tls-cert"), std::string::npos) << out;

  // mTLS: without a client certificate the handshake fails; with one it works.
  ClientOptions mutual = tls;
  mutual.tls_cert = certs.file("client.pem");
  mutual.tls_key = certs.file("client.key");
  start({"--tls-cert", certs.file("server.pem"), "--tls-key", certs.file("server.key"),
         "--tls-client-ca", certs.file("ca.pem")},
        mutual);
  EXPECT_TRUE(call_method(server_->channel(), "/frs.v1.Gallery/ListWatchlists").ok());
  ClientOptions no_cert = tls;
  no_cert.server = server_->address();
  no_cert.token = server_->admin_token();
  EXPECT_FALSE(call_method(make_channel(no_cert), "/frs.v1.Gallery/ListWatchlists", 2000ms).ok());
  std::tie(code, out) =
      run_command(std::string(FRS_CLI) + " watchlist list --server " + server_->address() +
                  " --tls-ca " + certs.file("ca.pem") + " --tls-cert " + certs.file("client.pem") +
                  " --tls-key " + certs.file("client.key"));
  EXPECT_EQ(code, 0) << out;
  server_.reset();

  // Plain text on an address other machines reach: refused, saying how to add TLS.
  const std::string data = (root_ / "open").string();
  const std::string wildcard = "0.0.0.0:" + std::to_string(free_port());
  std::tie(code, out) = run_command(std::string(FRS_SERVER) + " --listen " + wildcard +
                                    " --data-dir " + data + " --metrics-listen ''");
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("--tls-cert"), std::string::npos) << out;
  EXPECT_NE(out.find("--insecure"), std::string::npos) << out;
  // A public metrics address needs --metrics-public.
  std::tie(code, out) = run_command(std::string(FRS_SERVER) + " --data-dir " + data +
                                    " --listen 127.0.0.1:" + std::to_string(free_port()) +
                                    " --metrics-listen 0.0.0.0:" + std::to_string(free_port()));
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("--metrics-public"), std::string::npos) << out;
  // --insecure serves, and says so (the tests connect over loopback only).
  start({"--insecure"}, {}, "0.0.0.0");
  EXPECT_TRUE(call_method(server_->channel(), "/frs.v1.Gallery/ListWatchlists").ok());
  EXPECT_NE(bytes_of(root_ / "server.log").find("--insecure: serving plain text"),
            std::string::npos);
}

nlohmann::json parsed(const std::string& text) {
  return nlohmann::json::parse(text);
}

// Runs SQL on an audit.db outside frs (as someone with access to the file would).
void edit_database(const std::filesystem::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error ? error : "") << "\n"
      << sql;
  sqlite3_free(error);
  sqlite3_close(db);
}

// Each audited call's row says who (token, role, peer), what (method, targets, image
// hashes and candidates), why (purpose) and how it ended; refusals of a known token are
// rows too. A row that cannot be written fails the call.
TEST_F(AccessTest, AuditRowsSayWhoWhatWhyAndHowAndAFailedWriteFailsTheCall) {
  start();
  const std::string frs = std::string(FRS_CLI) + " --server " + server_->address() + " ";
  ASSERT_EQ(run_command(frs + "watchlist create wanted --purpose 'case W-2026-113'").first, 0);
  auto [code, out] = run_command(frs + "enroll --watchlist wanted --name Obama --json " +
                                 face_path("obama.jpg").string() + " --purpose 'case W-2026-113'");
  ASSERT_EQ(code, 0) << out;
  const std::int64_t identity = parsed(out)["identity_id"];
  const std::string investigator = create_token("det.jones", "investigator");
  std::tie(code, out) =
      run_command("FRS_TOKEN_FILE= FRS_TOKEN=" + investigator + " " + frs +
                  "search --purpose 'case 7: robbery' " + face_path("obama.jpg").string());
  ASSERT_EQ(code, 0) << out;
  std::tie(code, out) =
      run_command("FRS_TOKEN_FILE= FRS_TOKEN=" + investigator + " " + frs + "watchlist list");
  EXPECT_EQ(code, 1);

  const auto searches = server_->audit_rows("Search");
  ASSERT_EQ(searches.size(), 1u);
  const pb::AuditRecord& search = searches[0];
  EXPECT_EQ(search.token(), "det.jones");
  EXPECT_EQ(search.role(), "investigator");
  EXPECT_EQ(search.purpose(), "case 7: robbery");
  EXPECT_EQ(search.outcome(), 0);
  EXPECT_EQ(search.peer().rfind("ipv4:127.0.0.1:", 0), 0u) << search.peer();
  const auto details = parsed(search.details_json());
  ASSERT_EQ(details["image_sha256"].size(), 1u);
  EXPECT_EQ(details["image_sha256"][0], sha256_hex(bytes_of(face_path("obama.jpg"))));
  EXPECT_EQ(parsed(search.targets_json())["identities"], nlohmann::json::array({identity}));
  EXPECT_EQ(search.details_json().find("Obama"), std::string::npos) << "names belong in the store";

  const auto enrolls = server_->outcome_rows("Enroll");
  ASSERT_EQ(enrolls.size(), 1u);
  EXPECT_EQ(enrolls[0].token(), "admin");
  EXPECT_EQ(enrolls[0].purpose(), "case W-2026-113");
  EXPECT_EQ(parsed(enrolls[0].targets_json())["identities"], nlohmann::json::array({identity}));
  const auto denied = server_->audit_rows("ListWatchlists");
  ASSERT_FALSE(denied.empty());
  EXPECT_EQ(denied.back().token(), "det.jones");
  EXPECT_EQ(denied.back().outcome(), static_cast<int>(grpc::StatusCode::PERMISSION_DENIED));
  // created_by of the watchlist and the identity is the token's name.
  std::tie(code, out) = run_command(frs + "watchlist show wanted --json");
  EXPECT_EQ(parsed(out)["created_by"], "admin") << out;

  // frs audit list: filters by token and method.
  std::tie(code, out) = run_command(frs + "audit list --json --token det.jones --method Search");
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_EQ(parsed(out)["purpose"], "case 7: robbery");

  // Another process holds the audit log's write lock: the call fails (after the store's
  // busy wait) and says why; nothing is answered without its row.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((root_ / "data" / "audit.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  const grpc::Status blocked = call_method(server_->channel_with(investigator, "case 7: robbery"),
                                           "/frs.v1.Search/Compare", 20000ms);
  sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  EXPECT_EQ(blocked.error_code(), grpc::StatusCode::UNAVAILABLE) << blocked.error_message();
  EXPECT_NE(blocked.error_message().find("audit log cannot be written"), std::string::npos)
      << blocked.error_message();
  // And once the lock is gone, calls (and the chain) carry on.
  EXPECT_TRUE(call_method(server_->channel(), "/frs.v1.Gallery/ListWatchlists").ok());
  std::tie(code, out) = run_command(frs + "audit verify");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("audit log intact"), std::string::npos) << out;
}

// Edit, delete, swap, insert: `frs audit verify` finds each at its row; a kept head finds a
// rewrite that recomputed every hash; a restart keeps the chain verifiable.
TEST_F(AccessTest, TamperingIsFoundAtTheRowAndARestartKeepsTheChain) {
  start();
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(call_method(server_->channel(), "/frs.v1.Gallery/ListWatchlists").ok());
  }
  const std::string frs = std::string(FRS_CLI) + " --server " + server_->address() + " ";
  auto [code, out] = run_command(frs + "audit verify --json");
  ASSERT_EQ(code, 0) << out;
  const std::string head = parsed(out)["head"];
  server_->stop(SIGTERM);
  server_->start();  // the chain goes on from its head after a restart
  ASSERT_TRUE(call_method(server_->channel(), "/frs.v1.Gallery/ListWatchlists").ok());
  std::tie(code, out) = run_command(frs + "audit verify --expect " + head);
  EXPECT_EQ(code, 0) << out;
  server_->stop(SIGTERM);

  const auto log = root_ / "data" / "audit.db";
  const auto verify_copy = [&](const std::string& sql, const std::string& extra = "") {
    const auto copy = root_ / "copy.db";
    std::filesystem::remove(copy);
    std::filesystem::copy_file(log, copy);
    edit_database(copy, sql);
    return run_command(std::string(FRS_CLI) + " audit verify --db " + copy.string() + extra);
  };
  std::tie(code, out) = verify_copy("SELECT 1");
  EXPECT_EQ(code, 0) << out;
  std::tie(code, out) = verify_copy("UPDATE audit SET token = 'someone-else' WHERE seq = 5");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("BROKEN at row 5: row 5 was changed"), std::string::npos) << out;
  std::tie(code, out) = verify_copy("DELETE FROM audit WHERE seq = 7");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("BROKEN at row 7: row 7 is missing"), std::string::npos) << out;
  // Two rows swapped (each keeps its place's seq).
  std::tie(code, out) = verify_copy(
      "CREATE TEMP TABLE t AS SELECT * FROM audit WHERE seq IN (8, 9);"
      "UPDATE audit SET time_ms = (SELECT time_ms FROM t WHERE seq = 9), "
      "  token = (SELECT token FROM t WHERE seq = 9), "
      "  previous_hash = (SELECT previous_hash FROM t WHERE seq = 9), "
      "  hash = (SELECT hash FROM t WHERE seq = 9) WHERE seq = 8;"
      "UPDATE audit SET time_ms = (SELECT time_ms FROM t WHERE seq = 8), "
      "  token = (SELECT token FROM t WHERE seq = 8), "
      "  previous_hash = (SELECT previous_hash FROM t WHERE seq = 8), "
      "  hash = (SELECT hash FROM t WHERE seq = 8) WHERE seq = 9;");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("BROKEN at row 8"), std::string::npos) << out;
  // A forged row inserted after row 3 (the later rows renumbered to make room).
  std::tie(code, out) = verify_copy(
      "UPDATE audit SET seq = -seq WHERE seq > 3; UPDATE audit SET seq = 1 - seq WHERE seq < 0;"
      "INSERT INTO audit SELECT 4, time_ms, 'forger', role, peer, method, purpose, outcome, "
      "outcome_message, targets, details, hash, hash FROM audit WHERE seq = 3;");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("BROKEN at row 4: row 4 was changed"), std::string::npos) << out;
  // The tail cut off: only a kept head can tell.
  std::tie(code, out) = verify_copy("DELETE FROM audit WHERE seq > 10", " --expect " + head);
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("rows were removed from its end"), std::string::npos) << out;
}

// The audit log lost: noticed under the running server (its calls refused), and never begun
// again silently at the next start; a new log only by --new-audit-log, which it records
// and `frs audit verify` tells.
TEST_F(AccessTest, ALostAuditLogIsNoticedAndNeverSilentlyBegunAgain) {
  start();
  create_token("clerk", "operator");
  const auto log = root_ / "data" / "audit.db";
  std::filesystem::resize_file(log, 0);  // : > audit.db
  const grpc::Status refused = call_method(server_->channel(), "/frs.v1.Gallery/ListWatchlists");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(refused.error_message().find("was truncated or overwritten"), std::string::npos)
      << refused.error_message();
  server_.reset();

  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(log.string() + suffix);
  try {
    start();
    ADD_FAILURE() << "frs-server began a new audit log over stores with history";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("the audit log is empty, but the other stores hold "
                                         "history (2 tokens)"),
              std::string::npos)
        << e.what();
  }
  start({"--new-audit-log", "INC-7: disk lost, no backup"});
  const std::string frs = std::string(FRS_CLI) + " --server " + server_->address() + " ";
  auto [code, out] = run_command(frs + "audit verify");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("note: the log begins"), std::string::npos) << out;
  EXPECT_NE(out.find("INC-7: disk lost, no backup"), std::string::npos) << out;
  server_.reset();
  start();  // the flag is for one start: without it the new log simply goes on
  EXPECT_TRUE(call_method(server_->channel(), "/frs.v1.Gallery/ListWatchlists").ok());
}

grpc::Status add_camera(Server& server, const std::string& name, const std::string& url,
                        pb::Camera* added = nullptr) {
  grpc::ClientContext c;
  pb::AddCameraRequest r;
  r.mutable_spec()->set_name(name);
  r.mutable_spec()->set_url(url);
  pb::Camera response;
  return server.cameras().AddCamera(&c, r, added ? added : &response);
}

// Cameras make the server connect or open files for the client: only the allowed schemes,
// hosts and media dir; credentials in URLs are used and never shown, in any answer or log.
TEST_F(AccessTest, CameraSourcesAreLimitedAndTheirCredentialsNeverShown) {
  const auto media = root_ / "media";
  std::filesystem::create_directories(media);
  std::ofstream(media / "clip.mp4") << "not really a video";
  std::filesystem::create_symlink("/etc/passwd", media / "escape.mp4");
  start({"--media-dir", media.string(), "--camera-hosts", "127.0.0.0/8,cam.invalid"});
  {
    // Something to match against, so that the cameras' matching sessions are recorded.
    grpc::ClientContext c;
    pb::CreateWatchlistRequest r;
    r.set_name("wanted");
    pb::Watchlist w;
    ASSERT_TRUE(server_->gallery().CreateWatchlist(&c, r, &w).ok());
    ASSERT_TRUE(server_->authorize("wanted").ok());
  }
  const auto refused = [&](const std::string& url, const std::string& why) {
    const grpc::Status status = add_camera(*server_, "c" + std::to_string(std::rand()), url);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << url;
    EXPECT_NE(status.error_message().find(why), std::string::npos)
        << url << ": " << status.error_message();
    return status.error_message();
  };
  refused("ftp://127.0.0.1/x", "scheme frs does not play");
  refused("v4l2:///dev/video0", "scheme frs does not play");
  refused("rtsp://10.1.2.3/stream", "--camera-hosts does not allow");
  refused("http://169.254.169.254/latest/meta-data", "--camera-hosts does not allow");
  refused("rtsp://127.0.0.1/a@10.1.2.3/x", "percent-encode");
  refused("rtsp://admin:pa/ss@127.0.0.1:9/x", "percent-encode");
  // Files: outside the media dir the answer is the same whether the path exists or not.
  const std::string exists = refused("/etc/passwd", "is not under --media-dir");
  const std::string missing = refused("/etc/no-such-file", "is not under --media-dir");
  EXPECT_EQ(exists.substr(exists.find("' ")), missing.substr(missing.find("' ")));
  refused("file:///etc/passwd", "is not under --media-dir");
  refused("/dev/video0", "is not under --media-dir");
  refused((media / "escape.mp4").string(), "is not under --media-dir");
  refused((media / ".." / "data" / "gallery.db").string(), "is not under --media-dir");
  refused((media / "nothing.mp4").string(), "not a video file in --media-dir");
  EXPECT_TRUE(add_camera(*server_, "clip", (media / "clip.mp4").string()).ok());

  // Credentials: stored and used, shown as ***.
  pb::Camera added;
  const std::string url = "rtsp://admin:s3cr%2Ft@127.0.0.1:9/live?password=hunter2&res=hd";
  ASSERT_TRUE(add_camera(*server_, "door", url, &added).ok());
  EXPECT_EQ(added.spec().url(), "rtsp://admin:***@127.0.0.1:9/live?password=***&res=hd");
  // A password as a path parameter, which RTSP servers take too.
  pb::Camera added_with_parameter;
  ASSERT_TRUE(add_camera(*server_, "back-door", "rtsp://127.0.0.1:9/x;password=parol3",
                         &added_with_parameter)
                  .ok());
  EXPECT_EQ(added_with_parameter.spec().url(), "rtsp://127.0.0.1:9/x;password=***");
  // A failed connection or two, with their errors (nothing listens on port 9).
  pb::ListCamerasResponse cameras;
  EXPECT_TRUE(eventually(
      [&] {
        grpc::ClientContext c;
        cameras.Clear();
        EXPECT_TRUE(server_->cameras().ListCameras(&c, pb::ListCamerasRequest(), &cameras).ok());
        return std::any_of(cameras.cameras().begin(), cameras.cameras().end(),
                           [](const pb::Camera& camera) {
                             return camera.spec().name() == "door" && camera.reconnects() >= 1 &&
                                    !camera.last_error().empty();
                           });
      },
      60s))
      << cameras.DebugString();
  const std::string frs = std::string(FRS_CLI) + " --server " + server_->address() + " ";
  httplib::Client metrics("127.0.0.1", server_->metrics_port());
  const auto scraped = metrics.Get("/metrics");
  ASSERT_TRUE(scraped);
  EXPECT_EQ(scraped->body.find("rtsp://"), std::string::npos) << "metrics carry no URLs";
  const std::string everything =
      scraped->body + cameras.DebugString() + run_command(frs + "camera list").second +
      run_command(frs + "camera list --json").second + bytes_of(root_ / "server.log") +
      run_command(frs + "audit list --json").second;
  EXPECT_NE(everything.find("admin:***@127.0.0.1:9/live"), std::string::npos) << everything;
  for (const char* secret : {"s3cr", "hunter2", "parol3"}) {
    EXPECT_EQ(everything.find(secret), std::string::npos) << secret << " in:\n" << everything;
  }
  server_.reset();
  // Without --media-dir, no file cameras at all.
  start();
  refused((media / "clip.mp4").string(), "none is set");

  // The matching sessions are in the audit log, with the reference database as it was.
  const auto started = server_->audit_rows("camera.matching_started");
  const auto stopped = server_->audit_rows("camera.matching_stopped");
  ASSERT_GE(started.size(), 2u);
  EXPECT_EQ(started[0].token(), "frs-server");
  EXPECT_EQ(parsed(started[0].targets_json())["cameras"], nlohmann::json::array({"clip"}));
  const auto details = parsed(started[0].details_json());
  EXPECT_EQ(details["reason"], "camera added");
  ASSERT_EQ(details["watchlists"].size(), 1u) << details;
  EXPECT_EQ(details["watchlists"][0]["name"], "wanted");
  EXPECT_EQ(details["watchlists"][0]["identities"], 0);
  // The legal basis the session rests on.
  EXPECT_EQ(details["watchlists"][0]["authorization"]["basis"], "policy");
  EXPECT_EQ(details["watchlists"][0]["authorization"]["reference"], "test");
  EXPECT_TRUE(details.contains("store_change"));
  ASSERT_GE(stopped.size(), 2u);
  EXPECT_EQ(parsed(stopped[0].details_json())["reason"], "server stopping");
}

// Automation supplies the admin token; a new secret in the file replaces the old token.
TEST_F(AccessTest, AnAdminTokenFileIsTheAdminToken) {
  const auto file = root_ / "given.token";
  const std::string first = new_token_secret();
  std::ofstream(file) << first << "\n";
  start({"--admin-token-file", file.string()});
  EXPECT_FALSE(std::filesystem::exists(root_ / "data" / "admin.token"));
  EXPECT_TRUE(call_method(server_->channel_with(first), "/frs.v1.Tokens/ListTokens").ok());
  server_.reset();
  const std::string second = new_token_secret();
  std::ofstream(file, std::ios::trunc) << second;
  start({"--admin-token-file", file.string()});
  EXPECT_TRUE(call_method(server_->channel_with(second), "/frs.v1.Tokens/ListTokens").ok());
  EXPECT_EQ(call_method(server_->channel_with(first), "/frs.v1.Tokens/ListTokens").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  server_.reset();
  std::ofstream(file, std::ios::trunc) << "short";
  const auto [code, out] =
      run_command(std::string(FRS_SERVER) + " --data-dir " + (root_ / "data").string() +
                  " --admin-token-file " + file.string() +
                  " --listen 127.0.0.1:" + std::to_string(free_port()) + " --metrics-listen ''");
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("does not hold a token"), std::string::npos) << out;
  EXPECT_EQ(out.find("short"), std::string::npos) << "a secret is never echoed";
}

// One token holds at most --max-alert-streams-per-token streams; another token has its own.
TEST_F(AccessTest, AlertStreamsAreBoundedPerToken) {
  start({"--max-alert-streams-per-token", "2"});
  const auto open_stream = [](const std::shared_ptr<grpc::Channel>& channel,
                              grpc::ClientContext& context) {
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return pb::Alerts::NewStub(channel)->StreamAlerts(&context, pb::StreamAlertsRequest());
  };
  grpc::ClientContext a, b;
  auto first = open_stream(server_->channel(), a);
  auto second = open_stream(server_->channel(), b);
  // Both open on the server.
  httplib::Client metrics("127.0.0.1", server_->metrics_port());
  EXPECT_TRUE(eventually(
      [&] {
        const auto scraped = metrics.Get("/metrics");
        return scraped && scraped->body.find("frs_alert_subscribers 2\n") != std::string::npos;
      },
      60s, 50ms));
  const grpc::Status third = call_method(server_->channel(), "/frs.v1.Alerts/StreamAlerts", 2000ms);
  EXPECT_EQ(third.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << third.error_message();
  EXPECT_NE(third.error_message().find("--max-alert-streams-per-token"), std::string::npos);
  const auto console = server_->channel_with(create_token("console-2", "dispatcher"));
  EXPECT_EQ(call_method(console, "/frs.v1.Alerts/StreamAlerts", 1000ms).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);  // streaming until its deadline: allowed
  a.TryCancel();
  b.TryCancel();
}

// A stream outlives neither the revocation nor the expiry of its token: it ends with
// UNAUTHENTICATED saying which, well before its own deadline, and the row of its end says so.
TEST_F(AccessTest, StreamsEndWhenTheirTokenIsRevokedOrExpires) {
  start();
  const auto revoked = server_->channel_with(create_token("console-revoked", "dispatcher"));
  // Expires a few seconds from now: long enough that the stream opens first.
  const auto expiring = server_->channel_with(
      create_token("console-expiring", "dispatcher",
                   std::chrono::duration_cast<std::chrono::milliseconds>(
                       (std::chrono::system_clock::now() + 6s).time_since_epoch())
                       .count()));
  // Read to its end, or its deadline (which ending by the token comes well before).
  const auto follow = [](const std::shared_ptr<grpc::Channel>& channel) {
    return std::async(std::launch::async, [channel] {
      return call_method(channel, "/frs.v1.Alerts/StreamAlerts", 120s);
    });
  };
  auto revoked_stream = follow(revoked);
  auto expiring_stream = follow(expiring);
  httplib::Client metrics("127.0.0.1", server_->metrics_port());
  ASSERT_TRUE(eventually(
      [&] {
        const auto scraped = metrics.Get("/metrics");
        return scraped && scraped->body.find("frs_alert_subscribers 2\n") != std::string::npos;
      },
      60s, 50ms));
  {
    auto tokens = pb::Tokens::NewStub(server_->channel());
    grpc::ClientContext c;
    pb::RevokeTokenRequest r;
    r.set_name("console-revoked");
    pb::Token t;
    ASSERT_TRUE(tokens->RevokeToken(&c, r, &t).ok());
  }
  const grpc::Status after_revoke = revoked_stream.get();
  EXPECT_EQ(after_revoke.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << after_revoke.error_message();
  EXPECT_NE(after_revoke.error_message().find("'console-revoked' was revoked while this call"),
            std::string::npos)
      << after_revoke.error_message();
  const grpc::Status after_expiry = expiring_stream.get();
  EXPECT_EQ(after_expiry.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << after_expiry.error_message();
  EXPECT_NE(after_expiry.error_message().find("'console-expiring' expired while this call"),
            std::string::npos)
      << after_expiry.error_message();

  std::map<std::string, std::string> ended_because;
  for (const pb::AuditRecord& row : server_->outcome_rows("/frs.v1.Alerts/StreamAlerts")) {
    if (row.outcome() != static_cast<int>(grpc::StatusCode::UNAUTHENTICATED)) continue;
    const auto details = nlohmann::json::parse(row.details_json());
    ended_because[row.token()] = details.value("ended_because", "");
  }
  EXPECT_NE(ended_because["console-revoked"].find("was revoked"), std::string::npos);
  EXPECT_NE(ended_because["console-expiring"].find("expired"), std::string::npos);
}

}  // namespace
}  // namespace frs::testing
