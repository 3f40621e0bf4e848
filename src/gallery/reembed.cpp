#include "frs/gallery/reembed.h"

#include <set>

#include "frs/core/error.h"
#include "frs/vision/image.h"

namespace frs {
namespace {

Redescribed embedded(const FaceEngine& engine, Face face, const DescriptorModel& model,
                     FaceSource source, const Cancellation& cancel) {
  std::vector<Face> one = {std::move(face)};
  engine.embed(one, model, cancel);
  return {one[0].embedding, source, ""};
}

}  // namespace

Redescribed describe_again(const FaceEngine& engine, const StoredFace& face,
                           const DescriptorModel& model, const Cancellation& cancel) {
  std::string region_problem;
  if (!face.source_region.empty() &&
      face.source_landmarks.size() == 2 * static_cast<std::size_t>(kLandmarkCount)) {
    try {
      const cv::Mat bgr = decode_image(face.source_region, engine.options().limits);
      std::array<cv::Point2f, kLandmarkCount> landmarks;
      for (std::size_t i = 0; i < landmarks.size(); ++i) {
        landmarks[i] = {face.source_landmarks[2 * i], face.source_landmarks[2 * i + 1]};
      }
      return embedded(engine, engine.align_to(bgr, landmarks), model, FaceSource::kRegion, cancel);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kCancelled) throw;
      region_problem = std::string("its kept region is unreadable (") + e.what() + "); ";
    }
  }
  if (!face.thumbnail.empty()) {
    try {
      const cv::Mat bgr = decode_image(face.thumbnail, engine.options().limits);
      // The thumbnail is dlib's aligned chip (padding 0.25), so the face's landmarks span
      // its middle two thirds; the aligner's second pass refines the box from there.
      Detection middle;
      middle.box =
          cv::Rect2f(static_cast<float>(bgr.cols) / 6, static_cast<float>(bgr.rows) / 6,
                     static_cast<float>(bgr.cols) * 2 / 3, static_cast<float>(bgr.rows) * 2 / 3);
      return embedded(engine, engine.align(bgr, middle), model, FaceSource::kThumbnail, cancel);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kCancelled) throw;
      region_problem += std::string("its thumbnail is unreadable (") + e.what() + ")";
      return {std::nullopt, FaceSource::kThumbnail,
              region_problem + ": enroll it again from the original photo"};
    }
  }
  return {std::nullopt, FaceSource::kRegion,
          region_problem +
              "no face region or thumbnail was kept: enroll it again from the original photo"};
}

ReembedStatus reembed_watchlist(Gallery& gallery, const FaceEngine& engine,
                                std::int64_t watchlist_id, const DescriptorModel& model,
                                const std::string& started_by, const ReembedOptions& options,
                                const Cancellation& cancel) {
  if (options.batch < 1 || options.batch > 1000) {
    throw Error(ErrorCode::kInvalidArgument, "a re-embedding batch must be 1..1000 faces");
  }
  if (!options.threshold) {
    throw Error(ErrorCode::kInvalidArgument, "a re-embedding needs the threshold to switch to");
  }
  if (!engine.describes(model.id)) {
    throw Error(ErrorCode::kFailedPrecondition,
                "this engine does not describe faces with " + std::string(model.id));
  }
  GalleryStore& store = gallery.store();
  ReembedStatus status;
  const ReembedProgress begun =
      store.begin_reembed(watchlist_id, std::string(model.id), started_by);
  status.done = begun.done;
  status.total = begun.total;
  std::set<std::int64_t> unusable;
  // Each round describes what has none yet; faces enrolled during a round (with the live
  // model) are left for the next, and the switch refuses while any is left.
  constexpr int kRounds = 5;
  for (int round = 0; round < kRounds; ++round) {
    std::int64_t after = 0;
    for (;;) {
      cancel.check();
      const std::vector<StoredFace> batch =
          store.faces_to_reembed(watchlist_id, after, options.batch);
      if (batch.empty()) break;
      after = batch.back().id;
      std::vector<std::pair<std::int64_t, Embedding>> made;
      for (const StoredFace& face : batch) {
        if (unusable.count(face.id)) continue;
        Redescribed again = describe_again(engine, face, model, cancel);
        if (!again.descriptor) {
          unusable.insert(face.id);
          status.need_original.emplace_back(face.id, again.problem);
          continue;
        }
        ++(again.source == FaceSource::kRegion ? status.from_region : status.from_thumbnail);
        made.emplace_back(face.id, std::move(*again.descriptor));
      }
      store.put_reembedded(watchlist_id, std::string(model.id), made);
      const ReembedProgress now = store.reembed_progress(watchlist_id);
      status.done = now.done;
      status.total = now.total;
      if (options.progress) options.progress(status);
    }
    if (!status.need_original.empty()) return status;
    if (options.before_switch) options.before_switch();
    const auto [max_distance, basis] = options.threshold();
    try {
      status.switched =
          gallery.finish_reembed(watchlist_id, std::string(model.id), max_distance, basis);
      status.done = status.total = store.face_count(watchlist_id);
      return status;
    } catch (const Error& e) {
      // Faces enrolled since the last batch: describe them and try again. Anything else
      // (another re-embedding to another model took over) is the caller's to hear.
      if (e.code() != ErrorCode::kFailedPrecondition ||
          store.reembed_progress(watchlist_id).target_model != model.id) {
        throw;
      }
    }
  }
  throw Error(ErrorCode::kUnavailable,
              "faces kept being enrolled during the re-embedding; what was made is kept: run it "
              "again");
}

}  // namespace frs
