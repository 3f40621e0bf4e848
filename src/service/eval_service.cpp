// frs.v1.Evaluation: `frs eval` over gRPC, on photos the caller sends (nothing is stored).

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "frs/core/error.h"
#include "frs/core/text_fields.h"
#include "frs/eval/evaluate.h"
#include "frs/service/services.h"
#include "frs/v1/eval.grpc.pb.h"

namespace frs::service {
namespace {

namespace pb = frs::v1;

// At about 40 ms a photo on 2 cores, 2000 photos take a minute and a half of the engine
// that live video shares.
constexpr int kMaxPhotos = 2000;

void to_proto(const Rate& rate, pb::ErrorRate* out) {
  out->set_errors(static_cast<std::int64_t>(rate.errors));
  out->set_trials(static_cast<std::int64_t>(rate.trials));
  out->set_rate(rate.value());
}

void to_proto(const ThresholdAt& point, const Rate& missed, pb::OperatingPoint* out) {
  out->set_target(point.target);
  out->set_threshold(point.threshold);
  to_proto(point.achieved, out->mutable_achieved());
  out->set_support(to_string(point.support));
  to_proto(missed, out->mutable_missed());
}

class EvaluationService final : public pb::Evaluation::Service {
 public:
  EvaluationService(AccessControl& access, const FaceEngine& engine, const ServiceOptions& options)
      : access_(access), engine_(engine), options_(options) {}

  grpc::Status Evaluate(grpc::ServerContext* context, const pb::EvaluateRequest* request,
                        pb::EvaluateResponse* response) override {
    return serve(access_, context, [&](Call& call) {
      EvaluationOptions options = options_of(*request, engine_.descriptor_model());
      std::vector<EvalImage> images;
      std::set<std::string> identities;
      for (const pb::LabelledPhoto& photo : request->photos()) {
        check_text(photo.source(), "photo source", fields::kPhotoSource);
        if (photo.identity().empty()) {
          throw Error(ErrorCode::kInvalidArgument, "photo " + quote_for_message(photo.source()) +
                                                       " has no identity: label every photo");
        }
        check_text(photo.identity(), "photo identity", fields::kEvalIdentity);
        EvalImage image;
        image.identity = photo.identity();
        image.file =
            photo.source().empty() ? "photo " + std::to_string(images.size()) : photo.source();
        image.bytes = photo.image();
        images.push_back(std::move(image));
        identities.insert(photo.identity());
        if (!photo.group().empty()) {
          check_text(photo.group(), "photo group", fields::kGroupName);
          if (!options.groups) options.groups.emplace();
          auto& groups = options.groups->groups_of[photo.identity()];
          if (std::find(groups.begin(), groups.end(), photo.group()) == groups.end()) {
            groups.push_back(photo.group());
          }
        }
      }
      // One evaluation at a time: it takes every core the live path also needs.
      std::unique_lock running(running_, std::try_to_lock);
      if (!running.owns_lock()) {
        throw Error(ErrorCode::kResourceExhausted,
                    "another evaluation is running: try again when it has finished");
      }
      describe_images(engine_, images, {}, options_.enrollment, cancellation_of(call),
                      options_.image_slots.get());
      std::vector<EvalImage> described;
      for (EvalImage& image : images) {
        if (!image.descriptor) {
          add_problem(image, image.problem, response->add_no_descriptor());
          continue;
        }
        if (!image.enrollment_problem.empty()) {
          add_problem(image, image.enrollment_problem, response->add_enrollment_gate_refuses());
        }
        image.bytes.clear();  // no longer needed
        described.push_back(std::move(image));
      }
      const Evaluation evaluation = evaluate(all_pairs(described), described, options);
      response->set_photos(request->photos_size());
      response->set_identities(static_cast<int>(identities.size()));
      call.details()["photos"] = request->photos_size();
      call.details()["identities"] = identities.size();
      fill(evaluation, response);
      // The figures, for the accountability report ("the last recorded evaluation").
      std::string figures;
      if (google::protobuf::util::MessageToJsonString(*response, &figures).ok()) {
        call.details()["results"] = nlohmann::json::parse(figures);
      }
    });
  }

 private:
  static EvaluationOptions options_of(const pb::EvaluateRequest& r, const DescriptorModel& model) {
    if (r.photos_size() < 4 || r.photos_size() > kMaxPhotos) {
      throw Error(ErrorCode::kInvalidArgument,
                  "send 4.." + std::to_string(kMaxPhotos) + " photos, got " +
                      std::to_string(r.photos_size()) + " (more: use frs eval offline)");
    }
    EvaluationOptions o;
    o.max_distance = r.max_distance() != 0 ? r.max_distance() : default_watchlist_threshold(model);
    if (!(o.max_distance > 0 && o.max_distance <= 4)) {
      throw Error(ErrorCode::kInvalidArgument, "max_distance must be in (0, 4]");
    }
    o.stated_fmr = built_in_fmr_at(model, o.max_distance);
    if (r.enroll_per_identity() != 0) o.open_set.enroll_per_identity = r.enroll_per_identity();
    if (r.holdout() != 0) o.open_set.holdout = r.holdout();
    o.open_set.score = r.centroid() ? TemplateScore::kCentroid : TemplateScore::kNearest;
    check_open_set_options(o.open_set);  // before minutes of analysis, not after
    if (r.target_fpir() != 0) {
      if (!(r.target_fpir() > 0 && r.target_fpir() < 1) || r.gallery_size() < 1) {
        throw Error(ErrorCode::kInvalidArgument,
                    "calibration needs target_fpir in (0, 1) and gallery_size >= 1");
      }
      o.target_fpir = r.target_fpir();
      o.gallery_size = static_cast<std::size_t>(r.gallery_size());
    }
    return o;
  }

  static void add_problem(const EvalImage& image, const std::string& reason,
                          pb::PhotoProblem* out) {
    out->set_source(image.file.string());
    out->set_identity(image.identity);
    out->set_reason(reason);
  }

  static void fill(const Evaluation& e, pb::EvaluateResponse* response) {
    const Verification& v = e.verification;
    pb::VerificationResult* vr = response->mutable_verification();
    vr->set_genuine(static_cast<std::int64_t>(v.genuine));
    vr->set_impostor(static_cast<std::int64_t>(v.impostor));
    vr->set_max_distance(v.threshold);
    to_proto(v.fmr, vr->mutable_fmr());
    to_proto(v.fnmr, vr->mutable_fnmr());
    vr->set_accuracy(v.accuracy);
    for (const auto& at : v.at_fmr) to_proto(at.point, at.fnmr, vr->add_at_fmr());
    if (e.identification) {
      const Identification& id = *e.identification;
      pb::IdentificationResult* ir = response->mutable_identification();
      ir->set_mated(static_cast<std::int64_t>(id.mated));
      ir->set_non_mated(static_cast<std::int64_t>(id.non_mated));
      ir->set_rank1(id.rank1);
      ir->set_max_distance(id.threshold);
      to_proto(id.fnir, ir->mutable_fnir());
      to_proto(id.fpir, ir->mutable_fpir());
      for (const auto& at : id.at_fpir) to_proto(at.point, at.fnir, ir->add_at_fpir());
    }
    if (e.calibration) {
      const Calibration& c = *e.calibration;
      pb::CalibrationResult* cr = response->mutable_calibration();
      cr->set_target_fpir(c.target_fpir);
      cr->set_gallery_size(static_cast<std::int64_t>(c.gallery_size));
      cr->set_per_comparison_fmr(c.per_comparison_fmr);
      cr->set_max_distance(c.max_distance);
      cr->set_impostor_comparisons(static_cast<std::int64_t>(c.impostor_comparisons));
      cr->set_extrapolated(c.extrapolated);
      if (e.group_calibration) cr->set_bound_by_group(e.group_calibration->bound_by);
    }
    if (e.groups) {
      const GroupFigures& f = *e.groups;
      for (const GroupRates& g : f.groups) {
        pb::GroupResult* gr = response->add_groups();
        gr->set_group(g.group);
        to_proto(g.fmr, gr->mutable_fmr());
        to_proto(g.fnmr, gr->mutable_fnmr());
        gr->set_fmr_to_best(g.fmr_ratio.value_or(0));
        gr->set_fmr_to_stated(g.fmr_to_stated.value_or(0));
        if (e.group_calibration) {
          for (const GroupCalibration& c : e.group_calibration->groups) {
            if (c.group == g.group && c.calibration) {
              gr->set_calibrated_max_distance(c.calibration->max_distance);
            }
          }
        }
      }
      to_proto(f.across_groups_fmr, response->mutable_across_groups_fmr());
      response->set_worst_group(f.worst_group);
      response->set_best_group(f.best_group);
      response->set_fmr_differential(f.fmr_differential.value_or(0));
      response->set_stated_fmr(f.stated_fmr.value_or(0));
    }
  }

  AccessControl& access_;
  const FaceEngine& engine_;
  ServiceOptions options_;
  std::mutex running_;
};

}  // namespace

std::unique_ptr<grpc::Service> make_evaluation_service(AccessControl& access,
                                                       const FaceEngine& engine,
                                                       const ServiceOptions& options) {
  return std::make_unique<EvaluationService>(access, engine, options);
}

}  // namespace frs::service
