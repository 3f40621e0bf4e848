#pragma once
// Who is calling, and whether they may: the one place the server checks it. The
// interceptor (make_interceptors) runs first on every call, before the request reaches a
// service: it reads the `authorization: Bearer TOKEN` and `purpose` metadata, looks the
// token up, looks the method up in the one table (frs/auth/access.h), applies the per-token
// rate limit, and records the decision for the call. Every handler then runs inside
// serve(), which refuses the call unless that decision allowed it (a call without a
// decision is refused too), gives the handler its Caller, and writes the call's audit row
// before the answer is sent; a row that cannot be written fails the call.
//
// (A gRPC C++ server interceptor cannot answer a call itself, and an AuthMetadataProcessor
// neither sees the method nor works on plain-text listeners; hence the split: the decision
// in the interceptor, applied by serve(). ServerTest.AccessTable calls every method of
// every frs service without a token, so a handler that forgot serve() fails CI.)

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>

#include "frs/auth/access.h"
#include "frs/auth/audit_log.h"
#include "frs/auth/rate_limit.h"
#include "frs/auth/tokens.h"
#include "frs/core/logfmt.h"

namespace frs::service {

struct AccessLimits {
  // Calls per token per second, on average (0 = no limit), and the burst allowed above it.
  double calls_per_second = 50;  // range 0..100000
  double burst = 100;            // range 1..100000
  // Calls refused for their token (none, unknown, revoked, expired) per peer address (its
  // IP, any port) per second, and their burst: beyond, RESOURCE_EXHAUSTED with when to
  // retry. Callers with a valid token are never counted (they may share the address).
  double refused_calls_per_second = 2;  // range 0..100000 (0 = no limit)
  double refused_burst = 20;            // range 1..100000
  // How often the tokens of calls still open are looked up again, so that a stream or a
  // long job ends within about twice this of its token's revocation or expiry (and calls
  // shorter than this cost no second look-up).
  std::chrono::milliseconds token_recheck{1000};  // range 10..60000 ms
};

// The caller of one call, from its token.
struct Caller {
  std::string token;  // the token's name: what created_by, reviewers and audit rows say
  Role role = Role::kAuditor;
  std::string peer;     // "ipv4:127.0.0.1:41234"
  std::string method;   // "/frs.v1.Search/Search"
  std::string purpose;  // "" when the method needs none and none was given
};

// What the interceptor decided for one call.
struct CallDecision {
  grpc::Status refusal = grpc::Status::OK;   // not OK: the call is answered with this
  std::chrono::milliseconds retry_after{0};  // rate-limited: when to try again
  Caller caller;
  // What the token store keys the caller's token by (its SHA-256, never the secret), to look
  // it up again while the call is open.
  std::string token_secret_hash;
  std::int64_t token_expires_at_ms = 0;  // Unix ms; 0 = never (checked without the store)
};

class AccessControl {
 public:
  AccessControl(TokenStore& tokens, AuditLog& audit, AccessLimits limits = {});
  ~AccessControl();
  AccessControl(const AccessControl&) = delete;
  AccessControl& operator=(const AccessControl&) = delete;

  // A call whose handler is running: serve() holds one for the handler's duration. While it
  // is open, its token is looked up again every AccessLimits::token_recheck; once the token
  // is revoked or has expired, ended() says why: its
  // work stops (cancellation_of), its stream ends, and serve() answers with that status.
  // (Not by cancelling the call: a cancelled call's client sees only CANCELLED.)
  class OpenCall {
   public:
    OpenCall(AccessControl& access, const CallDecision& decision);
    ~OpenCall();
    OpenCall(const OpenCall&) = delete;
    OpenCall& operator=(const OpenCall&) = delete;
    // The status the call must end with, when the token check ended it.
    std::optional<grpc::Status> ended() const;

   private:
    friend class AccessControl;
    AccessControl& access_;
    const CallDecision& decision_;
    std::chrono::steady_clock::time_point opened_;
    std::optional<grpc::Status> ended_;  // guarded by access_.open_mutex_
  };

  // Interceptor side: decides `method` for the call of `context`, from its metadata.
  const CallDecision& admit(const grpc::ServerContextBase* context, std::string_view method,
                            const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                            std::string peer);
  void forget(const grpc::ServerContextBase* context);
  // Handler side: the decision for `context`; nullptr when none was made.
  std::shared_ptr<const CallDecision> decision(const grpc::ServerContextBase* context) const;

  // Appends an audit row (calls and server events). Throws Error(kUnavailable) when the
  // row cannot be written.
  AuditRecord audit(AuditEntry entry);

  TokenStore& tokens() { return tokens_; }
  AuditLog& audit_log() { return audit_; }

 private:
  // OK while the token is active; else UNAUTHENTICATED (revoked, expired).
  grpc::Status token_status(const CallDecision& decision);
  void watch_open_calls();

  CallDecision decide(std::string_view method,
                      const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                      std::string peer);

  TokenStore& tokens_;
  AuditLog& audit_;
  RateLimiter rate_;
  RateLimiter refused_rate_;     // per peer address, of calls refused for their token
  RepeatedLines refusal_lines_;  // one log line per kind of refusal per 10 s
  mutable std::mutex mutex_;
  std::unordered_map<const void*, std::shared_ptr<const CallDecision>> decisions_;

  std::chrono::milliseconds token_recheck_;
  mutable std::mutex open_mutex_;
  std::condition_variable open_wake_;
  bool stopping_ = false;
  std::set<OpenCall*> open_calls_;
  std::thread watcher_;  // last: started once the rest exists
};

// One call inside serve(): its caller, and what its audit row will say.
class Call {
 public:
  Call(AccessControl& access, grpc::ServerContext& context, std::shared_ptr<const CallDecision> d)
      : access_(access), context_(context), decision_(std::move(d)) {}
  const Caller& caller() const { return decision_->caller; }
  grpc::ServerContext& context() { return context_; }
  const grpc::ServerContext& context() const { return context_; }
  // Whether the caller's token was revoked or expired while the call was open: a long body
  // (a stream's loop) stops then; cancellation_of() includes it.
  bool ended_by_token() const { return open_ != nullptr && open_->ended().has_value(); }
  void set_open_call(const AccessControl::OpenCall* open) { open_ = open; }

  // Targets of the audit row: target("watchlists", 3), target("cameras", "door-2").
  void target(const std::string& kind, std::int64_t id);
  void target(const std::string& kind, const std::string& name);
  // Anything else the row should say (never images or descriptors).
  nlohmann::json& details() { return details_; }

  // Throws INVALID_ARGUMENT unless the call carries a purpose; for what a request asks
  // (`what`: "streaming alerts with face images") rather than what its method is.
  void require_purpose(const std::string& what) const;

  // Writes the row now, with outcome OK (a stream, before its first message). serve()
  // writes another at the end.
  void audit_now();
  // The intent row of a call that changes state, before it changes anything: UNAVAILABLE
  // (nothing was changed) when it cannot be written; the outcome row then names its seq.
  grpc::Status record_intent();
  // The row at the end of the call, with `status` as outcome; returns `status`, or
  // UNAVAILABLE when the row cannot be written.
  grpc::Status finish(const grpc::Status& status);

 private:
  AuditEntry entry(const grpc::Status& status) const;
  void log_audit_failure(const std::exception& e) const;

  AccessControl& access_;
  grpc::ServerContext& context_;
  std::shared_ptr<const CallDecision> decision_;
  nlohmann::json targets_ = nlohmann::json::object();
  nlohmann::json details_ = nlohmann::json::object();
  std::int64_t intent_seq_ = 0;  // the intent row's seq; 0: none
  const AccessControl::OpenCall* open_ = nullptr;
};

grpc::Status to_status(const std::exception& e);

// Runs a handler body as `body(Call&)` when the interceptor allowed the call, turning any
// exception into the matching status and writing the audit row.
template <typename F>
grpc::Status serve(AccessControl& access, grpc::ServerContext* context, F&& body) {
  auto decision = access.decision(context);
  if (!decision) {
    return {grpc::StatusCode::PERMISSION_DENIED,
            "frs-server made no access decision for this call: refused"};
  }
  Call call(access, *context, decision);
  if (!decision->refusal.ok()) {
    if (decision->retry_after.count() > 0) {
      context->AddTrailingMetadata("retry-after-ms", std::to_string(decision->retry_after.count()));
    }
    // Refusals of a known token's calls are part of the record. Unknown callers and
    // rate-limited calls are only logged: a flood must not become a flood of rows.
    if (decision->refusal.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
        decision->refusal.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      return decision->refusal;
    }
    return call.finish(decision->refusal);
  }
  if (const MethodAccess* entry = find_method_access(decision->caller.method);
      entry != nullptr && entry->effect == Effect::kChanges) {
    if (grpc::Status refused = call.record_intent(); !refused.ok()) return refused;
  }
  grpc::Status status;
  AccessControl::OpenCall open(access, *decision);
  call.set_open_call(&open);
  try {
    // A body may answer with a status of its own (a stream that ends ABORTED) or return
    // nothing (OK).
    if constexpr (std::is_void_v<decltype(body(call))>) {
      body(call);
      status = grpc::Status::OK;
    } else {
      status = body(call);
    }
  } catch (const std::exception& e) {
    status = to_status(e);
  }
  if (auto ended = open.ended()) {
    call.details()["ended_because"] = ended->error_message();
    status = std::move(*ended);
  }
  return call.finish(status);
}

}  // namespace frs::service
