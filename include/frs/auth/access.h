#pragma once
// Who may call what: the roles a token can have, and the one table of gRPC method -> roles.
// The server's interceptor (src/service/interceptor.cpp) looks every call up here; a method
// that is not in the table is refused, never allowed.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace frs {

enum class Role : std::uint8_t {
  kAdmin,         // tokens, and everything the other roles may do
  kOperator,      // watchlists, enrollment, cameras, search, evaluation
  kInvestigator,  // search and compare only (the integrators' Search RPC)
  kDispatcher,    // alerts: stream, list, get with the face image, review
  kAuditor,       // the audit log and evaluation; read-only, no face images
};

inline constexpr Role kAllRoles[] = {Role::kAdmin, Role::kOperator, Role::kInvestigator,
                                     Role::kDispatcher, Role::kAuditor};

std::string_view to_string(Role role);
// "admin", "operator", ...; nullopt for anything else.
std::optional<Role> parse_role(std::string_view text);
// "admin, operator, investigator, dispatcher, auditor" for error messages and --help.
std::string role_names();

// A set of roles as bits (1 << Role).
class RoleSet {
 public:
  constexpr RoleSet() = default;
  constexpr RoleSet(std::initializer_list<Role> roles) {
    for (Role r : roles) bits_ |= bit(r);
  }
  constexpr bool contains(Role r) const { return (bits_ & bit(r)) != 0; }
  std::string names() const;  // "admin, operator"

 private:
  static constexpr std::uint8_t bit(Role r) {
    return static_cast<std::uint8_t>(1u << static_cast<unsigned>(r));
  }
  std::uint8_t bits_ = 0;
};

// What a call does to what frs stores (watchlists, identities, cameras, tokens, reviews,
// authorisations, suppressions).
enum class Effect : std::uint8_t {
  kReads,    // its audit row is written before the answer is sent: no row, no answer
  kChanges,  // also an intent row before anything changes: no row, no change
};

struct MethodAccess {
  std::string_view method;  // full gRPC name: "/frs.v1.Search/Search"
  RoleSet roles;            // who may call it
  // The call must carry a purpose (a case number or reason) in its metadata: it searches
  // faces, adds people or cameras to what is matched, or shows a face.
  bool needs_purpose = false;
  Effect effect = Effect::kReads;
};

// The table itself, every method frs-server serves except the standard health service
// (open to all, so that load balancers and orchestrators need no token).
std::span<const MethodAccess> access_table();

// The entry of `method`, or nullptr when the table does not have it (then: refused).
const MethodAccess* find_method_access(std::string_view method);

// Methods that answer without a credential.
bool is_public_method(std::string_view method);

}  // namespace frs
