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
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <unordered_map>

#include "frs/auth/access.h"
#include "frs/auth/audit_log.h"
#include "frs/auth/rate_limit.h"
#include "frs/auth/tokens.h"

namespace frs::service {

struct AccessLimits {
  // Calls per token per second, on average (0 = no limit), and the burst allowed above it.
  double calls_per_second = 50;  // range 0..100000
  double burst = 100;            // range 1..100000
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
};

class AccessControl {
 public:
  AccessControl(TokenStore& tokens, AuditLog& audit, AccessLimits limits = {});

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
  CallDecision decide(std::string_view method,
                      const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                      std::string peer);

  TokenStore& tokens_;
  AuditLog& audit_;
  RateLimiter rate_;
  mutable std::mutex mutex_;
  std::unordered_map<const void*, std::shared_ptr<const CallDecision>> decisions_;
};

// One call inside serve(): its caller, and what its audit row will say.
class Call {
 public:
  Call(AccessControl& access, grpc::ServerContext& context, std::shared_ptr<const CallDecision> d)
      : access_(access), context_(context), decision_(std::move(d)) {}
  const Caller& caller() const { return decision_->caller; }
  grpc::ServerContext& context() { return context_; }

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
  return call.finish(status);
}

}  // namespace frs::service
