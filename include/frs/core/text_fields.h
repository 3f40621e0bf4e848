#pragma once
// The one table of text fields frs stores or echoes, with their caps in characters (code
// points, not bytes). Checked where each field enters (store, camera, alert review,
// evaluation, request metadata), always through check_text. docs/operations.md "Limits"
// lists the same numbers.

#include "frs/core/text.h"

namespace frs::fields {

// Names: one line of printable text (they reach logs, metrics labels and terminals).
inline constexpr TextRule kWatchlistName{.max_chars = 128, .required = true};
inline constexpr TextRule kExternalId{.max_chars = 128, .required = true};
inline constexpr TextRule kDisplayName{.max_chars = 200};
inline constexpr TextRule kCameraName{.max_chars = 64, .required = true};
inline constexpr TextRule kCameraUrl{.max_chars = 2048, .required = true};
inline constexpr TextRule kPhotoSource{.max_chars = 1024};  // a file name, for the reply
inline constexpr TextRule kEvalIdentity{.max_chars = 128, .required = true};
inline constexpr TextRule kGroupName{.max_chars = 128, .required = true};  // of a calibration
inline constexpr TextRule kReviewer{.max_chars = 128};
inline constexpr TextRule kAuthorizationReference{.max_chars = 200, .required = true};
inline constexpr TextRule kAuthorizationIssuer{.max_chars = 200};
// Free text: several lines allowed.
inline constexpr TextRule kDescription{.max_chars = 2000, .single_line = false};
inline constexpr TextRule kNotes{.max_chars = 4000, .single_line = false};
inline constexpr TextRule kOverrideReason{.max_chars = 1000, .single_line = false};
inline constexpr TextRule kReviewNote{.max_chars = 2000, .single_line = false};
inline constexpr TextRule kSuppressionNote{.max_chars = 2000, .single_line = false};
inline constexpr TextRule kThresholdBasisData{.max_chars = 2000, .single_line = false};

// Lists of names in one request (watchlists of a search or camera, cameras of a filter).
inline constexpr std::size_t kMaxNamesPerList = 100;

}  // namespace frs::fields
