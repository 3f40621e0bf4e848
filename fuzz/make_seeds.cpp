// Writes the fuzzers' seed corpora: real images from the shared test data, valid requests
// of every RPC the request fuzzer serves, a config file, and eval CSVs.
//
//   fuzz_seeds OUT_DIR TESTDATA_DIR

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "frs/v1/audit.grpc.pb.h"
#include "frs/v1/eval.grpc.pb.h"
#include "frs/v1/gallery.grpc.pb.h"
#include "frs/v1/live.grpc.pb.h"
#include "frs/v1/tokens.grpc.pb.h"
#include "harnesses.h"

namespace fs = std::filesystem;
namespace pb = ::frs::v1;

namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

// The request fuzzer's input: the method's number, then the message.
void request(const fs::path& dir, int method, const google::protobuf::Message& m, int variant = 0) {
  write(dir / ("m" + std::to_string(method) + "-" + std::to_string(variant)),
        std::string(1, static_cast<char>(method)) + m.SerializeAsString());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: fuzz_seeds OUT_DIR TESTDATA_DIR\n";
    return 2;
  }
  const fs::path out = argv[1], testdata = argv[2];
  for (const char* d : {"image", "requests", "config", "eval_csv"}) fs::create_directories(out / d);

  // Images: the smallest faces of the shared data (fast to run), a few formats.
  std::vector<fs::path> photos;
  for (const auto& e : fs::directory_iterator(testdata / "faces")) {
    if (e.is_regular_file() && e.file_size() < 200'000) photos.push_back(e.path());
  }
  std::sort(photos.begin(), photos.end(), [](const fs::path& a, const fs::path& b) {
    return fs::file_size(a) < fs::file_size(b);
  });
  if (photos.size() > 6) photos.resize(6);
  if (photos.empty()) {
    std::cerr << "fuzz_seeds: no photos under 200 kB in " << (testdata / "faces") << "\n";
    return 1;
  }
  for (const fs::path& p : photos)
    fs::copy_file(p, out / "image" / p.filename(), fs::copy_options::overwrite_existing);
  const std::string face = read(photos.front());
  const auto hostile = frs::fuzz::hostile_images();
  for (std::size_t i = 0; i < hostile.size(); ++i) {
    write(out / "image" / ("hostile-" + std::to_string(i)), hostile[i]);
  }

  const fs::path r = out / "requests";
  pb::CreateWatchlistRequest create;
  create.set_name("suspects");
  create.set_description("seed");
  request(r, 0, create);
  request(r, 1, pb::ListWatchlistsRequest());
  pb::GetWatchlistRequest get;
  get.set_name("wanted");
  request(r, 2, get);
  pb::DeleteWatchlistRequest del;
  del.set_name("suspects");
  request(r, 3, del);
  pb::UpdateWatchlistThresholdRequest update;
  update.set_name("wanted");
  update.set_max_distance(0.45f);
  request(r, 4, update);
  pb::EnrollRequest enroll;
  enroll.set_watchlist("wanted");
  enroll.set_external_id("B-1");
  enroll.set_display_name("seed");
  enroll.add_photos()->set_image(face);
  request(r, 5, enroll);
  pb::AddFacesRequest add;
  add.set_identity_id(1);
  add.add_photos()->set_image(face);
  request(r, 6, add);
  pb::ListIdentitiesRequest identities;
  identities.set_watchlist("wanted");
  identities.set_page_token("1");
  request(r, 7, identities);
  pb::GetIdentityRequest identity;
  identity.set_id(1);
  request(r, 8, identity);
  pb::RemoveIdentityRequest remove;
  remove.set_id(2);
  request(r, 9, remove);
  pb::SearchRequest search;
  search.set_image(face);
  search.set_top_k(3);
  request(r, 10, search);
  pb::SearchRequest by_descriptor;
  auto* d = by_descriptor.mutable_descriptors()->add_descriptors();
  for (int i = 0; i < 128; ++i) d->add_values(0.01f * static_cast<float>(i % 7));
  request(r, 10, by_descriptor, 1);
  pb::CompareRequest compare;
  compare.set_image_a(face);
  compare.set_image_b(face);
  request(r, 11, compare);
  pb::EvaluateRequest evaluate;
  for (int i = 0; i < 4; ++i) {
    auto* p = evaluate.add_photos();
    p->set_image(face);
    p->set_identity(i < 2 ? "a" : "b");
  }
  request(r, 12, evaluate);
  pb::AddCameraRequest camera;
  camera.mutable_spec()->set_name("door");
  camera.mutable_spec()->set_url("rtsp://user:pass@127.0.0.1:9/live?token=x");
  camera.mutable_spec()->add_watchlists("wanted");
  camera.mutable_spec()->set_analyse_fps(2);
  request(r, 13, camera);
  request(r, 14, pb::ListCamerasRequest());
  pb::RemoveCameraRequest remove_camera;
  remove_camera.set_name("door");
  request(r, 15, remove_camera);
  pb::ListAlertsRequest alerts;
  alerts.set_review("pending");
  alerts.mutable_filter()->add_cameras("door");
  request(r, 16, alerts);
  pb::GetAlertRequest alert;
  alert.set_id(1);
  request(r, 17, alert);
  pb::ReviewAlertRequest review;
  review.set_id(1);
  review.set_note("seed");
  request(r, 18, review);
  pb::CreateTokenRequest token;
  token.set_name("console-1");
  token.set_role("dispatcher");
  request(r, 19, token);
  request(r, 20, pb::ListTokensRequest());
  pb::RevokeTokenRequest revoke;
  revoke.set_name("console-1");
  request(r, 21, revoke);
  pb::ListAuditRecordsRequest audit;
  audit.set_method("Search");
  audit.set_page_size(10);
  request(r, 22, audit);
  pb::VerifyAuditLogRequest verify;
  verify.set_expected_seq(1);
  verify.set_expected_hash(std::string(64, 'a'));
  request(r, 23, verify);
  pb::AuthorizeWatchlistRequest authorize;
  authorize.set_watchlist("wanted");
  authorize.set_basis("exigent");
  authorize.set_reference("E-1");
  authorize.set_valid_until_ms(4'000'000'000'000);
  request(r, 24, authorize);
  pb::LiftSuppressionRequest lift;
  lift.set_id(1);
  lift.set_reason("seed reason");
  request(r, 25, lift);
  pb::ReportRequest report;
  report.set_from_ms(0);
  report.set_to_ms(4'000'000'000'000);
  request(r, 26, report);
  pb::SetWatchlistLiveOnlyRequest live_only;
  live_only.set_name("wanted");
  live_only.set_live_only(true);
  request(r, 27, live_only);

  write(out / "config" / "full.yaml",
        "listen: 127.0.0.1:50051\nthreads: 2\nindex-type: HNSW32\nalert-votes: 2\n"
        "camera-hosts: 127.0.0.0/8,cam.example\ncameras:\n  - name: door\n"
        "    url: rtsp://127.0.0.1:9/door\n    watchlists: [wanted]\n    fps: 5\n"
        "    rtsp-transport: udp\n    region: [0, 200, 1920, 880]\n");
  write(out / "config" / "small.yaml", "default-max-distance: 0.42\n");
  write(out / "config" / "oversight.yaml",
        "confirmations: 3\nmax-distance-ceiling: 0.5\nsearch-authorization: always\n"
        "alert-retention-days: 7\naudit-retention-days: 3650\n");
  write(out / "eval_csv" / "pairs",
        std::string(1, '\0') + "file_a,file_b,same\na.jpg,b.jpg,1\nc.jpg,d.jpg,no\n");
  write(out / "eval_csv" / "groups", std::string(1, '\1') + "identity,group\nalice,g1\nbob,g2\n");
  write(out / "eval_csv" / "images",
        std::string(1, '\2') + "identity,file\nalice,a1.jpg\nalice,a2.jpg\nbob,b.jpg\n");
  write(out / "eval_csv" / "normaliser",
        std::string(1, '\4') +
            R"({"format":"frs-score-normaliser-1","descriptor_model":"dlib-resnet-v1",)"
            R"("false_match_rate":0.01,"global_threshold":0.5,"clusters":[)"
            R"({"centroid":[0.1,0.2],"members":3,"impostor_pairs":9,"threshold":0.4,"offset":0.1,)"
            R"("supported":true},{"centroid":[0.3,0.1],"members":3,"impostor_pairs":9,)"
            R"("threshold":0.6,"offset":-0.1,"supported":true}]})");
  write(out / "eval_csv" / "labels",
        std::string(1, '\3') + "file,age,race\nimages/a.jpg,30,White\nimages/b.jpg,40,\n");
  std::cout << "fuzz seeds in " << out << "\n";
  return 0;
}
