#pragma once
// The gallery store: watchlists, identities and their faces. It is the source of truth; the
// FAISS indexes are rebuilt from it and kept in step through its change log. Every write is
// one transaction: an enrollment of several photos lands whole or not at all.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "frs/core/embedding.h"
#include "frs/storage/database.h"

namespace frs {

struct Watchlist {
  std::int64_t id = 0;
  std::string name;  // unique; 1..128 characters
  std::string description;
  // Default match threshold of searches in this watchlist: Euclidean descriptor distance,
  // lower = stricter.
  float max_distance = 0.5f;
  std::string created_by;
  std::int64_t created_at_ms = 0;  // Unix time, milliseconds
  // How max_distance was chosen (frs.v1.ThresholdBasis as JSON; empty for a watchlist from
  // before it was recorded). The service layer reads and writes it.
  std::string threshold_basis;
  // A watchlist kept for live matching (e.g. one warrant's subjects): still-image searches
  // of it need a current authorisation too (frs-server --search-authorization live-only).
  bool live_only = false;
  // The descriptor model (descriptor_model.h) of every face in it and of its index: set at
  // creation, changed only by re-embedding the whole watchlist. Watchlists from before
  // models were recorded are dlib-resnet-v1's.
  std::string descriptor_model = "dlib-resnet-v1";
};

// The legal basis of matching against a watchlist.
inline constexpr const char* kAuthorizationBases[] = {"warrant", "court-order", "exigent",
                                                      "consent", "policy"};

// A legal basis recorded for a watchlist: live matching against it needs one in force
// (valid_from_ms <= now <= valid_until_ms). Authorisations are never edited; a new one
// is recorded instead.
struct Authorization {
  std::int64_t id = 0;
  std::int64_t watchlist_id = 0;
  std::string basis;                // one of kAuthorizationBases
  std::string reference;            // e.g. the warrant number; 1..200 characters
  std::string issued_by;            // e.g. the court or officer; may be empty
  std::int64_t valid_from_ms = 0;   // Unix ms
  std::int64_t valid_until_ms = 0;  // Unix ms, inclusive
  std::string recorded_by;          // the token that recorded it
  std::int64_t recorded_at_ms = 0;
  bool in_force_at(std::int64_t at_ms) const {
    return valid_from_ms <= at_ms && at_ms <= valid_until_ms;
  }
};

// Exigent authorisations may cover a watchlist for at most frs-server --exigent-max-hours
// in any 7 days, unless a warrant or court order is recorded meanwhile. How much time the
// exigent ones of `authorizations` (one watchlist's) cover from the start of that window
// (7 days before `now_ms`, or the latest warrant or court order recorded since) to their
// ends, overlaps counted once, in ms.
inline constexpr std::int64_t kExigentWindowMs = 7 * 24 * 3'600'000LL;
std::int64_t exigent_cover_ms(const std::vector<Authorization>& authorizations,
                              std::int64_t now_ms);

// A known non-match, learnt from a rejected alert: a live face within the suppression
// distance of `descriptor` is not that identity.
struct Suppression {
  std::int64_t id = 0;
  std::int64_t identity_id = 0;
  Embedding descriptor{};
  std::string descriptor_model = "dlib-resnet-v1";  // the model `descriptor` was made by
  std::int64_t alert_id = 0;
  // The alert's detection time: the suppression is purged with its alert (retention).
  std::int64_t alert_detected_at_ms = 0;
  std::string created_by;  // the token that rejected the alert
  std::int64_t created_at_ms = 0;
  std::string note;  // the rejection's note
};

struct Identity {
  std::int64_t id = 0;
  std::int64_t watchlist_id = 0;
  std::string external_id;  // e.g. a booking number; unique within the watchlist
  std::string display_name;
  std::string notes;
  std::int64_t created_at_ms = 0;
  std::string created_by;  // the name of the token that enrolled it
  int face_count = 0;      // filled by reads
};

struct StoredFace {
  std::int64_t id = 0;
  std::int64_t identity_id = 0;
  Embedding descriptor{};
  std::string image_sha256;             // of the photo's bytes, hex
  std::vector<std::uint8_t> thumbnail;  // small JPEG of the face, for human review
  float quality = 0;                    // FaceQuality::score, [0,1]
  std::int64_t enrolled_at_ms = 0;
  // When an operator enrolled the photo although the enrollment gate refused it: the
  // refusal and the operator's justification. Empty when the photo passed the gate.
  std::string gate_override;
  // The model `descriptor` was made by; must be its watchlist's (the store refuses others).
  std::string descriptor_model = "dlib-resnet-v1";
  // What a later model needs to describe the face again without the original photo: the
  // face region cut from the photo at the resolution it was found, with a margin of half
  // the face box on each side (JPEG, quality 95), and dlib's 68 landmarks in that region's
  // pixels (x0, y0, x1, y1, ...: 136 values). Both empty for faces enrolled before frs kept
  // them; re-embedding then falls back on the thumbnail (watchlist_reembed.h).
  std::vector<std::uint8_t> source_region;
  std::vector<float> source_landmarks;
};

// One entry of the change log the indexes replay: a face added to or removed from a
// watchlist, or the watchlist moved to another descriptor model (its index is rebuilt from
// the store). `sequence` increases by one per entry, in commit order.
struct FaceChange {
  std::uint64_t sequence = 0;
  std::int64_t watchlist_id = 0;
  std::int64_t face_id = 0;  // 0 for a reindex
  bool added = true;         // false: removed
  bool reindex = false;      // every face of the watchlist changed descriptor model
  Embedding descriptor{};    // for additions
};

// A re-embedding of a watchlist in progress (frs watchlist reembed): the target model's
// descriptors are made beside the live ones, which searches go on using until the switch.
struct ReembedProgress {
  std::string target_model;  // empty: none in progress
  std::int64_t done = 0;     // faces with a descriptor of the target model
  std::int64_t total = 0;    // faces of the watchlist now
  std::int64_t started_at_ms = 0;
  std::string started_by;
};

// The channel on which PostgreSQL announces each change committed to the gallery store, on
// any node (ChangeListener): every write of the store takes the write lock of this name.
inline constexpr const char* kGalleryChannel = "frs_gallery";

class GalleryStore {
 public:
  virtual ~GalleryStore() = default;

  // Throws Error(kAlreadyExists) when the name is taken, kInvalidArgument for a bad name or
  // a max_distance outside (0, 4].
  virtual Watchlist create_watchlist(const Watchlist& watchlist) = 0;
  virtual std::vector<Watchlist> list_watchlists() = 0;
  virtual std::optional<Watchlist> find_watchlist(const std::string& name) = 0;
  virtual std::optional<Watchlist> get_watchlist(std::int64_t id) = 0;
  // Deletes the watchlist with its identities and faces. kNotFound when absent.
  virtual void delete_watchlist(const std::string& name) = 0;
  virtual void set_max_distance(const std::string& name, float max_distance,
                                const std::string& threshold_basis) = 0;

  // Creates the identity with its faces in one transaction. kAlreadyExists when the
  // watchlist already has this external id; kNotFound for an unknown watchlist;
  // kFailedPrecondition when a face's descriptor_model is not the watchlist's (or its
  // descriptor not that model's length).
  virtual Identity enroll(const Identity& identity, const std::vector<StoredFace>& faces) = 0;
  // Adds faces to an existing identity in one transaction; returns them with their ids.
  virtual std::vector<StoredFace> add_faces(std::int64_t identity_id,
                                            const std::vector<StoredFace>& faces) = 0;
  virtual std::optional<Identity> get_identity(std::int64_t id) = 0;
  virtual std::optional<Identity> find_identity(std::int64_t watchlist_id,
                                                const std::string& external_id) = 0;
  // Identities of a watchlist ordered by id, those with id > after_id, at most `limit`.
  virtual std::vector<Identity> list_identities(std::int64_t watchlist_id, std::int64_t after_id,
                                                int limit) = 0;
  virtual std::vector<StoredFace> faces_of_identity(std::int64_t identity_id) = 0;
  // Removes the identity and its faces. kNotFound when absent.
  virtual void remove_identity(std::int64_t id) = 0;
  // Whether a photo with this hash is already enrolled for the identity (resumable bulk
  // enrollment skips it).
  virtual bool has_photo(std::int64_t identity_id, const std::string& image_sha256) = 0;

  // The identity a face belongs to (search results name identities, indexes hold faces).
  virtual std::optional<Identity> identity_of_face(std::int64_t face_id) = 0;

  // Every face of a watchlist (to rebuild its index), and the change log.
  virtual std::vector<StoredFace> faces_of_watchlist(std::int64_t watchlist_id) = 0;
  virtual std::vector<FaceChange> changes_after(std::uint64_t sequence) = 0;
  virtual std::uint64_t last_change() = 0;
  virtual std::int64_t face_count(std::int64_t watchlist_id) = 0;
  virtual std::int64_t identity_count(std::int64_t watchlist_id) = 0;
  virtual void set_live_only(const std::string& name, bool live_only) = 0;

  // Re-embedding (see ReembedProgress). begin: records the target (a re-embedding to
  // another target, or a finished one, is forgotten; one to the same target resumes:
  // what it made is kept). kFailedPrecondition when the watchlist is of `model` already.
  virtual ReembedProgress begin_reembed(std::int64_t watchlist_id, const std::string& model,
                                        const std::string& started_by) = 0;
  virtual ReembedProgress reembed_progress(std::int64_t watchlist_id) = 0;
  // Up to `limit` faces of the watchlist (ids above after_face_id, by id) with no
  // descriptor of the target yet, with their sources and thumbnails.
  virtual std::vector<StoredFace> faces_to_reembed(std::int64_t watchlist_id,
                                                   std::int64_t after_face_id, int limit) = 0;
  // Stores target-model descriptors (face id, descriptor) in one transaction. Faces removed
  // meanwhile are skipped. kFailedPrecondition when no re-embedding to `model` is in
  // progress, or a descriptor is not of its length.
  virtual void put_reembedded(std::int64_t watchlist_id, const std::string& model,
                              const std::vector<std::pair<std::int64_t, Embedding>>& made) = 0;
  // The target descriptors made so far (face id, descriptor), by face id.
  virtual std::vector<std::pair<std::int64_t, Embedding>> reembedded(std::int64_t watchlist_id,
                                                                     const std::string& model) = 0;
  // The switch, in one transaction: every face takes its target descriptor, the watchlist
  // the model, threshold and basis given, and the change log a reindex. kFailedPrecondition
  // (nothing changed) when a face has no target descriptor yet (enrolled meanwhile: make
  // it and retry) or no re-embedding to `model` is in progress.
  virtual Watchlist finish_reembed(std::int64_t watchlist_id, const std::string& model,
                                   float max_distance, const std::string& threshold_basis) = 0;

  // kNotFound for an unknown watchlist, kInvalidArgument for a bad basis, text or period.
  virtual Authorization add_authorization(const Authorization& authorization) = 0;
  // A watchlist's authorisations (all watchlists' when absent), by id.
  virtual std::vector<Authorization> list_authorizations(
      std::optional<std::int64_t> watchlist_id) = 0;

  // kNotFound for an unknown identity. Returned with their ids.
  virtual std::vector<Suppression> add_suppressions(const std::vector<Suppression>& add) = 0;
  // An identity's suppressions (every identity's when absent), by id.
  virtual std::vector<Suppression> list_suppressions(std::optional<std::int64_t> identity_id) = 0;
  // The removed suppression; nullopt when there was none with this id.
  virtual std::optional<Suppression> remove_suppression(std::int64_t id) = 0;
  // Removes suppressions whose alert was detected before `before_ms`; returns how many.
  virtual std::int64_t purge_suppressions(std::int64_t before_ms) = 0;
};

// The embedded default, one SQLite file (WAL, synchronous=FULL, foreign keys on), or the
// cluster's PostgreSQL database; each with a schema version and forward migrations.
// Thread-safe (one connection behind a mutex).
std::unique_ptr<GalleryStore> open_gallery_store(const StoreLocation& where);

// The SQLite schema version this build writes; a store from a newer build is refused.
inline constexpr int kStoreSchemaVersion = 7;

}  // namespace frs
