// The `frs` subcommands that talk to frs-server over gRPC. Each group lives in its own file
// under remote/; the options they share are the root command's (remote_common.h).

#include "frs_remote.h"

#include "remote/remote_common.h"

namespace frs::cli {

void add_remote_commands(CLI::App& app, std::function<int()>& action) {
  add_shared_remote_options(app);
  add_watchlist_commands(app, action);
  add_enroll_commands(app, action);
  add_search_commands(app, action);
  add_camera_commands(app, action);
  add_alert_commands(app, action);
  add_token_commands(app, action);
  add_audit_commands(app, action);
}

}  // namespace frs::cli
