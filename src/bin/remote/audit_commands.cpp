// frs audit verify|list (auditor and admin tokens).

#include <iostream>

#include "frs/auth/audit_log.h"
#include "frs/core/time_text.h"
#include "remote_common.h"

namespace frs::cli {
namespace {

RemoteOptions& o = remote_options();

json record_json(const pb::AuditRecord& r) {
  auto object = [](const std::string& text) {
    const json parsed = json::parse(text, nullptr, false);
    return parsed.is_discarded() ? json(text) : parsed;
  };
  return {{"seq", r.seq()},
          {"time", format_utc_time(r.time_ms())},
          {"token", r.token()},
          {"role", r.role()},
          {"peer", r.peer()},
          {"method", r.method()},
          {"purpose", r.purpose()},
          {"outcome", r.outcome()},
          {"outcome_message", r.outcome_message()},
          {"targets", object(r.targets_json())},
          {"details", object(r.details_json())},
          {"previous_hash", r.previous_hash()},
          {"hash", r.hash()}};
}

}  // namespace

void add_audit_commands(CLI::App& app, Action& action) {
  auto run = [&action](std::function<int()> f) { action = std::move(f); };
  CLI::App* audit = app.add_subcommand("audit", "Verify and read the audit log (auditor, admin)");
  audit->require_subcommand(1);

  static std::string expect, offline_db;
  CLI::App* verify = audit->add_subcommand(
      "verify", "Check the whole hash chain; exit 1 naming the first broken row");
  verify->add_option("--expect", expect,
                     "A head kept earlier, SEQ:HASH (from an earlier verify or the server log): "
                     "the log must still hold that row unchanged");
  verify
      ->add_option("--db", offline_db,
                   "Check this copy of DATA_DIR/audit.db here, without the server (a backup, "
                   "or the file of a stopped server)")
      ->check(CLI::ExistingFile);
  verify->callback([run] {
    run([] {
      pb::VerifyAuditLogRequest request;
      if (!expect.empty()) {
        const auto colon = expect.find(':');
        std::int64_t seq = 0;
        try {
          seq = colon == std::string::npos ? 0 : std::stoll(expect.substr(0, colon));
        } catch (const std::exception&) {
        }
        if (seq < 1 || expect.size() - colon - 1 != 64) {
          throw RemoteError("--expect takes SEQ:HASH, e.g. 1042:9f86d08...(64 hex digits)");
        }
        request.set_expected_seq(seq);
        request.set_expected_hash(expect.substr(colon + 1));
      }
      pb::VerifyAuditLogResponse response;
      if (!offline_db.empty()) {
        std::optional<AuditHead> kept;
        if (request.expected_seq() > 0) {
          kept = AuditHead{request.expected_seq(), request.expected_hash()};
        }
        const AuditVerification v = open_sqlite_audit_log(offline_db)->verify(kept);
        response.set_intact(v.intact);
        response.set_rows_checked(v.rows_checked);
        response.set_first_broken_seq(v.first_broken_seq);
        response.set_problem(v.problem);
        response.set_head_seq(v.head.seq);
        response.set_head_hash(v.head.hash);
        response.set_purged_through(v.purged_through);
      } else {
        auto stub = pb::Audit::NewStub(connect(o));
        check(stub->VerifyAuditLog(context(3600).get(), request, &response), o);
      }
      if (o.json_output) {
        std::cout << json{{"intact", response.intact()},
                          {"rows_checked", response.rows_checked()},
                          {"first_broken_seq", response.first_broken_seq()},
                          {"problem", response.problem()},
                          {"purged_through", response.purged_through()},
                          {"head",
                           std::to_string(response.head_seq()) + ":" + response.head_hash()}}
                         .dump()
                  << "\n";
      } else if (response.intact()) {
        if (response.purged_through() > 0) {
          std::cout << "rows 1.." << response.purged_through()
                    << " were purged by retention (a purge record in the chain says so)\n";
        }
        std::cout << "audit log intact: " << response.rows_checked() << " rows; head "
                  << response.head_seq() << ":" << response.head_hash()
                  << " (keep it elsewhere; later: frs audit verify --expect " << response.head_seq()
                  << ":" << response.head_hash() << ")\n";
      } else {
        std::cout << "audit log BROKEN at row " << response.first_broken_seq() << ": "
                  << response.problem() << " (" << response.rows_checked()
                  << " rows before it are intact)\n";
      }
      return response.intact() ? 0 : 1;
    });
  });

  static std::string since, until, token_name, method;
  static int limit = 0;
  CLI::App* list = audit->add_subcommand("list", "Print audit rows, oldest first");
  list->add_option("--since", since, "From this date or date-time (UTC), inclusive");
  list->add_option("--until", until, "To this date (its end) or date-time (UTC), inclusive");
  list->add_option("--token", token_name,
                   "Only rows of this token name (here: a filter; give the API token before "
                   "the subcommand, or by --token-file / FRS_TOKEN)");
  list->add_option("--method", method, "Only this method: Search or /frs.v1.Search/Search");
  list->add_option("--limit", limit, "At most this many rows (default all)")
      ->check(CLI::PositiveNumber);
  list->callback([run] {
    run([] {
      pb::ListAuditRecordsRequest request;
      try {
        if (!since.empty()) {
          request.set_since_ms(parse_utc_time(since, DateMeans::kStartOfDay, "--since"));
        }
        if (!until.empty()) {
          request.set_until_ms(parse_utc_time(until, DateMeans::kEndOfDay, "--until"));
        }
      } catch (const std::exception& e) {
        throw RemoteError(e.what());
      }
      request.set_token(token_name);
      request.set_method(method);
      auto stub = pb::Audit::NewStub(connect(o));
      int printed = 0;
      for (std::int64_t after = 0;;) {
        request.set_after_seq(after);
        request.set_page_size(1000);
        pb::ListAuditRecordsResponse response;
        check(stub->ListAuditRecords(context().get(), request, &response), o);
        for (const pb::AuditRecord& r : response.records()) {
          if (limit > 0 && printed >= limit) return 0;
          ++printed;
          if (o.json_output) {
            std::cout << record_json(r).dump() << "\n";
            continue;
          }
          std::cout << r.seq() << "  " << format_utc_time(r.time_ms()) << "  "
                    << (r.token().empty() ? "-" : r.token()) << " (" << r.role() << ")  "
                    << r.method() << "  "
                    << (r.outcome() == 0 ? "OK" : "code " + std::to_string(r.outcome()))
                    << (r.purpose().empty() ? "" : "  purpose: " + r.purpose()) << "  "
                    << r.targets_json() << "\n";
        }
        if (response.next_after_seq() == 0) return 0;
        after = response.next_after_seq();
      }
    });
  });
}

}  // namespace frs::cli
