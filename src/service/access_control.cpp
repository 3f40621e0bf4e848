#include "frs/service/access_control.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

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

// The caller's address without its port: "ipv4:127.0.0.1:41234" -> "ipv4:127.0.0.1",
// "ipv6:[::1]:5000" -> "ipv6:[::1]"; anything else as it is.
std::string address_of(const std::string& peer) {
  const auto colon = peer.rfind(':');
  const auto bracket = peer.rfind(']');
  if (colon == std::string::npos || colon < peer.find(':') + 1) return peer;
  if (bracket != std::string::npos && colon < bracket) return peer;
  return peer.substr(0, colon);
}

}  // namespace

AccessControl::AccessControl(TokenStore& tokens, AuditLog& audit, AccessLimits limits)
    : tokens_(tokens),
      audit_(audit),
      rate_(limits.calls_per_second, limits.burst),
      refused_rate_(limits.refused_calls_per_second, limits.refused_burst),
      token_recheck_(std::clamp(limits.token_recheck, std::chrono::milliseconds(10),
                                std::chrono::milliseconds(60000))),
      watcher_([this] { watch_open_calls(); }) {}

AccessControl::~AccessControl() {
  {
    std::lock_guard lock(open_mutex_);
    stopping_ = true;
  }
  open_wake_.notify_all();
  watcher_.join();
}

AccessControl::OpenCall::OpenCall(AccessControl& access, const CallDecision& decision)
    : access_(access), decision_(decision), opened_(std::chrono::steady_clock::now()) {
  std::lock_guard lock(access_.open_mutex_);
  access_.open_calls_.insert(this);
}

AccessControl::OpenCall::~OpenCall() {
  std::lock_guard lock(access_.open_mutex_);
  access_.open_calls_.erase(this);
}

std::optional<grpc::Status> AccessControl::OpenCall::ended() const {
  std::lock_guard lock(access_.open_mutex_);
  return ended_;
}

grpc::Status AccessControl::token_status(const CallDecision& decision) {
  const std::string& name = decision.caller.token;
  const grpc::Status expired = {
      grpc::StatusCode::UNAUTHENTICATED,
      "token '" + name + "' expired while this call was open, so the call was ended"};
  // Expiry needs no store: known since the call was admitted.
  if (decision.token_expires_at_ms != 0 && now_unix_ms() >= decision.token_expires_at_ms) {
    return expired;
  }
  std::optional<TokenRecord> token;
  try {
    token = tokens_.find_by_secret_hash(decision.token_secret_hash);
  } catch (const std::exception& e) {
    // Not a reason to end the call: a revocation is written to this same store, so none can
    // have been made while it cannot be read; the next look-up after it is back decides.
    spdlog::warn("token store: {} (the tokens of open calls are looked up again later)", e.what());
    return grpc::Status::OK;
  }
  if (!token || token->revoked_at_ms != 0) {
    return {grpc::StatusCode::UNAUTHENTICATED,
            "token '" + name + "' was revoked while this call was open, so the call was ended"};
  }
  if (!token->active(now_unix_ms())) return expired;
  return grpc::Status::OK;
}

// One look-up per token per interval, however many of its calls are open, and none for
// calls younger than the interval. The look-ups run outside the lock, so that calls opening
// and closing meanwhile never wait on the token store.
void AccessControl::watch_open_calls() {
  std::unique_lock lock(open_mutex_);
  while (!stopping_) {
    open_wake_.wait_for(lock, token_recheck_);
    if (stopping_) break;
    const auto now = std::chrono::steady_clock::now();
    // One decision per token (by secret hash), copied: calls may close meanwhile.
    std::map<std::string, CallDecision> tokens;
    for (const OpenCall* call : open_calls_) {
      if (!call->ended_ && now - call->opened_ >= token_recheck_) {
        tokens.emplace(call->decision_.token_secret_hash, call->decision_);
      }
    }
    if (tokens.empty()) continue;
    lock.unlock();
    std::map<std::string, grpc::Status> ended;
    for (const auto& [hash, decision] : tokens) {
      if (grpc::Status s = token_status(decision); !s.ok()) ended.emplace(hash, std::move(s));
    }
    lock.lock();
    for (OpenCall* call : open_calls_) {
      const auto it = ended.find(call->decision_.token_secret_hash);
      if (call->ended_ || it == ended.end() || now - call->opened_ < token_recheck_) continue;
      call->ended_ = it->second;
      spdlog::info("call={} peer={} token={} ended={}", logfmt_value(call->decision_.caller.method),
                   logfmt_value(call->decision_.caller.peer),
                   logfmt_value(call->decision_.caller.token),
                   logfmt_value(it->second.error_message()));
    }
  }
}

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
  d.token_secret_hash = token_secret_hash(secret);
  std::optional<TokenRecord> token;
  try {
    token = tokens_.find_by_secret_hash(d.token_secret_hash);
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
  d.token_expires_at_ms = token->expires_at_ms;
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
  CallDecision decided = decide(method, metadata, std::move(peer));
  const std::string address = address_of(decided.caller.peer);
  if (decided.refusal.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    if (const auto wait = refused_rate_.take(address); wait.count() > 0) {
      decided.retry_after = wait;
      decided.refusal = {grpc::StatusCode::RESOURCE_EXHAUSTED,
                         "too many calls without a valid token from " + address + ": retry after " +
                             std::to_string(wait.count()) +
                             " ms (trailing metadata retry-after-ms)"};
    }
  }
  auto d = std::make_shared<const CallDecision>(std::move(decided));
  if (!d->refusal.ok()) {
    // A flood of one kind (an address without a valid token, a token over its limit) is
    // one line per interval, with how many like it were left out.
    const std::string kind = (d->caller.token.empty() ? address : "token " + d->caller.token) +
                             " " + std::to_string(d->refusal.error_code());
    if (const auto left_out = refusal_lines_.admit(kind)) {
      spdlog::info("call={} peer={} token={} refused={} reason={}{}",
                   logfmt_value(std::string(method)), logfmt_value(d->caller.peer),
                   logfmt_value(d->caller.token), static_cast<int>(d->refusal.error_code()),
                   logfmt_value(d->refusal.error_message()),
                   *left_out > 0 ? " similar_left_out=" + std::to_string(*left_out) : "");
    }
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
