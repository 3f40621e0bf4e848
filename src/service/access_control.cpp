#include "frs/service/access_control.h"

#include <spdlog/spdlog.h>

#include "frs/core/clock.h"
#include "frs/core/error.h"
#include "frs/core/logfmt.h"
#include "frs/core/text.h"

namespace frs::service {
namespace {

// How a call names its purpose: `purpose` (ASCII) or `purpose-bin` (UTF-8 bytes; gRPC
// carries -bin values base64-encoded).
constexpr TextRule kPurposeRule{200, true, true};
constexpr std::size_t kMinPurposeChars = 4;

std::string metadata_value(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                           std::string_view key) {
  const auto it = metadata.find(grpc::string_ref(key.data(), key.size()));
  if (it == metadata.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

grpc::Status unauthenticated(const std::string& why) {
  return {grpc::StatusCode::UNAUTHENTICATED,
          why +
              ": send the metadata `authorization: Bearer TOKEN` (frs: --token, FRS_TOKEN or "
              "--token-file; an administrator makes tokens with frs token create)"};
}

}  // namespace

AccessControl::AccessControl(TokenStore& tokens, AuditLog& audit, AccessLimits limits)
    : tokens_(tokens), audit_(audit), rate_(limits.calls_per_second, limits.burst) {}

CallDecision AccessControl::decide(
    std::string_view method, const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
    std::string peer) {
  CallDecision d;
  d.caller.method = std::string(method);
  d.caller.peer = std::move(peer);
  const std::string authorization = metadata_value(metadata, "authorization");
  if (authorization.empty()) {
    d.refusal = unauthenticated("this call has no token");
    return d;
  }
  constexpr std::string_view kBearer = "bearer ";
  std::string scheme = authorization.substr(0, std::min(authorization.size(), kBearer.size()));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != kBearer) {
    d.refusal = unauthenticated("the authorization metadata is not a bearer token");
    return d;
  }
  const std::string secret = authorization.substr(kBearer.size());
  const std::int64_t now = now_unix_ms();
  std::optional<TokenRecord> token;
  try {
    token = tokens_.find_by_secret_hash(token_secret_hash(secret));
  } catch (const std::exception& e) {
    spdlog::error("token store: {}", e.what());
    d.refusal = {grpc::StatusCode::UNAVAILABLE, "the token store cannot be read; try again"};
    return d;
  }
  if (!token) {
    d.refusal = unauthenticated("the token is not known to this server");
    return d;
  }
  d.caller.token = token->name;
  d.caller.role = token->role;
  if (token->revoked_at_ms != 0) {
    d.refusal = unauthenticated("token '" + token->name + "' was revoked");
    return d;
  }
  if (token->expires_at_ms != 0 && now >= token->expires_at_ms) {
    d.refusal = unauthenticated("token '" + token->name + "' has expired");
    return d;
  }
  if (const auto wait = rate_.take(token->name); wait.count() > 0) {
    d.retry_after = wait;
    d.refusal = {grpc::StatusCode::RESOURCE_EXHAUSTED,
                 "token '" + token->name + "' is over its rate limit: retry after " +
                     std::to_string(wait.count()) + " ms (trailing metadata retry-after-ms)"};
    return d;
  }
  const MethodAccess* rule = find_method_access(method);
  if (rule == nullptr) {
    d.refusal = {grpc::StatusCode::PERMISSION_DENIED,
                 std::string(method) + " is not in frs-server's access table: refused"};
    return d;
  }
  if (!rule->roles.contains(token->role)) {
    d.refusal = {grpc::StatusCode::PERMISSION_DENIED,
                 "token '" + token->name + "' has the role " + std::string(to_string(token->role)) +
                     "; " + std::string(method) + " needs " + rule->roles.names()};
    return d;
  }
  std::string purpose = metadata_value(metadata, "purpose");
  if (purpose.empty()) purpose = metadata_value(metadata, "purpose-bin");
  if (!purpose.empty() || rule->needs_purpose) {
    try {
      check_text(purpose, "purpose", kPurposeRule);
      if (utf8_length(purpose) < kMinPurposeChars) {
        throw Error(ErrorCode::kInvalidArgument, "purpose needs at least 4 characters");
      }
    } catch (const Error& e) {
      d.refusal = {grpc::StatusCode::INVALID_ARGUMENT,
                   std::string(method) +
                       " needs a purpose (a case number or reason, 4..200 "
                       "characters) in the metadata `purpose` (frs: "
                       "--purpose or FRS_PURPOSE): " +
                       e.what()};
      return d;
    }
  }
  d.caller.purpose = std::move(purpose);
  return d;
}

const CallDecision& AccessControl::admit(
    const grpc::ServerContextBase* context, std::string_view method,
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata, std::string peer) {
  auto d = std::make_shared<const CallDecision>(decide(method, metadata, std::move(peer)));
  if (!d->refusal.ok()) {
    spdlog::info("call={} peer={} token={} refused={} reason={}", logfmt_value(std::string(method)),
                 logfmt_value(d->caller.peer), logfmt_value(d->caller.token),
                 static_cast<int>(d->refusal.error_code()),
                 logfmt_value(d->refusal.error_message()));
  }
  std::lock_guard lock(mutex_);
  auto& slot = decisions_[context];
  slot = std::move(d);
  return *slot;
}

void AccessControl::forget(const grpc::ServerContextBase* context) {
  std::lock_guard lock(mutex_);
  decisions_.erase(context);
}

std::shared_ptr<const CallDecision> AccessControl::decision(
    const grpc::ServerContextBase* context) const {
  std::lock_guard lock(mutex_);
  const auto it = decisions_.find(context);
  return it == decisions_.end() ? nullptr : it->second;
}

AuditRecord AccessControl::audit(AuditEntry entry) {
  if (entry.time_ms == 0) entry.time_ms = now_unix_ms();
  return audit_.append(entry);
}

void Call::target(const std::string& kind, std::int64_t id) {
  targets_[kind].push_back(id);
}

void Call::target(const std::string& kind, const std::string& name) {
  targets_[kind].push_back(name);
}

AuditEntry Call::entry(const grpc::Status& status) const {
  AuditEntry e;
  e.token = caller().token;
  e.role = std::string(to_string(caller().role));
  e.peer = caller().peer;
  e.method = caller().method;
  e.purpose = caller().purpose;
  e.outcome = static_cast<int>(status.error_code());
  e.outcome_message = status.error_message();
  e.targets_json = targets_.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  e.details_json = details_.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return e;
}

void Call::require_purpose(const std::string& what) const {
  if (caller().purpose.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                what +
                    " needs a purpose (a case number or reason, 4..200 characters) in the "
                    "metadata `purpose` (frs: --purpose or FRS_PURPOSE)");
  }
}

void Call::log_audit_failure(const std::exception& e) const {
  spdlog::error("call={} token={} audit_failed={}", logfmt_value(caller().method),
                logfmt_value(caller().token), logfmt_value(e.what()));
}

void Call::audit_now() {
  access_.audit(entry(grpc::Status::OK));
}

grpc::Status Call::record_intent() {
  AuditEntry intent = entry(grpc::Status::OK);
  intent.outcome = kAuditOutcomeStarted;
  intent.outcome_message = "started: the outcome follows in a later row";
  try {
    intent_seq_ = access_.audit(std::move(intent)).seq;
  } catch (const std::exception& e) {
    log_audit_failure(e);
    return {grpc::StatusCode::UNAVAILABLE,
            std::string(e.what()) + ", so the call was refused and nothing was changed"};
  }
  return grpc::Status::OK;
}

grpc::Status Call::finish(const grpc::Status& status) {
  if (intent_seq_ != 0) details_["intent_seq"] = intent_seq_;
  try {
    access_.audit(entry(status));
  } catch (const std::exception& e) {
    log_audit_failure(e);
    if (intent_seq_ == 0) {
      return {grpc::StatusCode::UNAVAILABLE, std::string(e.what()) + ", so the call was refused"};
    }
    // The change may have been made: say so, rather than invite a blind retry.
    return {grpc::StatusCode::UNAVAILABLE,
            std::string(e.what()) + " after the call ran (answer: " +
                (status.ok() ? std::string("OK") : status.error_message()) + "); audit row " +
                std::to_string(intent_seq_) +
                " records it as started: check what it changed before sending it again"};
  }
  return status;
}

}  // namespace frs::service
