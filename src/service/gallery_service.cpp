#include <google/protobuf/util/json_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <mutex>
#include <set>
#include <tuple>

#include "frs/core/clock.h"
#include "frs/core/error.h"
#include "frs/core/logfmt.h"
#include "frs/core/text_fields.h"
#include "frs/core/time_text.h"
#include "frs/eval/metrics.h"
#include "frs/gallery/reembed.h"
#include "frs/service/services.h"
#include "frs/v1/gallery.grpc.pb.h"
#include "proto_convert.h"

namespace frs::service {
namespace {

namespace pb = ::frs::v1;
using ::frs::service::to_proto;  // the box conversion, beside this file's overloads

// An enrollment refused because of its photos, with every photo's outcome as details.
DetailedError photos_refused(const std::string& message, const pb::EnrollResponse& outcomes) {
  pb::ErrorStatus details;
  details.set_code(grpc::StatusCode::INVALID_ARGUMENT);
  details.set_message(message);
  details.add_details()->PackFrom(outcomes);
  return DetailedError(ErrorCode::kInvalidArgument, message, details.SerializeAsString());
}

// The basis is kept in the store as the message's JSON: readable in the database itself.
std::string basis_json(pb::ThresholdBasis basis) {
  basis.set_set_at_ms(now_unix_ms());
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(basis, &json).ok()) {
    throw Error(ErrorCode::kInternal, "cannot record the threshold basis");
  }
  return json;
}

pb::ThresholdBasis basis_with_method(const char* method) {
  pb::ThresholdBasis basis;
  basis.set_method(method);
  return basis;
}

void check_basis(const pb::ThresholdBasis& b) {
  check_text(b.data(), "threshold basis data", fields::kThresholdBasisData);
  if (b.groups_size() > static_cast<int>(fields::kMaxNamesPerList)) {
    throw Error(ErrorCode::kInvalidArgument, "a threshold basis names at most " +
                                                 std::to_string(fields::kMaxNamesPerList) +
                                                 " groups, got " + std::to_string(b.groups_size()));
  }
  for (const std::string& group : b.groups()) {
    check_text(group, "threshold basis group", fields::kGroupName);
  }
  if (!b.bound_by_group().empty()) {
    check_text(b.bound_by_group(), "threshold basis group", fields::kGroupName);
    if (std::find(b.groups().begin(), b.groups().end(), b.bound_by_group()) == b.groups().end()) {
      throw Error(
          ErrorCode::kInvalidArgument,
          "threshold basis: bound_by_group '" + b.bound_by_group() + "' is not one of its groups");
    }
  }
  if (b.method() == "manual") return;
  if (b.method() != "calibrated") {
    throw Error(
        ErrorCode::kInvalidArgument,
        "threshold basis method must be \"manual\" or \"calibrated\", got \"" + b.method() + "\"");
  }
  if (!(b.target_fpir() > 0 && b.target_fpir() < 1) || b.gallery_size() < 1 ||
      !(b.per_comparison_fmr() > 0 && b.per_comparison_fmr() < 1)) {
    throw Error(ErrorCode::kInvalidArgument,
                "a calibrated threshold needs target_fpir and per_comparison_fmr in (0, 1) and "
                "gallery_size >= 1: run frs eval --calibrate");
  }
}

void to_proto(const Authorization& a, const std::string& watchlist, std::int64_t now,
              pb::Authorization* out) {
  out->set_id(a.id);
  out->set_watchlist(watchlist);
  out->set_basis(a.basis);
  out->set_reference(a.reference);
  out->set_issued_by(a.issued_by);
  out->set_valid_from_ms(a.valid_from_ms);
  out->set_valid_until_ms(a.valid_until_ms);
  out->set_recorded_by(a.recorded_by);
  out->set_recorded_at_ms(a.recorded_at_ms);
  out->set_in_force(a.in_force_at(now));
}

void to_proto(Gallery& gallery, const Watchlist& w, pb::Watchlist* out) {
  GalleryStore& store = gallery.store();
  const std::int64_t now = now_unix_ms();
  const std::vector<Authorization> authorizations = gallery.authorizations(w.id);
  for (const Authorization& a : authorizations) {
    to_proto(a, w.name, now, out->add_authorizations());
  }
  out->set_live_only(w.live_only);
  out->set_effective_max_distance(gallery.threshold_of(w));
  out->set_descriptor_model(w.descriptor_model);
  if (const ReembedProgress p = store.reembed_progress(w.id); !p.target_model.empty()) {
    pb::ReembeddingStatus* r = out->mutable_reembedding();
    r->set_target_model(p.target_model);
    r->set_done(p.done);
    r->set_total(p.total);
    r->set_started_at_ms(p.started_at_ms);
    r->set_started_by(p.started_by);
  }
  if (const auto in_force = gallery.authorization_in_force(w.id, now)) {
    out->set_authorized(true);
    out->set_authorization_status("authorised until " + format_utc_time(in_force->valid_until_ms) +
                                  " (" + in_force->basis + " " + in_force->reference + ")");
  } else if (authorizations.empty()) {
    out->set_authorization_status("no authorisation recorded: not matched live");
  } else {
    std::int64_t last_end = 0;
    for (const Authorization& a : authorizations) {
      if (a.valid_until_ms < now) last_end = std::max(last_end, a.valid_until_ms);
    }
    out->set_authorization_status(last_end > 0
                                      ? "no authorisation in force since " +
                                            format_utc_time(last_end) + ": live matching stopped"
                                      : "no authorisation in force yet: not matched live");
  }
  out->set_indexed_face_count(static_cast<std::int64_t>(gallery.indexed_faces(w.id)));
  out->set_id(w.id);
  out->set_name(w.name);
  out->set_description(w.description);
  out->set_max_distance(w.max_distance);
  out->set_created_by(w.created_by);
  out->set_created_at_ms(w.created_at_ms);
  out->set_face_count(store.face_count(w.id));
  out->set_identity_count(store.identity_count(w.id));
  if (!w.threshold_basis.empty()) {
    // A record that no longer parses is shown as absent rather than failing the call.
    if (!google::protobuf::util::JsonStringToMessage(w.threshold_basis,
                                                     out->mutable_threshold_basis())
             .ok()) {
      out->clear_threshold_basis();
    }
  }
}

void to_proto(const Suppression& x, std::chrono::milliseconds retention, pb::Suppression* out) {
  out->set_id(x.id);
  out->set_identity_id(x.identity_id);
  out->set_alert_id(x.alert_id);
  out->set_created_by(x.created_by);
  out->set_created_at_ms(x.created_at_ms);
  out->set_note(x.note);
  out->set_expires_at_ms(x.alert_detected_at_ms + retention.count());
  out->set_descriptor_model(x.descriptor_model);
}

void to_proto(const Identity& i, const std::string& watchlist, pb::Identity* out) {
  out->set_id(i.id);
  out->set_watchlist(watchlist);
  out->set_external_id(i.external_id);
  out->set_display_name(i.display_name);
  out->set_notes(i.notes);
  out->set_created_at_ms(i.created_at_ms);
  out->set_face_count(i.face_count);
  out->set_created_by(i.created_by);
}

}  // namespace

std::pair<float, std::string> built_in_threshold(const Gallery& gallery,
                                                 const DescriptorModel& model,
                                                 const ServiceOptions& options,
                                                 std::int64_t expected_identities) {
  const Calibration c = calibrate_built_in(model, options.default_target_fpir,
                                           static_cast<std::size_t>(expected_identities));
  float max_distance = c.max_distance;
  pb::ThresholdBasis basis = basis_with_method("calibrated");
  std::string data = built_in_calibration_data(model);
  if (max_distance > gallery.max_distance_ceiling(model.id)) {
    // A small watchlist calibrates looser than the deployment allows: the floor wins.
    max_distance = gallery.max_distance_ceiling(model.id);
    data += "; capped at the server's --max-distance-ceiling";
  }
  basis.set_target_fpir(c.target_fpir);
  basis.set_gallery_size(expected_identities);
  basis.set_per_comparison_fmr(c.per_comparison_fmr);
  basis.set_impostor_comparisons(static_cast<std::int64_t>(c.impostor_comparisons));
  basis.set_extrapolated(true);
  basis.set_data(data);
  return {max_distance, basis_json(basis)};
}

namespace {

Watchlist require_watchlist(GalleryStore& store, const std::string& name) {
  auto w = store.find_watchlist(name);
  if (!w) throw Error(ErrorCode::kNotFound, "watchlist '" + name + "' does not exist");
  return *w;
}

class GalleryService final : public pb::Gallery::Service {
 public:
  GalleryService(AccessControl& access, Gallery& gallery, const FaceEngine& engine,
                 const ServiceOptions& options)
      : access_(access), gallery_(gallery), engine_(engine), options_(options) {}

  grpc::Status CreateWatchlist(grpc::ServerContext* context,
                               const pb::CreateWatchlistRequest* request,
                               pb::Watchlist* response) override {
    return serve(access_, context, [&](Call& call) {
      call.target("watchlist_names", request->name());
      Watchlist w;
      w.name = request->name();
      w.description = request->description();
      w.created_by = call.caller().token;
      w.live_only = request->live_only();
      call.details()["live_only"] = w.live_only;
      const DescriptorModel& model = request->descriptor_model().empty()
                                         ? engine_.descriptor_model()
                                         : descriptor_model(request->descriptor_model());
      if (!engine_.describes(model.id)) {
        throw Error(ErrorCode::kFailedPrecondition,
                    "this server does not describe faces with " + std::string(model.id));
      }
      w.descriptor_model = std::string(model.id);
      call.details()["descriptor_model"] = w.descriptor_model;
      if (request->max_distance() != 0) {
        w.max_distance = request->max_distance();
        w.threshold_basis = basis_json(basis_with_method("manual"));
      } else if (options_.default_max_distance > 0) {
        w.max_distance = options_.default_max_distance;
        w.threshold_basis = basis_json(basis_with_method("default"));
      } else {
        if (request->expected_identities() < 0 ||
            request->expected_identities() > kMaxExpectedIdentities) {
          throw Error(ErrorCode::kInvalidArgument, "expected_identities must be in 0.." +
                                                       std::to_string(kMaxExpectedIdentities) +
                                                       " (0 = the server's default)");
        }
        const std::int64_t size = request->expected_identities() > 0
                                      ? request->expected_identities()
                                      : options_.default_expected_identities;
        const auto [max_distance, basis] = built_in_threshold(gallery_, model, options_, size);
        w.max_distance = max_distance;
        w.threshold_basis = basis;
      }
      call.details()["max_distance"] = w.max_distance;
      const Watchlist created = gallery_.create_watchlist(w);
      call.target("watchlists", created.id);
      if (options_.on_watchlists_changed) options_.on_watchlists_changed();
      to_proto(gallery_, created, response);
    });
  }

  grpc::Status ListWatchlists(grpc::ServerContext* context, const pb::ListWatchlistsRequest*,
                              pb::ListWatchlistsResponse* response) override {
    return serve(access_, context, [&](Call& call) {
      for (const Watchlist& w : gallery_.store().list_watchlists()) {
        to_proto(gallery_, w, response->add_watchlists());
        call.target("watchlists", w.id);
      }
    });
  }

  grpc::Status GetWatchlist(grpc::ServerContext* context, const pb::GetWatchlistRequest* request,
                            pb::Watchlist* response) override {
    return serve(access_, context, [&](Call& call) {
      const Watchlist w = require_watchlist(gallery_.store(), request->name());
      call.target("watchlists", w.id);
      to_proto(gallery_, w, response);
    });
  }

  grpc::Status DeleteWatchlist(grpc::ServerContext* context,
                               const pb::DeleteWatchlistRequest* request,
                               pb::DeleteWatchlistResponse*) override {
    return serve(access_, context, [&](Call& call) {
      call.target("watchlist_names", request->name());
      if (const auto w = gallery_.store().find_watchlist(request->name())) {
        call.target("watchlists", w->id);
      }
      gallery_.delete_watchlist(request->name());
      if (options_.on_watchlists_changed) options_.on_watchlists_changed();
    });
  }

  grpc::Status UpdateWatchlistThreshold(grpc::ServerContext* context,
                                        const pb::UpdateWatchlistThresholdRequest* request,
                                        pb::Watchlist* response) override {
    return serve(access_, context, [&](Call& call) {
      const pb::ThresholdBasis basis =
          request->has_basis() ? request->basis() : basis_with_method("manual");
      check_basis(basis);
      call.target("watchlist_names", request->name());
      call.details()["max_distance"] = request->max_distance();
      call.details()["basis"] = basis.method();
      gallery_.set_max_distance(request->name(), request->max_distance(), basis_json(basis));
      to_proto(gallery_, require_watchlist(gallery_.store(), request->name()), response);
    });
  }

  grpc::Status AuthorizeWatchlist(grpc::ServerContext* context,
                                  const pb::AuthorizeWatchlistRequest* request,
                                  pb::Authorization* response) override {
    return serve(access_, context, [&](Call& call) {
      call.target("watchlist_names", request->watchlist());
      const Watchlist w = require_watchlist(gallery_.store(), request->watchlist());
      call.target("watchlists", w.id);
      const std::int64_t now = now_unix_ms();
      Authorization a;
      a.watchlist_id = w.id;
      a.basis = request->basis();
      a.reference = request->reference();
      a.issued_by = request->issued_by();
      a.valid_from_ms = request->valid_from_ms() == 0 ? now : request->valid_from_ms();
      a.valid_until_ms = request->valid_until_ms();
      a.recorded_by = call.caller().token;
      call.details()["basis"] = a.basis;
      call.details()["reference"] = a.reference;
      call.details()["issued_by"] = a.issued_by;
      call.details()["valid_from_ms"] = a.valid_from_ms;
      call.details()["valid_until_ms"] = a.valid_until_ms;
      check_time_in_range(a.valid_from_ms, "valid_from_ms");
      check_time_in_range(a.valid_until_ms, "valid_until_ms");
      if (a.valid_until_ms <= now) {
        throw Error(ErrorCode::kInvalidArgument,
                    "valid_until must be in the future (--until DATE or DATE-TIME, UTC)");
      }
      if (a.basis == "exigent") {
        // An emergency is now: an exigent authorisation starts when it is recorded, so
        // that back-to-back ones with later starts cannot stand in for a warrant.
        constexpr std::int64_t kClockSkewMs = 60'000;
        if (a.valid_from_ms > now + kClockSkewMs || a.valid_from_ms < now - kClockSkewMs) {
          throw Error(ErrorCode::kInvalidArgument,
                      "an exigent authorisation starts when it is recorded: leave its start "
                      "(valid_from, --from) empty; a later start needs a warrant or court "
                      "order");
        }
        const std::int64_t longest =
            std::chrono::duration_cast<std::chrono::milliseconds>(options_.exigent_max).count();
        if (a.valid_until_ms - a.valid_from_ms > longest) {
          throw Error(ErrorCode::kInvalidArgument,
                      "an exigent authorisation lasts at most " +
                          std::to_string(options_.exigent_max.count()) +
                          " hours (frs-server --exigent-max-hours); for longer, record the "
                          "warrant or court order");
        }
        // Nor one after another: all of them together, over any 7 days.
        auto exigent = gallery_.store().list_authorizations(w.id);
        const std::int64_t before = exigent_cover_ms(exigent, now);
        a.recorded_at_ms = now;
        exigent.push_back(a);
        if (exigent_cover_ms(exigent, now) > longest) {
          throw Error(ErrorCode::kFailedPrecondition,
                      "exigent authorisations of watchlist " + quote_for_message(w.name) +
                          " already cover " +
                          fmt::format("{:.1f} hours", static_cast<double>(before) / kMsPerHour) +
                          " of the last 7 days (and what they still run), and together may "
                          "cover at most " +
                          std::to_string(options_.exigent_max.count()) +
                          " hours in any 7 days (frs-server --exigent-max-hours): record the "
                          "warrant or court order");
        }
      }
      const Authorization stored = gallery_.authorize(a);
      call.details()["authorization_id"] = stored.id;
      if (options_.on_watchlists_changed) options_.on_watchlists_changed();
      to_proto(stored, w.name, now_unix_ms(), response);
    });
  }

  grpc::Status SetWatchlistLiveOnly(grpc::ServerContext* context,
                                    const pb::SetWatchlistLiveOnlyRequest* request,
                                    pb::Watchlist* response) override {
    return serve(access_, context, [&](Call& call) {
      call.target("watchlist_names", request->name());
      call.details()["live_only"] = request->live_only();
      gallery_.store().set_live_only(request->name(), request->live_only());
      const Watchlist w = require_watchlist(gallery_.store(), request->name());
      call.target("watchlists", w.id);
      to_proto(gallery_, w, response);
    });
  }

  grpc::Status LiftSuppression(grpc::ServerContext* context,
                               const pb::LiftSuppressionRequest* request,
                               pb::Suppression* response) override {
    return serve(access_, context, [&](Call& call) {
      check_text(request->reason(), "reason", fields::kOverrideReason);
      if (utf8_length(request->reason()) < 4) {
        throw Error(ErrorCode::kInvalidArgument,
                    "say why the suppression is lifted (--reason, at least 4 characters)");
      }
      call.details()["suppression_id"] = request->id();
      call.details()["reason"] = request->reason();
      const auto lifted = gallery_.lift_suppression(request->id());
      if (!lifted) {
        throw Error(ErrorCode::kNotFound,
                    "suppression " + std::to_string(request->id()) + " does not exist");
      }
      call.target("identities", lifted->identity_id);
      call.target("alerts", lifted->alert_id);
      to_proto(*lifted, options_.alert_retention, response);
    });
  }

  grpc::Status Enroll(grpc::ServerContext* context, const pb::EnrollRequest* request,
                      pb::EnrollResponse* response) override {
    return serve(access_, context, [&](Call& call) {
      const Watchlist w = require_watchlist(gallery_.store(), request->watchlist());
      call.target("watchlists", w.id);
      if (request->external_id().empty()) {
        throw Error(ErrorCode::kInvalidArgument,
                    "external_id is required (e.g. a booking number; --external-id)");
      }
      Identity identity;
      identity.watchlist_id = w.id;
      identity.external_id = request->external_id();
      identity.display_name = request->display_name();
      identity.notes = request->notes();
      identity.created_by = call.caller().token;
      const auto prepared = prepare(request->photos(), descriptor_model(w.descriptor_model),
                                    response, cancellation_of(call));
      std::vector<StoredFace> faces;
      for (const auto& [outcome, face] : prepared) faces.push_back(face);
      Identity stored;
      try {
        // Into the watchlist resolved above, by its id (ids are never reused), or not at all.
        stored = gallery_.enroll(identity, faces);
      } catch (const Error& e) {
        if (e.code() == ErrorCode::kFailedPrecondition) {
          throw Error(ErrorCode::kFailedPrecondition,
                      "watchlist " + quote_for_message(w.name) +
                          " moved to another descriptor model while the photos were analysed: "
                          "nothing enrolled; enroll again");
        }
        if (e.code() != ErrorCode::kNotFound) throw;
        throw Error(ErrorCode::kNotFound, "watchlist " + quote_for_message(w.name) +
                                              " was deleted while the photos were analysed: "
                                              "nothing enrolled");
      }
      const auto stored_faces = gallery_.store().faces_of_identity(stored.id);
      for (std::size_t i = 0; i < prepared.size() && i < stored_faces.size(); ++i) {
        response->mutable_photos(prepared[i].first)->set_face_id(stored_faces[i].id);
      }
      log_overrides(prepared, w.name, stored.id, *response);
      call.target("identities", stored.id);
      audit_photos(call, prepared, *response);
      to_proto(stored, w.name, response->mutable_identity());
    });
  }

  grpc::Status AddFaces(grpc::ServerContext* context, const pb::AddFacesRequest* request,
                        pb::EnrollResponse* response) override {
    return serve(access_, context, [&](Call& call) {
      call.target("identities", request->identity_id());
      const auto identity = gallery_.store().get_identity(request->identity_id());
      if (!identity) {
        throw Error(ErrorCode::kNotFound,
                    "identity " + std::to_string(request->identity_id()) + " does not exist");
      }
      const auto w = gallery_.store().get_watchlist(identity->watchlist_id);
      if (!w) throw Error(ErrorCode::kNotFound, "the identity's watchlist was deleted");
      // Photos already enrolled for this identity are skipped, so a re-run resumes.
      const auto prepared = prepare(request->photos(), descriptor_model(w->descriptor_model),
                                    response, cancellation_of(call));
      std::vector<StoredFace> fresh;
      std::vector<int> fresh_outcomes;
      for (const auto& [outcome, face] : prepared) {
        if (gallery_.store().has_photo(identity->id, face.image_sha256)) {
          response->mutable_photos(outcome)->set_skipped(true);
        } else {
          fresh.push_back(face);
          fresh_outcomes.push_back(outcome);
        }
      }
      if (!fresh.empty()) {
        const auto stored = gallery_.add_faces(identity->id, fresh);
        for (std::size_t i = 0; i < stored.size(); ++i) {
          response->mutable_photos(fresh_outcomes[i])->set_face_id(stored[i].id);
        }
      }
      call.target("watchlists", identity->watchlist_id);
      audit_photos(call, prepared, *response);
      log_overrides(prepared, w->name, identity->id, *response);
      to_proto(*gallery_.store().get_identity(identity->id), w->name, response->mutable_identity());
    });
  }

  grpc::Status ReembedWatchlist(grpc::ServerContext* context,
                                const pb::ReembedWatchlistRequest* request,
                                grpc::ServerWriter<pb::ReembedProgress>* writer) override {
    return serve(access_, context, [&](Call& call) {
      call.target("watchlist_names", request->name());
      const Watchlist w = require_watchlist(gallery_.store(), request->name());
      call.target("watchlists", w.id);
      const DescriptorModel& model = descriptor_model(request->descriptor_model());
      call.details()["descriptor_model_from"] = w.descriptor_model;
      call.details()["descriptor_model_to"] = model.id;
      if (request->max_distance() != 0) {
        gallery_.check_max_distance(request->max_distance(), model.id, "max_distance");
      }
      // One re-embedding of a watchlist at a time: a second would describe the same faces.
      {
        std::lock_guard lock(reembeds_mutex_);
        if (!reembeds_running_.insert(w.id).second) {
          throw Error(ErrorCode::kFailedPrecondition,
                      "watchlist " + quote_for_message(w.name) +
                          " is being re-embedded by another call; wait for it");
        }
      }
      struct Running {
        GalleryService& service;
        std::int64_t id;
        ~Running() {
          std::lock_guard lock(service.reembeds_mutex_);
          service.reembeds_running_.erase(id);
        }
      } running{*this, w.id};
      call.audit_now();  // on record before the work, should the server not live to finish
      std::string note;
      std::int64_t carried = 0, lost = 0;
      ReembedOptions options;
      options.before_switch = [&] {
        const auto [now_carried, now_lost] = carry_suppressions(w.id, model, call);
        carried += now_carried;
        lost += now_lost;
      };
      options.threshold = [&] {
        const auto [max_distance, basis, why] = threshold_after_reembed(w.id, model, *request);
        note = why;
        return std::pair{max_distance, basis};
      };
      options.progress = [&](const ReembedStatus& s) {
        pb::ReembedProgress p;
        p.set_done(s.done);
        p.set_total(s.total);
        p.set_from_region(s.from_region);
        p.set_from_thumbnail(s.from_thumbnail);
        writer->Write(p);  // a client gone is the cancellation's to notice
      };
      const ReembedStatus status = reembed_watchlist(
          gallery_, engine_, w.id, model, call.caller().token, options, cancellation_of(call));
      pb::ReembedProgress last;
      last.set_done(status.done);
      last.set_total(status.total);
      last.set_from_region(status.from_region);
      last.set_from_thumbnail(status.from_thumbnail);
      for (const auto& [face_id, reason] : status.need_original) {
        pb::FaceNeedingOriginal* n = last.add_need_original();
        n->set_face_id(face_id);
        n->set_reason(reason);
        if (const auto identity = gallery_.store().identity_of_face(face_id)) {
          n->set_identity_id(identity->id);
          n->set_external_id(identity->external_id);
        }
        call.details()["need_original"].push_back(face_id);
      }
      last.set_suppressions_carried(carried);
      last.set_suppressions_lost(lost);
      call.details()["suppressions_carried"] = carried;
      call.details()["suppressions_lost"] = lost;
      call.details()["from_region"] = status.from_region;
      call.details()["from_thumbnail"] = status.from_thumbnail;
      call.details()["switched"] = status.switched.has_value();
      if (status.switched) {
        to_proto(gallery_, *status.switched, last.mutable_watchlist());
        last.set_threshold_note(note);
        call.details()["max_distance"] = status.switched->max_distance;
        call.details()["threshold_note"] = note;
        spdlog::info("event=watchlist_reembedded watchlist={} from={} to={} faces={} by={}",
                     logfmt_value(w.name), w.descriptor_model, model.id, status.total,
                     logfmt_value(call.caller().token));
        if (options_.on_watchlists_changed) options_.on_watchlists_changed();
      }
      writer->Write(last);
    });
  }

  grpc::Status ListIdentities(grpc::ServerContext* context,
                              const pb::ListIdentitiesRequest* request,
                              pb::ListIdentitiesResponse* response) override {
    return serve(access_, context, [&](Call& call) {
      const Watchlist w = require_watchlist(gallery_.store(), request->watchlist());
      call.target("watchlists", w.id);
      const int size = request->page_size() == 0 ? 100 : request->page_size();
      if (size < 1 || size > 1000) {
        throw Error(ErrorCode::kInvalidArgument, "page_size must be in 1..1000");
      }
      std::int64_t after = 0;
      if (!request->page_token().empty()) {
        // Exactly the digits of an id this server issued: "12abc" or " 12" is not one.
        const std::string& token = request->page_token();
        const auto [end, error] = std::from_chars(token.data(), token.data() + token.size(), after);
        if (error != std::errc() || end != token.data() + token.size() || after < 1) {
          throw Error(ErrorCode::kInvalidArgument,
                      "page_token " + quote_for_message(token, 24) +
                          " is not one this server issued: pass next_page_token as it came");
        }
      }
      const auto page = gallery_.store().list_identities(w.id, after, size);
      for (const Identity& i : page) to_proto(i, w.name, response->add_identities());
      call.details()["identities_returned"] = page.size();
      if (static_cast<int>(page.size()) == size) {
        response->set_next_page_token(std::to_string(page.back().id));
      }
    });
  }

  grpc::Status GetIdentity(grpc::ServerContext* context, const pb::GetIdentityRequest* request,
                           pb::Identity* response) override {
    return serve(access_, context, [&](Call& call) {
      call.target("identities", request->id());
      const auto identity = gallery_.store().get_identity(request->id());
      if (!identity) {
        throw Error(ErrorCode::kNotFound,
                    "identity " + std::to_string(request->id()) + " does not exist");
      }
      const auto w = gallery_.store().get_watchlist(identity->watchlist_id);
      to_proto(*identity, w ? w->name : "", response);
      for (const Suppression& x : gallery_.suppressions_of(identity->id)) {
        to_proto(x, options_.alert_retention, response->add_suppressions());
      }
    });
  }

  grpc::Status RemoveIdentity(grpc::ServerContext* context,
                              const pb::RemoveIdentityRequest* request,
                              pb::RemoveIdentityResponse*) override {
    return serve(access_, context, [&](Call& call) {
      call.target("identities", request->id());
      gallery_.remove_identity(request->id());
    });
  }

 private:
  // The audit row of an enrollment: each photo's SHA-256 and outcome (never the photo).
  static void audit_photos(Call& call, const std::vector<std::pair<int, StoredFace>>& prepared,
                           const pb::EnrollResponse& response) {
    for (const auto& [outcome, face] : prepared) {
      const pb::PhotoOutcome& photo = response.photos(outcome);
      nlohmann::json p = {{"image_sha256", face.image_sha256}, {"skipped", photo.skipped()}};
      if (photo.face_id() != 0) {
        p["face_id"] = photo.face_id();
        call.target("faces", photo.face_id());
      }
      if (!photo.overridden().empty()) p["gate_overridden"] = photo.overridden();
      if (!face.gate_override.empty() && photo.face_id() != 0) {
        p["gate_override"] = face.gate_override;  // the refusal and the operator's reason
      }
      call.details()["photos"].push_back(p);
    }
  }

  // Every stored face the gate refused but an operator overrode, one line each: the
  // server's log is where such decisions are reviewed (the face record keeps them too).
  static void log_overrides(const std::vector<std::pair<int, StoredFace>>& prepared,
                            const std::string& watchlist, std::int64_t identity_id,
                            const pb::EnrollResponse& response) {
    for (const auto& [outcome, face] : prepared) {
      const pb::PhotoOutcome& photo = response.photos(outcome);
      if (face.gate_override.empty() || photo.face_id() == 0) continue;
      spdlog::warn("event=gate_override watchlist={} identity={} face={} source={} override={}",
                   logfmt_value(watchlist), identity_id, photo.face_id(),
                   logfmt_value(photo.source()), logfmt_value(face.gate_override));
    }
  }

  // Checks every photo; throws photos_refused (with every photo's outcome) unless all are
  // usable, so that an enrollment lands whole or not at all.
  // Returns each accepted face with the index of its outcome in the response.
  std::vector<std::pair<int, StoredFace>> prepare(
      const google::protobuf::RepeatedPtrField<pb::Photo>& photos, const DescriptorModel& model,
      pb::EnrollResponse* response, const Cancellation& cancel) {
    if (!engine_.describes(model.id)) {
      throw Error(ErrorCode::kFailedPrecondition, "this server does not describe faces with " +
                                                      std::string(model.id) +
                                                      ", the watchlist's model");
    }
    if (photos.empty()) throw Error(ErrorCode::kInvalidArgument, "no photos given");
    if (photos.size() > options_.max_photos_per_request) {
      throw Error(ErrorCode::kInvalidArgument,
                  "at most " + std::to_string(options_.max_photos_per_request) +
                      " photos per request, got " + std::to_string(photos.size()));
    }
    std::vector<std::pair<int, StoredFace>> faces;
    std::string first_problem;
    for (int index = 0; index < photos.size(); ++index) {
      const pb::Photo& photo = photos[index];
      const auto& bytes = photo.image();
      check_text(photo.source(), "photo source", fields::kPhotoSource);
      check_text(photo.override_reason(), "override_reason", fields::kOverrideReason);
      // The same image twice in one request is stored once (it was stored 32 times).
      const auto same = std::find_if(photos.begin(), photos.begin() + index,
                                     [&](const pb::Photo& p) { return p.image() == bytes; });
      if (same != photos.begin() + index) {
        pb::PhotoOutcome* outcome = response->add_photos();
        outcome->set_source(photo.source());
        outcome->set_accepted(true);
        outcome->set_skipped(true);
        outcome->set_reason("the same image as photo " + std::to_string(same - photos.begin() + 1) +
                            " of this request: stored once");
        continue;
      }
      const std::span<const std::uint8_t> image(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                                bytes.size());
      const auto slot = image_slot(options_, cancel);
      const PreparedPhoto prepared = prepare_photo(
          engine_, image,
          photo.has_face_index() ? std::optional<int>(photo.face_index()) : std::nullopt,
          options_.enrollment, photo.override_reason(), cancel, &model);
      pb::PhotoOutcome* outcome = response->add_photos();
      outcome->set_source(photo.source());
      outcome->set_accepted(prepared.accepted);
      outcome->set_reason(prepared.reason);
      to_proto(prepared.box, outcome->mutable_box());
      outcome->set_quality(prepared.face.quality);
      outcome->set_overridden(prepared.overridden);
      outcome->set_overridable(prepared.overridable);
      if (prepared.accepted) {
        faces.emplace_back(response->photos_size() - 1, prepared.face);
      } else if (first_problem.empty()) {
        first_problem = (photo.source().empty() ? "a photo" : quote_for_message(photo.source())) +
                        ": " + prepared.reason;
      }
    }
    if (!first_problem.empty()) {
      throw photos_refused("nothing enrolled: " + first_problem, *response);
    }
    return faces;
  }

  // Describes with `model` the suppressions of the watchlist's identities learnt under
  // another model, from their alert's face crop, and stores them beside the old ones (which
  // stop applying at the switch). An alert already carried over is not again. Returns how
  // many alerts' suppressions were carried and how many could not be.
  std::pair<std::int64_t, std::int64_t> carry_suppressions(std::int64_t watchlist_id,
                                                           const DescriptorModel& model,
                                                           Call& call) {
    std::int64_t carried = 0, lost = 0;
    std::vector<Suppression> add;
    for (std::int64_t after = 0;;) {
      const auto identities = gallery_.store().list_identities(watchlist_id, after, 1000);
      if (identities.empty()) break;
      after = identities.back().id;
      for (const Identity& identity : identities) {
        const std::vector<Suppression> known = gallery_.suppressions_of(identity.id);
        std::set<std::int64_t> done;  // alerts with a suppression of the target already
        for (const Suppression& x : known) {
          if (x.descriptor_model == model.id) done.insert(x.alert_id);
        }
        for (const Suppression& x : known) {
          if (!done.insert(x.alert_id).second) continue;
          const std::vector<std::uint8_t> crop =
              options_.alert_face ? options_.alert_face(x.alert_id) : std::vector<std::uint8_t>{};
          std::optional<Embedding> descriptor;
          if (!crop.empty()) {
            try {
              // A crop of one face (the alert's, with a little context): small, unslotted.
              std::vector<Face> faces = engine_.analyze(
                  decode_image(crop, engine_.options().limits), false, cancellation_of(call));
              if (!faces.empty()) {
                faces.resize(1);  // the largest: the crop is of the alert's face
                engine_.embed(faces, model, cancellation_of(call));
                descriptor = faces[0].embedding;
              }
            } catch (const Error& e) {
              if (e.code() == ErrorCode::kCancelled) throw;
            }
          }
          if (!descriptor) {
            ++lost;
            call.details()["suppressions_lost_alerts"].push_back(x.alert_id);
            continue;
          }
          Suppression again = x;
          again.id = 0;
          again.descriptor = std::move(*descriptor);
          again.descriptor_model = std::string(model.id);
          add.push_back(std::move(again));
          ++carried;
        }
      }
    }
    if (!add.empty()) gallery_.add_suppressions(add);
    return {carried, lost};
  }

  // The threshold a re-embedded watchlist switches to, its basis (JSON), and why, in words.
  std::tuple<float, std::string, std::string> threshold_after_reembed(
      std::int64_t watchlist_id, const DescriptorModel& model,
      const pb::ReembedWatchlistRequest& request) {
    const auto w = gallery_.store().get_watchlist(watchlist_id);
    if (!w) throw Error(ErrorCode::kNotFound, "the watchlist was deleted during re-embedding");
    if (request.max_distance() != 0) {
      return {request.max_distance(), basis_json(basis_with_method("manual")),
              "set to the given " + std::to_string(request.max_distance())};
    }
    pb::ThresholdBasis basis;
    if (!w->threshold_basis.empty() &&
        !google::protobuf::util::JsonStringToMessage(w->threshold_basis, &basis).ok()) {
      basis.Clear();
    }
    if (basis.method() == "manual") {
      const float ceiling = gallery_.max_distance_ceiling(model.id);
      const float kept = std::min(w->max_distance, ceiling);
      return {kept, w->threshold_basis,
              "kept the threshold set by hand (" + std::to_string(kept) +
                  (kept < w->max_distance ? ", capped at " + std::string(model.id) + "'s ceiling"
                                          : std::string()) +
                  "); it was chosen on " + w->descriptor_model +
                  "'s scale: check it (frs eval --calibrate --descriptor " + std::string(model.id) +
                  ")"};
    }
    // Calibrated (by the built-in model or on an agency's own photos), a fixed default, or
    // not recorded: the new model's built-in calibration, for the size calibrated for.
    const std::int64_t size =
        basis.gallery_size() > 0 ? basis.gallery_size() : options_.default_expected_identities;
    ServiceOptions at_rate = options_;
    if (basis.target_fpir() > 0 && basis.target_fpir() < 1) {
      at_rate.default_target_fpir = basis.target_fpir();
    }
    const auto [max_distance, new_basis] = built_in_threshold(gallery_, model, at_rate, size);
    return {max_distance, new_basis,
            "recalibrated for " + std::string(model.id) + " with its built-in impostor model (" +
                std::to_string(size) + " identities at FPIR " +
                std::to_string(at_rate.default_target_fpir) +
                "); to calibrate on your own photos: frs eval --calibrate --descriptor " +
                std::string(model.id) + " --apply-to " + w->name};
  }

  AccessControl& access_;
  Gallery& gallery_;
  const FaceEngine& engine_;
  ServiceOptions options_;
  std::mutex reembeds_mutex_;
  std::set<std::int64_t> reembeds_running_;  // watchlist ids
};

}  // namespace

float default_max_distance_ceiling(const DescriptorModel& model) {
  return default_watchlist_threshold(model) + kCeilingMargin;
}

std::unique_ptr<grpc::Service> make_gallery_service(AccessControl& access, Gallery& gallery,
                                                    const FaceEngine& engine,
                                                    const ServiceOptions& options) {
  return std::make_unique<GalleryService>(access, gallery, engine, options);
}

}  // namespace frs::service
