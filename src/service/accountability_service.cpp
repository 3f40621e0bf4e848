// The Tokens service (admin) and the Audit service (admin, auditor).

#include <spdlog/spdlog.h>

#include "frs/core/clock.h"
#include "frs/core/error.h"
#include "frs/core/logfmt.h"
#include "frs/core/text.h"
#include "frs/core/time_text.h"
#include "frs/service/report.h"
#include "frs/service/services.h"
#include "frs/v1/audit.grpc.pb.h"
#include "frs/v1/tokens.grpc.pb.h"

namespace frs::service {
namespace {

namespace pb = ::frs::v1;

void to_proto(const TokenRecord& t, pb::Token* out) {
  out->set_id(t.id);
  out->set_name(t.name);
  out->set_role(std::string(to_string(t.role)));
  out->set_created_by(t.created_by);
  out->set_created_at_ms(t.created_at_ms);
  out->set_expires_at_ms(t.expires_at_ms);
  out->set_revoked_at_ms(t.revoked_at_ms);
  out->set_revoked_by(t.revoked_by);
}

class TokenService final : public pb::Tokens::Service {
 public:
  explicit TokenService(AccessControl& access) : access_(access) {}

  grpc::Status CreateToken(grpc::ServerContext* context, const pb::CreateTokenRequest* request,
                           pb::CreateTokenResponse* response) override {
    return serve(access_, context, [&](Call& call) {
      call.target("tokens", request->name());
      check_token_name(request->name());
      const auto role = parse_role(request->role());
      if (!role) {
        throw Error(ErrorCode::kInvalidArgument, "role " + quote_for_message(request->role()) +
                                                     " is not one of " + role_names());
      }
      const std::int64_t now = now_unix_ms();
      if (request->expires_at_ms() != 0)
        check_time_in_range(request->expires_at_ms(), "expires_at_ms");
      if (request->expires_at_ms() != 0 && request->expires_at_ms() <= now) {
        throw Error(ErrorCode::kInvalidArgument,
                    "expires_at_ms is in the past: give a time to come, or 0 for never");
      }
      TokenRecord token;
      token.name = request->name();
      token.role = *role;
      token.created_by = call.caller().token;
      token.created_at_ms = now;
      token.expires_at_ms = request->expires_at_ms();
      const std::string secret = new_token_secret();
      const TokenRecord stored = access_.tokens().create(token, token_secret_hash(secret));
      call.details()["role"] = request->role();
      call.details()["expires_at_ms"] = stored.expires_at_ms;
      to_proto(stored, response->mutable_token());
      response->set_secret(secret);
      spdlog::info("event=token_created token={} role={} by={}", logfmt_value(stored.name),
                   to_string(stored.role), logfmt_value(stored.created_by));
    });
  }

  grpc::Status ListTokens(grpc::ServerContext* context, const pb::ListTokensRequest* request,
                          pb::ListTokensResponse* response) override {
    return serve(access_, context, [&](Call& call) {
      for (const TokenRecord& t : access_.tokens().list(request->include_revoked())) {
        to_proto(t, response->add_tokens());
      }
      call.details()["tokens"] = response->tokens_size();
    });
  }

  grpc::Status RevokeToken(grpc::ServerContext* context, const pb::RevokeTokenRequest* request,
                           pb::Token* response) override {
    return serve(access_, context, [&](Call& call) {
      call.target("tokens", request->name());
      const TokenRecord t =
          access_.tokens().revoke(request->name(), call.caller().token, now_unix_ms());
      to_proto(t, response);
      spdlog::info("event=token_revoked token={} by={}", logfmt_value(t.name),
                   logfmt_value(t.revoked_by));
    });
  }

 private:
  AccessControl& access_;
};

class AuditService final : public pb::Audit::Service {
 public:
  AuditService(AccessControl& access, const ReportSources& report)
      : access_(access), report_(report) {}

  grpc::Status ListAuditRecords(grpc::ServerContext* context,
                                const pb::ListAuditRecordsRequest* request,
                                pb::ListAuditRecordsResponse* response) override {
    return serve(access_, context, [&](Call& call) {
      AuditQuery q;
      q.after_seq = request->after_seq();
      q.since_ms = request->since_ms();
      q.until_ms = request->until_ms();
      if (q.since_ms != 0) check_time_in_range(q.since_ms, "since_ms");
      if (q.until_ms != 0) check_time_in_range(q.until_ms, "until_ms");
      q.token = request->token();
      q.method = request->method();
      q.limit = request->page_size() == 0 ? 1000 : request->page_size();
      check_text(q.token, "token", {kMaxTokenNameChars, false, true});
      check_text(q.method, "method", {200, false, true});
      const auto rows = access_.audit_log().list(q);
      for (const AuditRecord& r : rows) {
        pb::AuditRecord* out = response->add_records();
        out->set_seq(r.seq);
        out->set_time_ms(r.time_ms);
        out->set_token(r.token);
        out->set_role(r.role);
        out->set_peer(r.peer);
        out->set_method(r.method);
        out->set_purpose(r.purpose);
        out->set_outcome(r.outcome);
        out->set_outcome_message(r.outcome_message);
        out->set_targets_json(r.targets_json);
        out->set_details_json(r.details_json);
        out->set_previous_hash(r.previous_hash);
        out->set_hash(r.hash);
      }
      if (rows.size() == static_cast<std::size_t>(q.limit)) {
        response->set_next_after_seq(rows.back().seq);
      }
      call.details()["rows_returned"] = rows.size();
    });
  }

  grpc::Status Report(grpc::ServerContext* context, const pb::ReportRequest* request,
                      pb::AccountabilityReport* response) override {
    return serve(access_, context, [&](Call& call) {
      call.details()["from_ms"] = request->from_ms();
      call.details()["to_ms"] = request->to_ms();
      if (request->from_ms() != 0) check_time_in_range(request->from_ms(), "from_ms");
      if (request->to_ms() != 0) check_time_in_range(request->to_ms(), "to_ms");
      *response = build_report(access_.audit_log(), report_, request->from_ms(), request->to_ms(),
                               now_unix_ms());
    });
  }

  grpc::Status VerifyAuditLog(grpc::ServerContext* context,
                              const pb::VerifyAuditLogRequest* request,
                              pb::VerifyAuditLogResponse* response) override {
    return serve(access_, context, [&](Call& call) {
      std::optional<AuditHead> expected;
      if (request->expected_seq() != 0) {
        if (request->expected_seq() < 0 || request->expected_hash().size() != 64) {
          throw Error(ErrorCode::kInvalidArgument,
                      "a kept head is a row number >= 1 and its 64-digit hash (as "
                      "frs audit verify prints it: SEQ:HASH)");
        }
        expected = AuditHead{request->expected_seq(), request->expected_hash()};
      }
      const AuditVerification v = access_.audit_log().verify(expected);
      response->set_intact(v.intact);
      response->set_rows_checked(v.rows_checked);
      response->set_first_broken_seq(v.first_broken_seq);
      response->set_problem(v.problem);
      response->set_head_seq(v.head.seq);
      response->set_head_hash(v.head.hash);
      response->set_purged_through(v.purged_through);
      response->set_begins_ms(v.begins_ms);
      bool recorded = false;
      const std::string gap = audit_history_gap(v, history_begins_ms(), recorded);
      response->set_history_gap(gap);
      response->set_history_gap_recorded(recorded);
      if (!gap.empty()) {
        call.details()["history_gap"] = gap;
        spdlog::warn("event=audit_history_gap recorded={} problem={}", recorded, logfmt_value(gap));
      }
      call.details()["intact"] = v.intact;
      call.details()["rows_checked"] = v.rows_checked;
      if (!v.intact) {
        call.details()["first_broken_seq"] = v.first_broken_seq;
        spdlog::error("event=audit_chain_broken row={} problem={}", v.first_broken_seq,
                      logfmt_value(v.problem));
      }
    });
  }

 private:
  // When the oldest record made through a call (so audited when made) was made: a token
  // other than the start-up admin's, or a watchlist. 0: none.
  std::int64_t history_begins_ms() {
    std::int64_t oldest = 0;
    const auto consider = [&](std::int64_t ms) {
      if (ms > 0 && (oldest == 0 || ms < oldest)) oldest = ms;
    };
    for (const TokenRecord& t : access_.tokens().list(true)) {
      if (t.created_by != kServerTokenCreator) consider(t.created_at_ms);
    }
    if (report_.gallery != nullptr) {
      for (const Watchlist& w : report_.gallery->store().list_watchlists()) {
        consider(w.created_at_ms);
      }
    }
    return oldest;
  }

  AccessControl& access_;
  ReportSources report_;
};

}  // namespace

std::unique_ptr<grpc::Service> make_token_service(AccessControl& access) {
  return std::make_unique<TokenService>(access);
}

std::unique_ptr<grpc::Service> make_audit_service(AccessControl& access,
                                                  const ReportSources& report) {
  return std::make_unique<AuditService>(access, report);
}

}  // namespace frs::service
