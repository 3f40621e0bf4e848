#include "frs/auth/access.h"

#include <algorithm>

namespace frs {
namespace {

constexpr Role kAdmin = Role::kAdmin, kOperator = Role::kOperator,
               kInvestigator = Role::kInvestigator, kDispatcher = Role::kDispatcher,
               kAuditor = Role::kAuditor;
constexpr Effect kReads = Effect::kReads, kChanges = Effect::kChanges;

// The one table. Keep it sorted by method name (find_method_access relies on it; a unit
// test checks it). Columns: method, roles, needs a purpose, what it does to the stores.
// Every role: the server reflection's schema is public (it is the proto files), but only to
// callers that hold a token.
constexpr MethodAccess kTable[] = {
    {"/frs.v1.Alerts/GetAlert", {kAdmin, kDispatcher}, true, kReads},
    {"/frs.v1.Alerts/ListAlerts", {kAdmin, kDispatcher}, false, kReads},
    {"/frs.v1.Alerts/ReviewAlert", {kAdmin, kDispatcher}, false, kChanges},
    {"/frs.v1.Alerts/StreamAlerts", {kAdmin, kDispatcher}, false, kReads},
    {"/frs.v1.Audit/ListAuditRecords", {kAdmin, kAuditor}, false, kReads},
    {"/frs.v1.Audit/Report", {kAdmin, kAuditor}, false, kReads},
    {"/frs.v1.Audit/VerifyAuditLog", {kAdmin, kAuditor}, false, kReads},
    {"/frs.v1.Cameras/AddCamera", {kAdmin, kOperator}, true, kChanges},
    {"/frs.v1.Cameras/ClusterStatus", {kAdmin, kOperator, kAuditor}, false, kReads},
    {"/frs.v1.Cameras/ListCameras", {kAdmin, kOperator}, false, kReads},
    {"/frs.v1.Cameras/RemoveCamera", {kAdmin, kOperator}, false, kChanges},
    {"/frs.v1.Evaluation/Evaluate", {kAdmin, kOperator, kAuditor}, false, kReads},
    {"/frs.v1.Gallery/AddFaces", {kAdmin, kOperator}, true, kChanges},
    {"/frs.v1.Gallery/AuthorizeWatchlist", {kAdmin, kOperator}, false, kChanges},
    {"/frs.v1.Gallery/CreateWatchlist", {kAdmin, kOperator}, true, kChanges},
    {"/frs.v1.Gallery/DeleteWatchlist", {kAdmin, kOperator}, false, kChanges},
    {"/frs.v1.Gallery/Enroll", {kAdmin, kOperator}, true, kChanges},
    {"/frs.v1.Gallery/GetIdentity", {kAdmin, kOperator}, false, kReads},
    {"/frs.v1.Gallery/GetWatchlist", {kAdmin, kOperator}, false, kReads},
    {"/frs.v1.Gallery/LiftSuppression", {kAdmin, kOperator}, false, kChanges},
    {"/frs.v1.Gallery/ListIdentities", {kAdmin, kOperator}, false, kReads},
    {"/frs.v1.Gallery/ListWatchlists", {kAdmin, kOperator}, false, kReads},
    {"/frs.v1.Gallery/ReembedWatchlist", {kAdmin, kOperator}, true, kChanges},
    {"/frs.v1.Gallery/RemoveIdentity", {kAdmin, kOperator}, false, kChanges},
    {"/frs.v1.Gallery/SetWatchlistLiveOnly", {kAdmin, kOperator}, false, kChanges},
    {"/frs.v1.Gallery/UpdateWatchlistThreshold", {kAdmin, kOperator}, false, kChanges},
    {"/frs.v1.Search/Compare", {kAdmin, kOperator, kInvestigator}, false, kReads},
    {"/frs.v1.Search/Search", {kAdmin, kOperator, kInvestigator}, true, kReads},
    {"/frs.v1.Tokens/CreateToken", {kAdmin}, false, kChanges},
    {"/frs.v1.Tokens/ListTokens", {kAdmin}, false, kReads},
    {"/frs.v1.Tokens/RevokeToken", {kAdmin}, false, kChanges},
    {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
     {kAdmin, kOperator, kInvestigator, kDispatcher, kAuditor}},
};

}  // namespace

std::string_view to_string(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kOperator:
      return "operator";
    case Role::kInvestigator:
      return "investigator";
    case Role::kDispatcher:
      return "dispatcher";
    case Role::kAuditor:
      return "auditor";
  }
  return "unknown";
}

std::optional<Role> parse_role(std::string_view text) {
  for (Role r : kAllRoles) {
    if (to_string(r) == text) return r;
  }
  return std::nullopt;
}

std::string role_names() {
  std::string out;
  for (Role r : kAllRoles) {
    if (!out.empty()) out += ", ";
    out += to_string(r);
  }
  return out;
}

std::string RoleSet::names() const {
  std::string out;
  for (Role r : kAllRoles) {
    if (!contains(r)) continue;
    if (!out.empty()) out += ", ";
    out += to_string(r);
  }
  return out;
}

std::span<const MethodAccess> access_table() {
  return kTable;
}

const MethodAccess* find_method_access(std::string_view method) {
  const auto* end = std::end(kTable);
  const auto* it =
      std::lower_bound(std::begin(kTable), end, method,
                       [](const MethodAccess& a, std::string_view m) { return a.method < m; });
  return it != end && it->method == method ? it : nullptr;
}

bool is_public_method(std::string_view method) {
  return method == "/grpc.health.v1.Health/Check" || method == "/grpc.health.v1.Health/Watch";
}

}  // namespace frs
