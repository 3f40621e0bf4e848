#include <algorithm>
#include <map>

#include "frs/core/clock.h"
#include "frs/core/digest.h"
#include "frs/core/error.h"
#include "frs/core/text.h"
#include "frs/core/text_fields.h"
#include "frs/service/services.h"
#include "frs/v1/gallery.grpc.pb.h"
#include "proto_convert.h"

namespace frs::service {
namespace {

namespace pb = ::frs::v1;

// As many as the faces one image may give (FaceEngineOptions::max_faces).
constexpr int kMaxDescriptorsPerSearch = 256;

std::span<const std::uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

class SearchService final : public pb::Search::Service {
 public:
  SearchService(AccessControl& access, Gallery& gallery, const FaceEngine& engine,
                const ServiceOptions& options)
      : access_(access), gallery_(gallery), engine_(engine), options_(options) {}

  grpc::Status Search(grpc::ServerContext* context, const pb::SearchRequest* request,
                      pb::SearchResponse* response) override {
    return serve(access_, context, [&](Call& call) {
      const Cancellation cancel = cancellation_of(call);
      const int top_k = request->top_k() == 0 ? 5 : request->top_k();
      if (top_k < 1 || top_k > 100) {
        throw Error(ErrorCode::kInvalidArgument,
                    "top_k must be in 1..100, got " + std::to_string(request->top_k()));
      }
      std::optional<float> max_distance;
      if (request->max_distance() != 0) max_distance = request->max_distance();
      std::vector<std::string> watchlists(request->watchlists().begin(),
                                          request->watchlists().end());
      for (const std::string& w : watchlists) call.target("watchlist_names", w);
      const bool named_by_caller = !watchlists.empty();
      Gallery::check_search_names(watchlists);
      watchlists = authorized_targets(watchlists, call, response);
      // Each model's watchlists are searched with the query described by that model.
      std::map<std::string, std::vector<std::string>> by_model =
          gallery_.watchlists_by_model(watchlists);
      for (const auto& [model, names] : by_model) {
        if (max_distance) gallery_.check_max_distance(*max_distance, model, "max_distance");
      }
      std::vector<Face> faces;
      std::vector<std::vector<Candidate>> results;
      if (request->has_descriptors()) {
        const pb::DescriptorList& list = request->descriptors();
        if (list.descriptors_size() > kMaxDescriptorsPerSearch) {
          throw Error(ErrorCode::kInvalidArgument, "at most " +
                                                       std::to_string(kMaxDescriptorsPerSearch) +
                                                       " descriptors per search, got " +
                                                       std::to_string(list.descriptors_size()));
        }
        const DescriptorModel& model = list.descriptor_model().empty()
                                           ? engine_.descriptor_model()
                                           : descriptor_model(list.descriptor_model());
        call.details()["descriptor_model"] = model.id;
        std::vector<Embedding> queries;
        for (const pb::Descriptor& d : list.descriptors()) {
          queries.emplace_back(d.values().begin(), d.values().end());
          const std::string what = "descriptor " + std::to_string(queries.size());
          require_descriptor_of(model, queries.back(), what);
          require_finite(queries.back(), what);  // also when no watchlist is of its model
        }
        call.details()["descriptors"] = queries.size();
        for (const auto& [other, names] : by_model) {
          if (other == model.id) continue;
          if (named_by_caller) {
            throw Error(ErrorCode::kFailedPrecondition,
                        "watchlist " + quote_for_message(names.front()) + " holds " + other +
                            " descriptors, these are " + std::string(model.id) +
                            "'s: descriptors of two models cannot be compared (search with "
                            "an image, or embed with frs embed --descriptor " +
                            other + ")");
          }
          for (const std::string& name : names) response->add_other_model_watchlists(name);
        }
        const auto same = by_model.find(std::string(model.id));
        results = same == by_model.end()
                      ? std::vector<std::vector<Candidate>>(queries.size())
                      : search_all(queries, model.id, same->second, top_k, max_distance);
      } else if (request->query_case() == pb::SearchRequest::kImage) {
        call.details()["image_sha256"].push_back(sha256_hex(request->image()));
        const auto slot = image_slot(options_, cancel);
        faces = engine_.analyze(decode_image(bytes_of(request->image()), engine_.options().limits),
                                false, cancel);
        results.resize(faces.size());
        for (const auto& [model, names] : by_model) {
          std::vector<Face> described = faces;
          engine_.embed(described, descriptor_model(model), cancel);
          std::vector<Embedding> queries;
          for (const Face& f : described) queries.push_back(*f.embedding);
          const auto part = search_all(queries, model, names, top_k, max_distance);
          for (std::size_t q = 0; q < part.size(); ++q) {
            results[q].insert(results[q].end(), part[q].begin(), part[q].end());
          }
        }
        for (auto& list : results) rank_candidates(list, top_k);
      } else {
        throw Error(ErrorCode::kInvalidArgument, "give an image or descriptors to search with");
      }
      for (std::size_t i = 0; i < results.size(); ++i) {
        pb::FaceResult* face = response->add_faces();
        if (i < faces.size()) {
          to_proto(faces[i].box, face->mutable_box());
          face->set_detection_score(faces[i].score);
          face->set_quality(faces[i].quality.score);
        }
        for (const Candidate& c : results[i]) {
          pb::Candidate* out = face->add_candidates();
          out->set_identity_id(c.identity_id);
          out->set_external_id(c.external_id);
          out->set_display_name(c.display_name);
          out->set_watchlist(c.watchlist);
          out->set_face_id(c.face_id);
          out->set_distance(c.distance);
          out->set_descriptor_model(c.descriptor_model);
          out->set_max_distance(c.threshold);
          call.target("identities", c.identity_id);
        }
      }
      call.details()["faces"] = results.size();
    });
  }

  grpc::Status Compare(grpc::ServerContext* context, const pb::CompareRequest* request,
                       pb::CompareResponse* response) override {
    return serve(access_, context, [&](Call& call) {
      call.details()["image_sha256"] = {sha256_hex(request->image_a()),
                                        sha256_hex(request->image_b())};
      const Cancellation cancel = cancellation_of(call);
      auto largest = [&](const std::string& bytes, const char* which) {
        const auto slot = image_slot(options_, cancel);
        auto faces =
            engine_.analyze(decode_image(bytes_of(bytes), engine_.options().limits), true, cancel);
        if (faces.empty()) {
          throw Error(ErrorCode::kInvalidArgument, std::string("no face found in image_") + which);
        }
        return faces.front();
      };
      const Face a = largest(request->image_a(), "a");
      const Face b = largest(request->image_b(), "b");
      response->set_distance(distance(*a.embedding, *b.embedding));
      const DescriptorModel& model = engine_.descriptor_model();
      response->set_descriptor_model(std::string(model.id));
      response->set_verify_max_distance(model.calibration.verify_max_distance);
      to_proto(a.box, response->mutable_box_a());
      to_proto(b.box, response->mutable_box_b());
    });
  }

 private:
  // The watchlists to search: those named (each needing an authorisation in force, when
  // the deployment asks for one, or FAILED_PRECONDITION), or when none is named every
  // watchlist that may be searched (the others listed in skipped_watchlists).
  std::vector<std::string> authorized_targets(const std::vector<std::string>& named, Call& call,
                                              pb::SearchResponse* response) {
    using Rule = ServiceOptions::SearchAuthorization;
    if (options_.search_authorization == Rule::kNever) return named;
    const std::int64_t now = now_unix_ms();
    const auto needs = [&](const Watchlist& w) {
      return (options_.search_authorization == Rule::kAlways || w.live_only) &&
             !gallery_.authorization_in_force(w.id, now);
    };
    if (!named.empty()) {
      for (const std::string& name : named) {
        const auto w = gallery_.store().find_watchlist(name);
        if (!w || !needs(*w)) continue;  // an unknown name is search()'s NOT_FOUND
        throw Error(ErrorCode::kFailedPrecondition,
                    "watchlist " + quote_for_message(name) +
                        (w->live_only ? " is live-only and" : "") +
                        " has no authorisation in force; searching it needs one (frs "
                        "watchlist authorize)");
      }
      return named;
    }
    std::vector<std::string> targets;
    for (const Watchlist& w : gallery_.store().list_watchlists()) {
      if (needs(w)) {
        response->add_skipped_watchlists(w.name);
        call.details()["skipped_watchlists"].push_back(w.name);
      } else {
        targets.push_back(w.name);
      }
    }
    if (response->skipped_watchlists_size() == 0) return {};  // all of them, as asked
    // An empty list would mean every watchlist: with none searchable the search is refused.
    if (targets.empty()) {
      throw Error(ErrorCode::kFailedPrecondition,
                  "no watchlist may be searched: every one needs an authorisation in force "
                  "(frs watchlist authorize)");
    }
    return targets;
  }

  // Gallery::search of one model's watchlists, any number of them (it takes at most
  // fields::kMaxNamesPerList at once): in chunks, merged best first.
  std::vector<std::vector<Candidate>> search_all(std::span<const Embedding> queries,
                                                 std::string_view model,
                                                 const std::vector<std::string>& watchlists,
                                                 int top_k, std::optional<float> max_distance) {
    std::vector<std::vector<Candidate>> merged(queries.size());
    for (std::size_t from = 0; from < watchlists.size(); from += fields::kMaxNamesPerList) {
      const std::vector<std::string> chunk(
          watchlists.begin() + static_cast<std::ptrdiff_t>(from),
          watchlists.begin() + static_cast<std::ptrdiff_t>(
                                   std::min(watchlists.size(), from + fields::kMaxNamesPerList)));
      const auto part = gallery_.search(queries, model, chunk, top_k, max_distance);
      for (std::size_t q = 0; q < part.size(); ++q) {
        merged[q].insert(merged[q].end(), part[q].begin(), part[q].end());
      }
    }
    for (auto& list : merged) rank_candidates(list, top_k);
    return merged;
  }

  AccessControl& access_;
  Gallery& gallery_;
  const FaceEngine& engine_;
  ServiceOptions options_;
};

}  // namespace

std::unique_ptr<grpc::Service> make_search_service(AccessControl& access, Gallery& gallery,
                                                   const FaceEngine& engine,
                                                   const ServiceOptions& options) {
  return std::make_unique<SearchService>(access, gallery, engine, options);
}

}  // namespace frs::service
