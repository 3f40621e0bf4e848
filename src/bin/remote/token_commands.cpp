// frs token create|list|revoke (admin tokens only).

#include <iostream>

#include "frs/core/time_text.h"
#include "remote_common.h"

namespace frs::cli {
namespace {

json token_json(const pb::Token& t) {
  return {{"id", t.id()},
          {"name", t.name()},
          {"role", t.role()},
          {"created_by", t.created_by()},
          {"created_at", t.created_at_ms() ? json(format_utc_time(t.created_at_ms())) : json()},
          {"expires_at", t.expires_at_ms() ? json(format_utc_time(t.expires_at_ms())) : json()},
          {"revoked_at", t.revoked_at_ms() ? json(format_utc_time(t.revoked_at_ms())) : json()},
          {"revoked_by", t.revoked_by()}};
}

}  // namespace

void add_token_commands(CLI::App& app, Action& action) {
  auto run = [&action](std::function<int()> f) { action = std::move(f); };
  CLI::App* token = app.add_subcommand("token", "Make, list and revoke API tokens (admin)");
  token->require_subcommand(1);

  static std::string name, role, expires;
  CLI::App* create = token->add_subcommand("create", "Make a token; its secret is shown once");
  create->add_option("name", name, "Who holds it: a person or a system (dispatch-console-3)")
      ->required();
  create->add_option("--role", role, "admin, operator, investigator, dispatcher or auditor")
      ->required()
      ->check(CLI::IsMember({"admin", "operator", "investigator", "dispatcher", "auditor"}));
  create->add_option("--expires", expires,
                     "Expiry: a date (valid to the end of that day, UTC) or a date-time with "
                     "a zone (2026-12-01T18:30:00Z); default never");
  create->callback([run] {
    run([] {
      pb::CreateTokenRequest request;
      request.set_name(name);
      request.set_role(role);
      if (!expires.empty()) {
        try {
          request.set_expires_at_ms(parse_utc_time(expires, DateMeans::kEndOfDay, "--expires"));
        } catch (const std::exception& e) {
          throw RemoteError(e.what());
        }
      }
      auto stub = pb::Tokens::NewStub(connect(o));
      pb::CreateTokenResponse response;
      check(stub->CreateToken(context().get(), request, &response), o);
      if (o.json_output) {
        json out = token_json(response.token());
        out["secret"] = response.secret();
        std::cout << out.dump() << "\n";
      } else {
        std::cout << response.secret() << "\n";
        std::cerr << "token '" << response.token().name() << "' (" << response.token().role()
                  << ") made; the line above is its secret, shown only now: give it to its "
                     "holder (frs --token-file FILE)\n";
      }
      return 0;
    });
  });

  static bool include_revoked = false;
  CLI::App* list = token->add_subcommand("list", "List tokens (never their secrets)");
  list->add_flag("--all", include_revoked, "Revoked tokens too");
  list->callback([run] {
    run([] {
      auto stub = pb::Tokens::NewStub(connect(o));
      pb::ListTokensRequest request;
      request.set_include_revoked(include_revoked);
      pb::ListTokensResponse response;
      check(stub->ListTokens(context().get(), request, &response), o);
      for (const pb::Token& t : response.tokens()) {
        if (o.json_output) {
          std::cout << token_json(t).dump() << "\n";
          continue;
        }
        std::cout << t.name() << "  " << t.role() << "  made by " << t.created_by() << " "
                  << format_utc_time(t.created_at_ms())
                  << (t.expires_at_ms() ? "  expires " + format_utc_time(t.expires_at_ms()) : "")
                  << (t.revoked_at_ms() ? "  revoked " + format_utc_time(t.revoked_at_ms()) +
                                              " by " + t.revoked_by()
                                        : "")
                  << "\n";
      }
      return 0;
    });
  });

  static std::string revoke_name;
  CLI::App* revoke = token->add_subcommand("revoke", "Revoke a token: it stops working at once");
  revoke->add_option("name", revoke_name, "The token's name")->required();
  revoke->callback([run] {
    run([] {
      auto stub = pb::Tokens::NewStub(connect(o));
      pb::RevokeTokenRequest request;
      request.set_name(revoke_name);
      pb::Token response;
      check(stub->RevokeToken(context().get(), request, &response), o);
      if (o.json_output) {
        std::cout << token_json(response).dump() << "\n";
      } else {
        std::cout << "revoked token " << response.name() << "\n";
      }
      return 0;
    });
  });
}

}  // namespace frs::cli
