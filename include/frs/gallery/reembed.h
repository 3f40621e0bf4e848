#pragma once
// Moving a watchlist to another descriptor model without its original photos
// (frs watchlist reembed): each stored face is described again from what enrollment kept
// (StoredFace::source_region and its landmarks), or from its thumbnail for faces enrolled
// before frs kept a region. The new descriptors are made beside the live ones (searches go
// on with the old model), stored as they are made (a crash loses at most one batch), and
// the watchlist switches in one transaction when every face has one.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "frs/core/cancel.h"
#include "frs/gallery/gallery.h"
#include "frs/vision/face_engine.h"

namespace frs {

// Where a face's new descriptor came from.
enum class FaceSource {
  kRegion,     // the face region cut from the original photo at enrollment (JPEG q95)
  kThumbnail,  // the 112-pixel review thumbnail (JPEG q85), landmarks found again: lower
               // quality (docs/accuracy.md, "Re-embedding a watchlist")
};

struct Redescribed {
  std::optional<Embedding> descriptor;  // none: `problem` says why
  FaceSource source = FaceSource::kRegion;
  std::string problem;
};

// Describes a stored face again with `model` (which `engine` must describe).
Redescribed describe_again(const FaceEngine& engine, const StoredFace& face,
                           const DescriptorModel& model, const Cancellation& cancel = {});

struct ReembedStatus {
  std::int64_t done = 0;                             // faces with a descriptor of the target model
  std::int64_t total = 0;                            // faces of the watchlist
  std::int64_t from_region = 0, from_thumbnail = 0;  // made by this run
  // Faces that could be described neither way (face id, why): the watchlist cannot switch
  // until they are removed or enrolled again from the original photo.
  std::vector<std::pair<std::int64_t, std::string>> need_original;
  std::optional<Watchlist> switched;  // set when the switch happened
};

struct ReembedOptions {
  int batch = 16;  // faces described, then stored, at a time (1..1000)
  // The threshold and basis (JSON) the watchlist takes at the switch, asked then.
  std::function<std::pair<float, std::string>()> threshold;
  // Called after every stored batch.
  std::function<void(const ReembedStatus&)> progress;
  // Called before each attempt to switch (what else must be described with the new model
  // first: the suppressions learnt from rejected alerts).
  std::function<void()> before_switch;
};

// Runs, or resumes, the re-embedding of watchlist `watchlist_id` to `model` and switches it
// when every face has a descriptor of it. Faces enrolled meanwhile are described too.
// Stops with Error(kCancelled) between batches when `cancel` fires (what was made is kept).
// kFailedPrecondition when the watchlist is of `model` already or the engine cannot
// describe with it.
ReembedStatus reembed_watchlist(Gallery& gallery, const FaceEngine& engine,
                                std::int64_t watchlist_id, const DescriptorModel& model,
                                const std::string& started_by, const ReembedOptions& options,
                                const Cancellation& cancel = {});

}  // namespace frs
