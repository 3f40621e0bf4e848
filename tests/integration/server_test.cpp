// A real frs-server on a loopback port with a temporary data directory, driven through the
// gRPC API and the frs CLI.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <thread>

#include "child_processes.h"
#include "frs/auth/tokens.h"
#include "frs/client/channel.h"
#include "frs/core/clock.h"
#include "frs/core/time_text.h"
#include "frs/v1/eval.grpc.pb.h"
#include "frs/v1/gallery.grpc.pb.h"
#include "frs/v1/live.grpc.pb.h"
#include "frs/video/camera_stream.h"
#include "model_fixture.h"
#include "server_process.h"

namespace frs::testing {
namespace {

namespace pb = ::frs::v1;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { server_ = std::make_unique<Server>(root_ / "data"); }
  void TearDown() override {
    server_.reset();
    if (HasFailure()) {
      std::ifstream log(root_ / "server.log");
      std::cerr << "--- frs-server log ---\n" << log.rdbuf() << "\n";
    }
  }

  // `model`: its descriptor model; empty = the server's default (dlib-resnet-v1).
  grpc::Status create_watchlist(const std::string& name, const std::string& model = "") {
    grpc::ClientContext c;
    pb::CreateWatchlistRequest r;
    r.set_name(name);
    r.set_descriptor_model(model);
    pb::Watchlist w;
    return server_->gallery().CreateWatchlist(&c, r, &w);
  }
  pb::Watchlist get_watchlist(const std::string& name) {
    grpc::ClientContext c;
    pb::GetWatchlistRequest r;
    r.set_name(name);
    pb::Watchlist w;
    const auto status = server_->gallery().GetWatchlist(&c, r, &w);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return w;
  }
  // Rank-1 answer (external id, or "" for no candidate) for the largest face of a photo.
  std::string top_match(const std::filesystem::path& photo) {
    grpc::ClientContext c;
    pb::SearchRequest r;
    r.set_image(bytes_of(photo));
    r.set_top_k(1);
    pb::SearchResponse response;
    EXPECT_TRUE(server_->search().Search(&c, r, &response).ok());
    if (response.faces_size() == 0 || response.faces(0).candidates_size() == 0) return "";
    return response.faces(0).candidates(0).external_id();
  }

  ScopedTempDir root_{"server"};
  std::unique_ptr<Server> server_;
};

std::pair<int, std::string> run_server_expecting_exit(const std::string& args) {
  return run_command(std::string(FRS_SERVER) + " " + args);
}

float default_max_distance_of(Server& server) {
  grpc::ClientContext c;
  pb::CreateWatchlistRequest r;
  r.set_name("defaults");
  pb::Watchlist w;
  EXPECT_TRUE(server.gallery().CreateWatchlist(&c, r, &w).ok());
  return w.max_distance();
}

TEST(ServerConfig, FileKeysAreTheLongFlagsAndFlagsOverrideThem) {
  ScopedTempDir dir("server-config");
  const auto file = dir.path() / "frs.yaml";
  std::ofstream(file)
      << "default-max-distance: 0.42\nindex-type: IVF4,Flat\nivf-nprobe: 4\n"
         "alert-votes: 2\ncameras:\n  - name: yard\n    url: rtsp://127.0.0.1:9/yard\n"
         "    watchlists: [wanted]\n    fps: 2\n";
  {
    Server server(dir.path() / "a", {"--config", file.string()});
    EXPECT_FLOAT_EQ(default_max_distance_of(server), 0.42f);
    // The file's camera runs (and fails, with the reason, for want of the file).
    const auto [code, out] =
        run_command(std::string(FRS_CLI) + " camera list --json --server " + server.address());
    ASSERT_EQ(code, 0) << out;
    const auto camera = nlohmann::json::parse(out.substr(0, out.find('\n')));
    EXPECT_EQ(camera["name"], "yard");
    EXPECT_EQ(camera["watchlists"], nlohmann::json::array({"wanted"}));
    EXPECT_DOUBLE_EQ(camera["analyse_fps"].get<double>(), 2.0);
  }
  {
    Server server(dir.path() / "b", {"--config", file.string(), "--default-max-distance", "0.3"});
    EXPECT_FLOAT_EQ(default_max_distance_of(server), 0.3f);
  }
}

TEST(ServerConfig, BadFilesAndValuesStopTheServerWithTheReason) {
  ScopedTempDir dir("server-config-bad");
  const auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir.path() / name) << text;
    return (dir.path() / name).string();
  };
  const auto port = std::to_string(free_port());
  auto [code, out] = run_server_expecting_exit("--config " + write("a.yaml", "nprobe: 4\n"));
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("unknown key 'nprobe'"), std::string::npos) << out;
  std::tie(code, out) = run_server_expecting_exit(
      "--config " + write("cam.yaml", "cameras:\n  - name: x\n    urll: rtsp://h/s\n"));
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("unknown camera key 'urll'"), std::string::npos) << out;
  std::tie(code, out) = run_server_expecting_exit("--config " + write("b.yaml", "[1, 2]\n"));
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("must be a map"), std::string::npos) << out;
  std::tie(code, out) = run_server_expecting_exit("--listen 127.0.0.1:" + port + " --config " +
                                                  write("c.yaml", "default-max-distance: 9\n"));
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("default-max-distance"), std::string::npos) << out;
  std::tie(code, out) =
      run_server_expecting_exit("--listen 127.0.0.1:" + port + " --data-dir " +
                                (dir.path() / "d").string() + " --index-type NoSuchIndex");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("NoSuchIndex"), std::string::npos) << out;
  // A removed option is refused with what replaced it, from a file as from a flag, rather
  // than read with another meaning.
  std::tie(code, out) =
      run_server_expecting_exit("--config " + write("e.yaml", "suppression-distance: 0.3\n"));
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("--suppression-margin"), std::string::npos) << out;
  std::tie(code, out) = run_server_expecting_exit("--suppression-margin 1.5");
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("suppression-margin"), std::string::npos) << out;
}

TEST_F(ServerTest, CliCreatesShowsAndUpdatesWatchlists) {
  const std::string cli = std::string(FRS_CLI) + " watchlist ";
  const std::string server = " --server " + server_->address();
  auto [code, out] =
      run_command(cli + "create wanted --max-distance 0.45 --description 'case 7' --json" + server);
  ASSERT_EQ(code, 0) << out;
  std::tie(code, out) = run_command(cli + "update wanted --max-distance 0.4 --json" + server);
  ASSERT_EQ(code, 0) << out;
  EXPECT_NEAR(nlohmann::json::parse(out)["max_distance"].get<double>(), 0.4, 1e-6);
  std::tie(code, out) = run_command(cli + "show wanted --json" + server);
  ASSERT_EQ(code, 0) << out;
  const auto shown = nlohmann::json::parse(out);
  EXPECT_EQ(shown["description"], "case 7");
  EXPECT_NEAR(shown["max_distance"].get<double>(), 0.4, 1e-6);
  EXPECT_EQ(shown["faces"], 0);
  EXPECT_EQ(shown["indexed_faces"], 0);
  std::tie(code, out) = run_command(cli + "show nobody" + server);
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("nobody"), std::string::npos) << out;
  std::tie(code, out) = run_command(cli + "update wanted --max-distance 7" + server);
  EXPECT_NE(code, 0);
  EXPECT_NEAR(get_watchlist("wanted").max_distance(), 0.4, 1e-6);  // unchanged
  EXPECT_EQ(shown["threshold_basis"]["method"], "manual");
}

// frs eval --calibrate --apply-to sets a watchlist's threshold and records how; show explains
// it, and a later manual change replaces the record.
TEST_F(ServerTest, ACalibratedThresholdIsRecordedAndExplained) {
  const std::string cli = std::string(FRS_CLI) + " ";
  const std::string server = " --server " + server_->address();
  // Created without a threshold: calibrated with the built-in impostor model for the
  // expected size (default 1000), stricter for a larger watchlist.
  auto [code, out] = run_command(cli + "watchlist create wanted --json" + server);
  ASSERT_EQ(code, 0) << out;
  const auto created = nlohmann::json::parse(out);
  EXPECT_EQ(created["threshold_basis"]["method"], "calibrated");
  EXPECT_EQ(created["threshold_basis"]["gallery_size"], 1000);
  EXPECT_NE(created["threshold_basis"]["data"].get<std::string>().find("built-in"),
            std::string::npos);
  // The default model's (dlib-resnet-v1): 0.7842 - 4.26 x 0.0676.
  EXPECT_EQ(created["descriptor_model"], "dlib-resnet-v1");
  EXPECT_NEAR(created["max_distance"].get<double>(), 0.496, 0.002);
  std::tie(code, out) =
      run_command(cli + "watchlist create big --expected-identities 300000 --json" + server);
  ASSERT_EQ(code, 0) << out;
  EXPECT_LT(nlohmann::json::parse(out)["max_distance"].get<double>(),
            created["max_distance"].get<double>() - 0.05);
  // Calibrated on lfw10 in two groups of five people: the threshold holds for both.
  const ScopedTempDir dir("calibration");
  {
    std::ofstream groups(dir / "groups.csv");
    groups << "identity,group\n";
    int i = 0;
    for (const auto& person : std::filesystem::directory_iterator(testdata_dir() / "lfw10")) {
      groups << person.path().filename().string() << "," << (i++ < 5 ? "g1" : "g2") << "\n";
    }
  }
  std::tie(code, out) =
      run_command(cli + "eval " + (testdata_dir() / "lfw10").string() + " --groups " +
                  (dir / "groups.csv").string() +
                  " --calibrate --target-fpir 0.01 --gallery-size 1000 --apply-to wanted "
                  "--no-progress --json" +
                  server);
  ASSERT_EQ(code, 0) << out;
  const auto calibration = nlohmann::json::parse(out.substr(out.find('{')))["calibration"];
  const double calibrated = calibration["max_distance"];
  ASSERT_EQ(calibration["groups"].size(), 2u);
  for (const auto& g : calibration["groups"]) {
    EXPECT_LE(calibrated, g["calibration"]["max_distance"].get<double>()) << g.dump();
  }
  EXPECT_LE(calibrated, calibration["pooled"]["max_distance"].get<double>());
  std::tie(code, out) = run_command(cli + "watchlist show wanted --json" + server);
  ASSERT_EQ(code, 0) << out;
  const auto shown = nlohmann::json::parse(out);
  EXPECT_NEAR(shown["max_distance"].get<double>(), calibrated, 1e-4);
  const auto& basis = shown["threshold_basis"];
  EXPECT_EQ(basis["method"], "calibrated");
  EXPECT_DOUBLE_EQ(basis["target_fpir"].get<double>(), 0.01);
  EXPECT_EQ(basis["gallery_size"], 1000);
  // The comparisons of the calibration that set it: one group's 1000, or all 4500 pooled.
  EXPECT_EQ(basis["impostor_comparisons"], calibration["bound_by"] == "" ? 4500 : 1000);
  EXPECT_NE(basis["data"].get<std::string>().find("frs eval on"), std::string::npos);
  EXPECT_NE(basis["data"].get<std::string>().find("100 images of 10 identities"),
            std::string::npos);
  EXPECT_EQ(basis["groups"], nlohmann::json::array({"g1", "g2"}));
  EXPECT_EQ(basis["bound_by_group"], calibration["bound_by"]);
  std::tie(code, out) = run_command(cli + "watchlist show wanted" + server);
  EXPECT_NE(out.find("calibrated on"), std::string::npos) << out;
  EXPECT_NE(out.find("expected false-alert rate 0.01 for 1000 identities"), std::string::npos)
      << out;
  EXPECT_NE(out.find("held for each of 2 groups (g1, g2)"), std::string::npos) << out;
  // The built-in calibration was not checked per group, and says so.
  std::tie(code, out) = run_command(cli + "watchlist show big" + server);
  EXPECT_NE(out.find("not checked per group"), std::string::npos) << out;

  // A calibration record that does not hold together is refused, the watchlist unchanged.
  {
    grpc::ClientContext c;
    pb::UpdateWatchlistThresholdRequest r;
    r.set_name("wanted");
    r.set_max_distance(0.3f);
    r.mutable_basis()->set_method("calibrated");  // no rate, no size
    pb::Watchlist w;
    EXPECT_EQ(server_->gallery().UpdateWatchlistThreshold(&c, r, &w).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  for (const std::string& group : {std::string("g3"), std::string(129, 'g'), std::string("a\nb")}) {
    grpc::ClientContext c;
    pb::UpdateWatchlistThresholdRequest r;
    r.set_name("wanted");
    r.set_max_distance(0.3f);
    pb::ThresholdBasis& b = *r.mutable_basis();
    b.set_method("calibrated");
    b.set_target_fpir(0.01);
    b.set_gallery_size(10);
    b.set_per_comparison_fmr(0.001);
    b.add_groups("g1");
    if (group == "g3") {
      b.set_bound_by_group(group);  // not one of its groups
    } else {
      b.add_groups(group);
    }
    pb::Watchlist w;
    EXPECT_EQ(server_->gallery().UpdateWatchlistThreshold(&c, r, &w).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT)
        << group.size();
  }
  {
    grpc::ClientContext c;
    pb::UpdateWatchlistThresholdRequest r;
    r.set_name("wanted");
    r.set_max_distance(0.3f);
    r.mutable_basis()->set_method("manual");
    r.mutable_basis()->set_data(std::string(2001, 'x'));  // over the cap
    pb::Watchlist w;
    EXPECT_EQ(server_->gallery().UpdateWatchlistThreshold(&c, r, &w).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  EXPECT_NEAR(get_watchlist("wanted").max_distance(), calibrated, 1e-4);
  std::tie(code, out) = run_command(cli + "watchlist update wanted --max-distance 0.45" + server);
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(get_watchlist("wanted").threshold_basis().method(), "manual");
}

TEST_F(ServerTest, Lfw10EnrollThreeSearchTheRestThenRestart) {
  ASSERT_TRUE(create_watchlist("lfw").ok());
  const auto images = read_identity_tree(testdata_dir() / "lfw10");
  std::map<std::string, std::vector<std::filesystem::path>> by_person;
  for (const auto& i : images) by_person[i.identity].push_back(i.file);
  // Two people are never enrolled: their photos must match no one.
  const std::set<std::string> never = {"Tony_Blair", "Vladimir_Putin"};
  std::vector<std::pair<std::string, std::filesystem::path>> probes;
  for (const auto& [person, files] : by_person) {
    if (never.count(person)) {
      for (const auto& f : files) probes.emplace_back("", f);
      continue;
    }
    grpc::ClientContext c;
    pb::EnrollRequest r;
    r.set_watchlist("lfw");
    r.set_external_id(person);
    r.set_display_name(person);
    for (int i = 0; i < 3; ++i) {
      auto* p = r.add_photos();
      p->set_image(bytes_of(files[static_cast<std::size_t>(i)]));
      p->set_source(files[static_cast<std::size_t>(i)].string());
    }
    pb::EnrollResponse response;
    const auto status = server_->gallery().Enroll(&c, r, &response);
    ASSERT_TRUE(status.ok()) << person << ": " << status.error_message();
    for (std::size_t i = 3; i < files.size(); ++i) probes.emplace_back(person, files[i]);
  }
  EXPECT_EQ(get_watchlist("lfw").face_count(), 24);
  EXPECT_EQ(get_watchlist("lfw").indexed_face_count(), 24);

  int mated = 0, correct = 0, impostors = 0, false_matches = 0;
  std::vector<std::string> answers;
  for (const auto& [person, file] : probes) {
    const std::string got = top_match(file);
    answers.push_back(got);
    if (person.empty()) {
      ++impostors;
      false_matches += got.empty() ? 0 : 1;
    } else {
      ++mated;
      correct += got == person ? 1 : 0;
    }
  }
  std::printf(
      "lfw10 via frs-server (3 photos enrolled, max distance 0.5): rank-1 %d/%d, "
      "never-enrolled matched %d/%d\n",
      correct, mated, false_matches, impostors);
  EXPECT_GE(correct, FRS_LFW10_MIN_RANK1);
  EXPECT_LE(false_matches, FRS_LFW10_MAX_FALSE);

  // Restart: the snapshot is loaded and the same searches give the same answers.
  server_->stop(SIGTERM);
  server_->start();
  EXPECT_EQ(get_watchlist("lfw").indexed_face_count(), 24);
  for (std::size_t i = 0; i < probes.size(); ++i) {
    EXPECT_EQ(top_match(probes[i].second), answers[i]) << probes[i].second;
  }
}

// Watchlists of two descriptor models on one server: each is enrolled, calibrated, capped
// and searched with its own model; descriptors of one are never compared with the other's.
TEST_F(ServerTest, WatchlistsOfTwoModelsAreEachSearchedWithTheirOwn) {
  ASSERT_TRUE(create_watchlist("dlib", "dlib-resnet-v1").ok());
  {
    grpc::ClientContext c;
    pb::CreateWatchlistRequest r;
    r.set_name("fused");
    r.set_descriptor_model("fused-v1");
    pb::Watchlist w;
    ASSERT_TRUE(server_->gallery().CreateWatchlist(&c, r, &w).ok());
    EXPECT_EQ(w.descriptor_model(), "fused-v1");
    // fused-v1's own built-in calibration for 1,000 identities at FPIR 0.01 (0.683; dlib's
    // 0.496 would miss most of its mates).
    EXPECT_NEAR(w.max_distance(), 0.683, 0.002);
    EXPECT_NE(w.threshold_basis().data().find("fused-v1"), std::string::npos);
    EXPECT_EQ(get_watchlist("dlib").descriptor_model(), "dlib-resnet-v1");
  }
  {
    grpc::ClientContext c;
    pb::CreateWatchlistRequest r;
    r.set_name("unknown-model");
    r.set_descriptor_model("fused-v9");
    pb::Watchlist w;
    const auto status = server_->gallery().CreateWatchlist(&c, r, &w);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(status.error_message().find("fused-v1"), std::string::npos)
        << status.error_message();  // names the known ones
  }
  std::map<std::string, std::vector<std::filesystem::path>> by_person;
  for (const auto& i : read_identity_tree(testdata_dir() / "lfw10")) {
    by_person[i.identity].push_back(i.file);
  }
  std::vector<std::pair<std::string, std::filesystem::path>> probes;
  for (const auto& [person, files] : by_person) {
    if (probes.size() == 4) break;
    for (const std::string watchlist : {"dlib", "fused"}) {
      grpc::ClientContext c;
      pb::EnrollRequest r;
      r.set_watchlist(watchlist);
      r.set_external_id(person);
      r.add_photos()->set_image(bytes_of(files[0]));
      pb::EnrollResponse response;
      const auto status = server_->gallery().Enroll(&c, r, &response);
      ASSERT_TRUE(status.ok()) << person << ": " << status.error_message();
    }
    probes.emplace_back(person, files[1]);
  }
  EXPECT_EQ(get_watchlist("fused").indexed_face_count(), 4);
  // Each watchlist at its model's calibrated threshold: a mate may pass one and not the
  // other (Arnold Schwarzenegger's second photo is 0.515 from his first by dlib's model,
  // over its 0.496; 0.566 by fused-v1's, under its 0.683), never match someone else.
  std::map<std::string, int> matched;  // by model
  for (const auto& [person, photo] : probes) {
    grpc::ClientContext c;
    pb::SearchRequest r;
    r.set_image(bytes_of(photo));
    r.set_top_k(2);
    pb::SearchResponse response;
    ASSERT_TRUE(server_->search().Search(&c, r, &response).ok());
    ASSERT_GE(response.faces_size(), 1);
    for (const auto& candidate : response.faces(0).candidates()) {
      EXPECT_EQ(candidate.external_id(), person) << photo;
      EXPECT_LE(candidate.distance(), candidate.max_distance());
      EXPECT_EQ(candidate.descriptor_model(),
                candidate.watchlist() == "fused" ? "fused-v1" : "dlib-resnet-v1");
      ++matched[candidate.descriptor_model()];
    }
  }
  EXPECT_GE(matched["fused-v1"], 3);
  EXPECT_GE(matched["dlib-resnet-v1"], 2);
  // A descriptor search says its model; only that model's watchlists are searched.
  auto [code, out] = run_command(std::string(FRS_CLI) + " embed --json --descriptor fused-v1 " +
                                 probes[0].second.string());
  ASSERT_EQ(code, 0) << out;
  const auto embedded = nlohmann::json::parse(out);
  const std::vector<float> values = embedded["faces"][0]["embedding"];
  ASSERT_EQ(values.size(), 640u);
  auto descriptor_search = [&](const std::string& model, std::vector<std::string> watchlists,
                               pb::SearchResponse* response) {
    grpc::ClientContext c;
    pb::SearchRequest r;
    r.mutable_descriptors()->set_descriptor_model(model);
    auto* d = r.mutable_descriptors()->add_descriptors();
    for (float v : values) d->add_values(v);
    for (const auto& w : watchlists) r.add_watchlists(w);
    return server_->search().Search(&c, r, response);
  };
  pb::SearchResponse response;
  ASSERT_TRUE(descriptor_search("fused-v1", {}, &response).ok());
  ASSERT_EQ(response.faces(0).candidates_size(), 1);
  EXPECT_EQ(response.faces(0).candidates(0).external_id(), probes[0].first);
  EXPECT_EQ(response.faces(0).candidates(0).watchlist(), "fused");
  ASSERT_EQ(response.other_model_watchlists_size(), 1);
  EXPECT_EQ(response.other_model_watchlists(0), "dlib");
  response.Clear();
  auto status = descriptor_search("fused-v1", {"dlib"}, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("cannot be compared"), std::string::npos)
      << status.error_message();
  // The same values called dlib's: another model's length.
  status = descriptor_search("dlib-resnet-v1", {}, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // A looser threshold than fused-v1's ceiling (0.733) is refused for its watchlists only.
  {
    grpc::ClientContext c;
    pb::UpdateWatchlistThresholdRequest r;
    r.set_name("fused");
    r.set_max_distance(0.75f);
    pb::Watchlist w;
    EXPECT_EQ(server_->gallery().UpdateWatchlistThreshold(&c, r, &w).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  std::tie(code, out) =
      run_command(std::string(FRS_CLI) + " watchlist show fused --server " + server_->address());
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("descriptor    fused-v1"), std::string::npos) << out;
  // After a restart each index is of its model again, and the answers are the same.
  server_->stop(SIGTERM);
  server_->start();
  EXPECT_EQ(get_watchlist("fused").indexed_face_count(), 4);
  response.Clear();
  ASSERT_TRUE(descriptor_search("fused-v1", {"fused"}, &response).ok());
  EXPECT_EQ(response.faces(0).candidates(0).external_id(), probes[0].first);
}

TEST_F(ServerTest, CropsAndKnnEnrollAndSearch) {
  // crops/: 5 people x 20 tight 150x150 crops; enroll the first 3 of each, search the rest.
  ASSERT_TRUE(create_watchlist("crops").ok());
  std::map<std::string, std::vector<std::filesystem::path>> crops;
  for (const auto& entry : std::filesystem::directory_iterator(testdata_dir() / "crops")) {
    const std::string name = entry.path().filename().string();
    crops[name.substr(0, name.find('_'))].push_back(entry.path());
  }
  int enrolled_photos = 0, searched = 0, correct = 0;
  for (auto& [person, files] : crops) {
    std::sort(files.begin(), files.end());
    std::size_t used = 0;
    // Enroll up to 3 photos, one call each: a crop with no usable face is skipped.
    std::int64_t identity_id = 0;
    for (std::size_t i = 0; i < files.size() && used < 3; ++i) {
      grpc::ClientContext c;
      pb::EnrollResponse response;
      grpc::Status status;
      if (identity_id == 0) {
        pb::EnrollRequest r;
        r.set_watchlist("crops");
        r.set_external_id(person);
        r.add_photos()->set_image(bytes_of(files[i]));
        status = server_->gallery().Enroll(&c, r, &response);
      } else {
        pb::AddFacesRequest r;
        r.set_identity_id(identity_id);
        r.add_photos()->set_image(bytes_of(files[i]));
        status = server_->gallery().AddFaces(&c, r, &response);
      }
      files[i].clear();  // not searched: tried for enrollment
      if (!status.ok()) continue;
      identity_id = response.identity().id();
      ++used;
      ++enrolled_photos;
    }
    for (const auto& f : files) {
      if (f.empty()) continue;
      ++searched;
      correct += top_match(f) == person ? 1 : 0;
    }
  }
  std::printf("crops via frs-server: %d photos enrolled, rank-1 %d/%d\n", enrolled_photos, correct,
              searched);
  EXPECT_EQ(enrolled_photos, 15);
  EXPECT_GE(correct, FRS_CROPS_MIN_RANK1);

  // faces/knn: enroll train/, search the test photos named after who is in them.
  ASSERT_TRUE(create_watchlist("knn").ok());
  std::map<std::string, std::vector<std::filesystem::path>> train;
  for (const auto& i : read_identity_tree(testdata_dir() / "faces" / "knn" / "train")) {
    train[i.identity].push_back(i.file);
  }
  for (const auto& [person, files] : train) {
    grpc::ClientContext c;
    pb::EnrollRequest r;
    r.set_watchlist("knn");
    r.set_external_id(person);
    for (const auto& f : files) r.add_photos()->set_image(bytes_of(f));
    pb::EnrollResponse response;
    const auto status = server_->gallery().Enroll(&c, r, &response);
    EXPECT_TRUE(status.ok()) << person << ": " << status.error_message();
  }
  const auto test = testdata_dir() / "faces" / "knn" / "test";
  EXPECT_EQ(top_match(test / "obama1.jpg"), "obama");
  EXPECT_EQ(top_match(test / "alex_lacamoire1.jpg"), "alex_lacamoire");
  EXPECT_EQ(top_match(test / "johnsnow_test1.jpg"), "kit_harington");
}

// A photo the quality gate refuses (a profile) is enrolled only with --force and a real
// reason; the refusal and the reason are reported and logged.
TEST_F(ServerTest, AGateRefusalIsOverriddenOnlyWithAReasonAndIsLogged) {
  ASSERT_TRUE(create_watchlist("booking").ok());
  const std::string enroll = std::string(FRS_CLI) + " enroll --watchlist booking --name Howard " +
                             (testdata_dir() / "crops" / "howard_5.png").string() + " --server " +
                             server_->address();
  auto [code, out] = run_command(enroll);
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("strongly turned"), std::string::npos) << out;
  EXPECT_NE(out.find("--force"), std::string::npos) << out;
  std::tie(code, out) = run_command(enroll + " --force 'ok'");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("at least 10 characters"), std::string::npos) << out;
  EXPECT_EQ(get_watchlist("booking").face_count(), 0);

  std::tie(code, out) = run_command(enroll + " --json --force 'the only photo in the file'");
  ASSERT_EQ(code, 0) << out;
  const auto enrolled = nlohmann::json::parse(out);
  ASSERT_EQ(enrolled["overridden"].size(), 1u) << out;
  EXPECT_NE(enrolled["overridden"][0]["refusal"].get<std::string>().find("strongly turned"),
            std::string::npos);
  EXPECT_EQ(get_watchlist("booking").face_count(), 1);
  const std::string log = bytes_of(root_ / "server.log");
  const auto line = log.find("event=gate_override");
  ASSERT_NE(line, std::string::npos) << log;
  const std::string logged = log.substr(line, log.find('\n', line) - line);
  EXPECT_NE(logged.find("identity=" + std::to_string(enrolled["identity_id"].get<std::int64_t>())),
            std::string::npos)
      << logged;
  EXPECT_NE(logged.find("overridden: the only photo in the file"), std::string::npos) << logged;
}

// The Evaluate RPC gives the figures `frs eval` gives on the same photos, lists a photo it
// cannot read, and refuses what it cannot evaluate.
TEST_F(ServerTest, EvaluateGivesTheFiguresOfFrsEval) {
  auto evaluation = pb::Evaluation::NewStub(server_->channel());
  pb::EvaluateRequest request;
  // Photos in two groups of five people, as frs eval --groups is given them below.
  const auto photos = read_identity_tree(testdata_dir() / "lfw10");
  std::set<std::string> people;
  for (const auto& p : photos) people.insert(p.identity);
  std::map<std::string, std::string> group_of;
  for (const std::string& person : people) group_of[person] = group_of.size() < 5 ? "g1" : "g2";
  const ScopedTempDir dir("evaluate");
  {
    std::ofstream groups(dir / "groups.csv");
    for (const auto& [person, group] : group_of) groups << person << "," << group << "\n";
  }
  for (const auto& p : photos) {
    pb::LabelledPhoto* photo = request.add_photos();
    photo->set_image(bytes_of(p.file));
    photo->set_identity(p.identity);
    photo->set_source(p.file.filename().string());
    photo->set_group(group_of.at(p.identity));
  }
  pb::LabelledPhoto* unreadable = request.add_photos();
  unreadable->set_image("not an image");
  unreadable->set_identity("Nobody");
  unreadable->set_source("broken.jpg");
  request.set_target_fpir(0.01);
  request.set_gallery_size(1000);
  pb::EvaluateResponse response;
  {
    grpc::ClientContext c;
    const auto status = evaluation->Evaluate(&c, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  ASSERT_EQ(response.no_descriptor_size(), 1);
  EXPECT_EQ(response.no_descriptor(0).source(), "broken.jpg");
  EXPECT_EQ(response.photos(), 101);

  const auto [code, out] =
      run_command(std::string(FRS_CLI) + " eval " + (testdata_dir() / "lfw10").string() +
                  " --json --no-progress --calibrate --gallery-size 1000 --groups " +
                  (dir / "groups.csv").string());
  ASSERT_EQ(code, 0) << out;
  const auto cli = nlohmann::json::parse(out);
  const auto& v = response.verification();
  EXPECT_EQ(v.genuine(), cli["verification"]["genuine"]);
  EXPECT_EQ(v.impostor(), cli["verification"]["impostor"]);
  EXPECT_EQ(v.fnmr().errors(), cli["verification"]["fnmr"]["errors"]);
  EXPECT_EQ(v.fmr().errors(), cli["verification"]["fmr"]["errors"]);
  ASSERT_EQ(v.at_fmr_size(), 3);
  EXPECT_EQ(v.at_fmr(0).support(), "enough");
  const auto& id = response.identification();
  EXPECT_EQ(id.mated(), cli["identification"]["mated"]);
  EXPECT_EQ(id.non_mated(), cli["identification"]["non_mated"]);
  EXPECT_EQ(id.fnir().errors(), cli["identification"]["fnir"]["errors"]);
  EXPECT_NEAR(response.calibration().max_distance(),
              cli["calibration"]["max_distance"].get<double>(), 1e-4);
  EXPECT_EQ(response.calibration().bound_by_group(), cli["calibration"]["bound_by"]);
  ASSERT_EQ(response.groups_size(), 2);
  for (int i = 0; i < 2; ++i) {
    const pb::GroupResult& g = response.groups(i);
    const auto& expected = cli["groups"][i];
    EXPECT_EQ(g.group(), expected["group"]);
    EXPECT_EQ(g.fmr().errors(), expected["fmr"]["errors"]);
    EXPECT_EQ(g.fmr().trials(), 1000);
    EXPECT_EQ(g.fnmr().errors(), expected["fnmr"]["errors"]);
    EXPECT_NEAR(g.calibrated_max_distance(),
                cli["calibration"]["groups"][i]["calibration"]["max_distance"].get<double>(), 1e-4);
  }
  EXPECT_EQ(response.across_groups_fmr().trials(), 2500);
  EXPECT_EQ(response.worst_group(), cli["group_summary"]["worst_group"]);
  EXPECT_NEAR(response.stated_fmr(), cli["group_summary"]["stated_fmr"].get<double>(), 1e-12);
  // The accountability report shows the differential of this, the last evaluation.
  const auto day = [](std::int64_t ms) { return format_utc_time(ms).substr(0, 10); };
  const auto [report_code, report] =
      run_command(std::string(FRS_CLI) + " audit report --from " + day(now_unix_ms() - 86'400'000) +
                  " --to " + day(now_unix_ms() + 86'400'000) + " --server " + server_->address());
  ASSERT_EQ(report_code, 0) << report;
  EXPECT_NE(report.find("per group at max distance"), std::string::npos) << report;
  EXPECT_NE(report.find("worst " + response.worst_group()), std::string::npos) << report;

  pb::EvaluateRequest too_few;
  for (int i = 0; i < 3; ++i) *too_few.add_photos() = request.photos(i);
  grpc::ClientContext c;
  EXPECT_EQ(evaluation->Evaluate(&c, too_few, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  pb::EvaluateRequest unlabelled = request;
  unlabelled.mutable_photos(5)->clear_identity();
  grpc::ClientContext c2;
  const auto status = evaluation->Evaluate(&c2, unlabelled, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("no identity"), std::string::npos);
}

TEST_F(ServerTest, BadInputsReturnTheirCodesAndChangeNothing) {
  ASSERT_TRUE(create_watchlist("w").ok());
  EXPECT_EQ(create_watchlist("w").error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(create_watchlist("").error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  auto enroll = [&](const std::string& watchlist, const std::string& id,
                    const std::vector<std::string>& images) {
    grpc::ClientContext c;
    pb::EnrollRequest r;
    r.set_watchlist(watchlist);
    r.set_external_id(id);
    for (const auto& bytes : images) r.add_photos()->set_image(bytes);
    pb::EnrollResponse response;
    return server_->gallery().Enroll(&c, r, &response);
  };
  const std::string obama = bytes_of(face_path("obama.jpg"));
  ASSERT_TRUE(enroll("w", "obama", {obama}).ok());
  // One bad photo among good ones: nothing of the request is stored.
  auto status = enroll("w", "biden", {bytes_of(face_path("biden.jpg")), "not an image"});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("not a JPEG"), std::string::npos) << status.error_message();
  // Every photo's outcome travels in the status details.
  pb::ErrorStatus details;
  ASSERT_TRUE(details.ParseFromString(status.error_details()));
  ASSERT_EQ(details.details_size(), 1);
  pb::EnrollResponse outcomes;
  ASSERT_TRUE(details.details(0).UnpackTo(&outcomes));
  ASSERT_EQ(outcomes.photos_size(), 2);
  EXPECT_TRUE(outcomes.photos(0).accepted());
  EXPECT_FALSE(outcomes.photos(1).accepted());
  EXPECT_NE(outcomes.photos(1).reason().find("not a JPEG"), std::string::npos);
  // The CLI lists every refused photo.
  const auto bad = root_ / "bad.jpg";
  const auto bad2 = root_ / "bad2.jpg";
  std::ofstream(bad) << "not an image";
  std::ofstream(bad2) << "not an image either";  // different bytes: the same twice is one photo
  const auto [code, out] = run_command(
      std::string(FRS_CLI) + " enroll --server " + server_->address() + " --watchlist w --name x " +
      face_path("biden.jpg").string() + " " + bad.string() + " " + bad2.string());
  EXPECT_EQ(code, 1);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 3) << out;  // the error and two photos
  EXPECT_NE(out.find(bad.string() + ": "), std::string::npos) << out;
  // A JPEG cut short after its header used to be decoded with grey fill and enrolled.
  status = enroll("w", "cut", {obama.substr(0, obama.size() * 35 / 100)});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("truncated"), std::string::npos) << status.error_message();
  EXPECT_EQ(enroll("w", "obama", {obama}).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(enroll("nope", "x", {obama}).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(enroll("w", "", {obama}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(enroll("w", "empty", {}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(
      enroll("w", "dogs", {bytes_of(testdata_dir() / "groups" / "two_people.jpg")}).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);  // two faces of similar size
  EXPECT_EQ(get_watchlist("w").face_count(), 1);
  EXPECT_EQ(get_watchlist("w").indexed_face_count(), 1);

  grpc::ClientContext c1;
  pb::SearchRequest r1;
  r1.mutable_descriptors()->add_descriptors()->add_values(0.5f);
  pb::SearchResponse s1;
  EXPECT_EQ(server_->search().Search(&c1, r1, &s1).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // A descriptor of another model (faceplugin-v1's 512 values) given as the default
  // model's (dlib-resnet-v1, no model named) cannot be compared here.
  grpc::ClientContext other_model_context;
  pb::SearchRequest other_model;
  auto* wide = other_model.mutable_descriptors()->add_descriptors();
  for (int i = 0; i < 512; ++i) wide->add_values(i == 0 ? 1.0f : 0.0f);
  const auto other_status = server_->search().Search(&other_model_context, other_model, &s1);
  EXPECT_EQ(other_status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(other_status.error_message().find("dlib-resnet-v1"), std::string::npos)
      << other_status.error_message();
  // A NaN among a descriptor's values matched everyone under HNSW; refused with its place.
  grpc::ClientContext nan_context;
  pb::SearchRequest nan_request;
  auto* nan_descriptor = nan_request.mutable_descriptors()->add_descriptors();
  for (int i = 0; i < 128; ++i) nan_descriptor->add_values(i == 9 ? std::nanf("") : 0.1f);
  const auto nan_status = server_->search().Search(&nan_context, nan_request, &s1);
  EXPECT_EQ(nan_status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(nan_status.error_message().find("position 9"), std::string::npos)
      << nan_status.error_message();
  grpc::ClientContext c2;
  pb::SearchRequest r2;
  r2.set_image(obama);
  r2.set_top_k(1000);
  EXPECT_EQ(server_->search().Search(&c2, r2, &s1).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext c3;
  pb::SearchRequest r3;
  r3.set_image(obama);
  r3.add_watchlists("nope");
  EXPECT_EQ(server_->search().Search(&c3, r3, &s1).error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext c4;
  pb::SearchRequest r4;
  r4.set_image(std::string(70 << 20, 'x'));  // over the 64 MiB message limit
  EXPECT_EQ(server_->search().Search(&c4, r4, &s1).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST_F(ServerTest, CompareAndHealth) {
  grpc::ClientContext c;
  pb::CompareRequest r;
  r.set_image_a(bytes_of(face_path("obama.jpg")));
  r.set_image_b(bytes_of(face_path("obama2.jpg")));
  pb::CompareResponse response;
  ASSERT_TRUE(server_->search().Compare(&c, r, &response).ok());
  // With the server's model (the default, dlib-resnet-v1), and on its scale.
  EXPECT_EQ(response.descriptor_model(), "dlib-resnet-v1");
  EXPECT_NEAR(response.distance(), 0.378, 0.02);
  EXPECT_FLOAT_EQ(response.verify_max_distance(), 0.6f);
  EXPECT_LT(response.distance(), response.verify_max_distance());
  EXPECT_GT(response.box_a().width(), 200);

  grpc::ClientContext c2;
  r.set_image_b("garbage");
  EXPECT_EQ(server_->search().Compare(&c2, r, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // The standard health service answers SERVING for the whole server ("").
  grpc::ClientContext c3;
  grpc::ByteBuffer reply;
  const auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
  grpc::GenericStub generic(channel);
  // grpc.health.v1.HealthCheckRequest{service: ""} encodes as an empty message.
  const grpc::Slice empty;
  grpc::ByteBuffer request(&empty, 1);
  grpc::CompletionQueue cq;
  auto call = generic.PrepareUnaryCall(&c3, "/grpc.health.v1.Health/Check", request, &cq);
  call->StartCall();
  grpc::Status status;
  call->Finish(&reply, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  ASSERT_TRUE(cq.Next(&tag, &ok));
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  reply.Dump(&slices);
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  // HealthCheckResponse{status: SERVING (1)}: field 1, varint 1.
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));
}

// 256 faces in one JPEG, the most analysed per image: the heaviest one Search can be (about
// a second of CPU on the fastest machine seen, several on slower ones).
std::string crowd_jpeg() {
  const cv::Mat face = cv::imread(face_path("obama.jpg").string());
  cv::Mat small;
  cv::resize(face, small, cv::Size(120, 120 * face.rows / face.cols));
  cv::Mat grid(small.rows * 16, small.cols * 16, CV_8UC3);
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) {
      small.copyTo(grid(cv::Rect(x * small.cols, y * small.rows, small.cols, small.rows)));
    }
  }
  std::vector<std::uint8_t> jpeg;
  cv::imencode(".jpg", grid, jpeg);
  return std::string(jpeg.begin(), jpeg.end());
}

grpc::Status search_image(Server& server, const std::string& image,
                          std::chrono::milliseconds deadline = std::chrono::seconds(60)) {
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + deadline);
  pb::SearchRequest r;
  r.set_image(image);
  pb::SearchResponse response;
  return server.search().Search(&c, r, &response);
}

// Images whose shape or decoded size would cost minutes of CPU or gigabytes are refused from
// their header; a Search whose deadline passed stops its work; images analysed at once are
// bounded across calls (the excess waits briefly, then RESOURCE_EXHAUSTED). Every figure is
// compared with the whole crowd search measured in the same run, never with an absolute time:
// machines differ by 2x per core, and a loaded one stretches every wall time.
TEST(ServerLimits, CpuAndMemoryBombsAreBoundedAndAbandonedWorkStops) {
  using Clock = std::chrono::steady_clock;
  ScopedTempDir dir("server-limits");
  Server server(dir.path() / "data", {"--max-images-at-once", "1", "--image-wait-ms", "100"});
  const std::string crowd = crowd_jpeg();
  const double full_cpu_start = server.cpu_seconds();
  const auto full_started = Clock::now();
  ASSERT_TRUE(search_image(server, crowd).ok());
  const auto full_wall = Clock::now() - full_started;
  const double full_cpu = server.cpu_seconds() - full_cpu_start;
  // Below 20 clock ticks the ratios below would be ticks, not work.
  ASSERT_GT(full_cpu, 0.2) << "the crowd search is too small to measure on this machine";

  // 1x1,000,000 grey pixels in 2 KB: 89 s of detector CPU before; refused from the header,
  // at a sliver of the crowd's cost.
  std::vector<std::uint8_t> line;
  cv::imencode(".png", cv::Mat(1, 1000000, CV_8UC1, cv::Scalar(128)), line);
  double cpu_before = server.cpu_seconds();
  auto status = search_image(server, std::string(line.begin(), line.end()));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  const double line_cpu = server.cpu_seconds() - cpu_before;
  EXPECT_LT(line_cpu, 0.1 * full_cpu) << "the refused line cost " << line_cpu << " s CPU";
  // A 7000x7000 16-bit RGBA PNG header: 735 MB to decode.
  std::vector<std::uint8_t> deep;
  cv::imencode(".png", cv::Mat(8, 8, CV_16UC4, cv::Scalar::all(999)), deep);
  for (int i = 0; i < 4; ++i)
    deep[16 + i] = deep[20 + i] = static_cast<std::uint8_t>(7000 >> (24 - 8 * i));
  const double rss_before = server.rss_mib();
  status = search_image(server, std::string(deep.begin(), deep.end()));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_LT(server.rss_mib() - rss_before, 50.0);

  // Abandoned at a quarter of the whole: three quarters of its work would follow if the
  // server finished it; it stops within a detector view or a batch of descriptors instead.
  const auto deadline =
      std::max(std::chrono::milliseconds(50),
               std::chrono::duration_cast<std::chrono::milliseconds>(full_wall / 4));
  cpu_before = server.cpu_seconds();
  status = search_image(server, crowd, deadline);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  const double cpu_at_deadline = server.cpu_seconds();
  // Long enough for the rest of the work to run, had it gone on.
  std::this_thread::sleep_for(2 * full_wall + std::chrono::seconds(1));
  const double cpu_until_deadline = cpu_at_deadline - cpu_before;
  const double cpu_after_deadline = server.cpu_seconds() - cpu_at_deadline;
  std::printf(
      "crowd search: %.2f s CPU, %.2f s whole; abandoned at %lld ms: %.2f s CPU before the "
      "deadline, %.2f s after\n",
      full_cpu, std::chrono::duration<double>(full_wall).count(),
      static_cast<long long>(deadline.count()), cpu_until_deadline, cpu_after_deadline);
  EXPECT_GT(cpu_until_deadline, 0.05 * full_cpu) << "the abandoned search never got to work";
  EXPECT_LT(cpu_after_deadline, 0.25 * full_cpu);

  // One image at a time: a second heavy Search, sent once the first is at work, waits
  // 100 ms (a fraction of the first's remaining work), then is refused.
  grpc::Status first;
  cpu_before = server.cpu_seconds();
  std::thread busy([&] { first = search_image(server, crowd); });
  EXPECT_TRUE(server_is_at_work(server, cpu_before, 0.05 * full_cpu));
  status = search_image(server, crowd);
  busy.join();
  EXPECT_TRUE(first.ok()) << first.error_message();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_NE(status.error_message().find("server busy"), std::string::npos);
}

// Text fields had no cap (two 40 MB descriptions broke `frs watchlist list` for everyone),
// limits counted bytes (33 emoji were "over 128 characters"), errors echoed input whole.
TEST_F(ServerTest, TextFieldsAreCappedInCharactersAndNeverEchoedWhole) {
  auto create = [&](const std::string& name, const std::string& description) {
    grpc::ClientContext c;
    pb::CreateWatchlistRequest r;
    r.set_name(name);
    r.set_description(description);
    pb::Watchlist w;
    return server_->gallery().CreateWatchlist(&c, r, &w);
  };
  std::string emoji;
  for (int i = 0; i < 33; ++i) emoji += "\xF0\x9F\x98\x80";
  EXPECT_TRUE(create(emoji, "").ok());
  auto status = create(std::string(129, 'n'), "");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("over 128 characters"), std::string::npos);
  status = create("evil\x1b]0;owned\x07", "");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("control character"), std::string::npos);
  status = create("big", std::string(40 << 20, 'd'));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_LT(status.error_message().size(), 300u) << status.error_message().size();
  EXPECT_TRUE(create("multi", "line one\nline two").ok());

  const std::string obama = bytes_of(face_path("obama.jpg"));
  auto enroll = [&](const std::string& external_id, int copies, pb::EnrollResponse* out) {
    grpc::ClientContext c;
    pb::EnrollRequest r;
    r.set_watchlist("multi");
    r.set_external_id(external_id);
    for (int i = 0; i < copies; ++i) r.add_photos()->set_image(obama);
    return server_->gallery().Enroll(&c, r, out);
  };
  pb::EnrollResponse response;
  status = enroll(std::string(1 << 20, 'x'), 1, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_LT(status.error_message().size(), 300u);
  // The same photo three times in one request: stored once.
  ASSERT_TRUE(enroll("obama", 3, &response).ok());
  EXPECT_EQ(get_watchlist("multi").face_count(), 1);
  ASSERT_EQ(response.photos_size(), 3);
  EXPECT_TRUE(response.photos(1).skipped());
  EXPECT_NE(response.photos(2).reason().find("same image as photo 1"), std::string::npos);

  for (const std::string token : {"12abc", " 12", "-5", "99999999999999999999"}) {
    grpc::ClientContext c;
    pb::ListIdentitiesRequest r;
    r.set_watchlist("multi");
    r.set_page_token(token);
    pb::ListIdentitiesResponse page;
    EXPECT_EQ(server_->gallery().ListIdentities(&c, r, &page).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT)
        << token;
  }
  {
    grpc::ClientContext c;
    pb::CreateWatchlistRequest r;
    r.set_name("huge");
    r.set_expected_identities(INT64_MAX);
    pb::Watchlist w;
    EXPECT_EQ(server_->gallery().CreateWatchlist(&c, r, &w).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  // A watchlist named twice (or 100,000 times) in one search.
  {
    grpc::ClientContext c;
    pb::SearchRequest r;
    r.set_image(obama);
    for (int i = 0; i < 5; ++i) r.add_watchlists("multi");
    pb::SearchResponse found;
    ASSERT_TRUE(server_->search().Search(&c, r, &found).ok());
    ASSERT_EQ(found.faces_size(), 1);
    EXPECT_EQ(found.faces(0).candidates_size(), 1);
    grpc::ClientContext c2;
    for (int i = 0; i < 100000; ++i) r.add_watchlists("multi");
    status = server_->search().Search(&c2, r, &found);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  // Evaluate checks its options before analysing any photo.
  {
    auto evaluation = pb::Evaluation::NewStub(server_->channel());
    grpc::ClientContext c;
    pb::EvaluateRequest r;
    r.set_holdout(0.9);
    for (int i = 0; i < 4; ++i) {
      auto* p = r.add_photos();
      p->set_image(obama);
      p->set_identity(i < 2 ? "a" : "b");
    }
    pb::EvaluateResponse out;
    double cpu_before = server_->cpu_seconds();
    status = evaluation->Evaluate(&c, r, &out);
    const double refused_cpu = server_->cpu_seconds() - cpu_before;
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(status.error_message().find("held-out"), std::string::npos);
    // The same photos with a valid holdout are analysed: the refusal cost a sliver of that.
    grpc::ClientContext accepted;
    r.set_holdout(0.5);
    cpu_before = server_->cpu_seconds();
    ASSERT_TRUE(evaluation->Evaluate(&accepted, r, &out).ok());
    const double analysed_cpu = server_->cpu_seconds() - cpu_before;
    EXPECT_LT(refused_cpu, 0.2 * analysed_cpu)
        << "refused: " << refused_cpu << " s CPU; analysed: " << analysed_cpu << " s";
  }
  // And the CLI lists everything, one line per watchlist.
  const auto [code, out] =
      run_command(std::string(FRS_CLI) + " watchlist list --server " + server_->address());
  EXPECT_EQ(code, 0) << out;
}

// gRPC lets listeners share a port (SO_REUSEPORT) unless told not to: a second frs-server
// started on a port in use came up and took half of the first one's connections.
TEST_F(ServerTest, ASecondServerOnAPortInUseRefusesToStart) {
  const auto [code, out] =
      run_server_expecting_exit("--listen " + server_->address() + " --data-dir " +
                                (root_ / "second").string() + " --metrics-listen ''");
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("cannot listen on " + server_->address()), std::string::npos) << out;
  // The same for the metrics listener (cpp-httplib sets SO_REUSEPORT too).
  const auto [metrics_code, metrics_out] = run_server_expecting_exit(
      "--listen 127.0.0.1:" + std::to_string(free_port()) + " --data-dir " +
      (root_ / "third").string() + " --metrics-listen " + server_->metrics_address());
  EXPECT_EQ(metrics_code, 1) << metrics_out;
  EXPECT_NE(metrics_out.find("cannot serve metrics on " + server_->metrics_address()),
            std::string::npos)
      << metrics_out;
  EXPECT_TRUE(create_watchlist("still-served").ok());
}

// A string field with invalid UTF-8 failed to parse inside gRPC: INTERNAL with an empty
// message. It is INVALID_ARGUMENT naming the field.
TEST_F(ServerTest, InvalidUtf8InAStringFieldIsInvalidArgumentNamingTheField) {
  grpc::ClientContext c;
  pb::CreateWatchlistRequest r;
  r.set_name("bad\xFF\xFEname");
  pb::Watchlist w;
  const grpc::Status status = server_->gallery().CreateWatchlist(&c, r, &w);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_NE(status.error_message().find("frs.v1.CreateWatchlistRequest.name"), std::string::npos)
      << status.error_message();
  EXPECT_NE(status.error_message().find("UTF-8"), std::string::npos);
  // The server goes on.
  EXPECT_TRUE(create_watchlist("fine").ok());
}

// Watchlist ids were reused: an Enroll into "victim" that was still analysing its photos
// when "victim" was deleted and "other" created landed in "other" (and replied "victim").
TEST_F(ServerTest, AnEnrollmentNeverLandsInAWatchlistItDidNotName) {
  const auto people = read_identity_tree(testdata_dir() / "lfw10");
  for (int round = 0; round < 2; ++round) {
    const std::string victim = "victim-" + std::to_string(round);
    const std::string other = "other-" + std::to_string(round);
    ASSERT_TRUE(create_watchlist(victim).ok());
    pb::EnrollRequest r;
    r.set_watchlist(victim);
    r.set_external_id("someone");
    for (int i = 0; i < 12; ++i) {
      r.add_photos()->set_image(bytes_of(people[static_cast<std::size_t>(10 * round + i)].file));
    }
    grpc::Status enrolled;
    pb::EnrollResponse response;
    const double cpu_before = server_->cpu_seconds();
    std::thread call([&] {
      grpc::ClientContext c;
      enrolled = server_->gallery().Enroll(&c, r, &response);
    });
    // Deleted while the photos are being analysed, whatever the machine's speed.
    EXPECT_TRUE(server_is_at_work(*server_, cpu_before));
    {
      grpc::ClientContext c;
      pb::DeleteWatchlistRequest d;
      d.set_name(victim);
      pb::DeleteWatchlistResponse deleted;
      ASSERT_TRUE(server_->gallery().DeleteWatchlist(&c, d, &deleted).ok());
    }
    ASSERT_TRUE(create_watchlist(other).ok());
    call.join();
    EXPECT_EQ(get_watchlist(other).identity_count(), 0) << enrolled.error_message();
    EXPECT_EQ(get_watchlist(other).face_count(), 0);
    // Either it failed saying why, or it finished into "victim" before the deletion.
    if (!enrolled.ok() && enrolled.error_code() == grpc::StatusCode::NOT_FOUND) {
      EXPECT_NE(enrolled.error_message().find("was deleted while the photos were analysed"),
                std::string::npos)
          << enrolled.error_message();
    }
  }
}

// SIGTERM and SIGINT let the call in flight finish, write the snapshots and exit 0; the next
// start loads the snapshot instead of rebuilding. (Before, a thread OpenBLAS starts before
// main() took the signal and the process died of it.)
TEST_F(ServerTest, StopSignalsFinishCallsInFlightWriteSnapshotsAndExitZero) {
  ASSERT_TRUE(create_watchlist("lfw").ok());
  const std::int64_t id = get_watchlist("lfw").id();
  const auto people = read_identity_tree(testdata_dir() / "lfw10");
  int round = 0;
  for (const int signal : {SIGTERM, SIGINT}) {
    const auto snapshot = root_ / "data" / "index" / ("watchlist-" + std::to_string(id) + ".index");
    std::filesystem::remove(snapshot);
    // An enrollment of 10 photos: a few seconds of work, in flight when the signal comes.
    pb::EnrollRequest r;
    r.set_watchlist("lfw");
    r.set_external_id("person-" + std::to_string(round));
    for (int i = 0; i < 10; ++i) {
      r.add_photos()->set_image(bytes_of(people[static_cast<std::size_t>(round * 10 + i)].file));
    }
    grpc::Status enrolled;
    const double cpu_before = server_->cpu_seconds();
    std::thread call([&] {
      grpc::ClientContext c;
      pb::EnrollResponse response;
      enrolled = server_->gallery().Enroll(&c, r, &response);
    });
    EXPECT_TRUE(server_is_at_work(*server_, cpu_before));
    const int status = server_->stop(signal);
    call.join();
    EXPECT_TRUE(WIFEXITED(status)) << "signal " << signal << " killed the server";
    if (WIFEXITED(status)) {
      EXPECT_EQ(WEXITSTATUS(status), 0);
    }
    // Refused photos are an answer too; what must not happen is a call cut off.
    EXPECT_NE(enrolled.error_code(), grpc::StatusCode::UNAVAILABLE) << enrolled.error_message();
    EXPECT_TRUE(std::filesystem::exists(snapshot)) << "signal " << signal;
    const std::size_t log_before = bytes_of(root_ / "server.log").size();
    server_->start();
    const std::string log = bytes_of(root_ / "server.log").substr(log_before);
    EXPECT_NE(log.find("watchlist " + std::to_string(id) + " index: snapshot"), std::string::npos)
        << log;
    ++round;
  }
}

TEST_F(ServerTest, KillNineDuringBulkEnrollThenResume) {
  ASSERT_TRUE(create_watchlist("lfw").ok());
  const std::string cli = std::string(FRS_CLI) + " enroll --json --server " + server_->address() +
                          " --watchlist lfw --dir '" + (testdata_dir() / "lfw10").string() + "'";
  // Start the bulk enrollment, and kill the server hard while it runs.
  const pid_t client = ::fork();
  if (client == 0) {
    const std::string quiet =
        cli + " > '" + (root_ / "cut.out").string() + "' 2> '" + (root_ / "cut.err").string() + "'";
    ::execl("/bin/sh", "sh", "-c", quiet.c_str(), static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  // Kill once a few faces are in: mid-run, whatever the machine's speed.
  for (int i = 0; i < 1200 && get_watchlist("lfw").face_count() < 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  server_->stop(SIGKILL);
  int status = 0;
  ::waitpid(client, &status, 0);
  // The CLI says what it did before the server died, and how to go on.
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1);
  const auto cut = nlohmann::json::parse(bytes_of(root_ / "cut.out"));
  EXPECT_EQ(cut["complete"], false);
  EXPECT_GT(cut["enrolled"].get<int>(), 0);
  EXPECT_NE(bytes_of(root_ / "cut.err").find("run the same command again to resume"),
            std::string::npos)
      << bytes_of(root_ / "cut.err");

  server_->start();
  const pb::Watchlist partial = get_watchlist("lfw");
  std::printf("after kill -9: %lld faces stored, %lld indexed\n",
              static_cast<long long>(partial.face_count()),
              static_cast<long long>(partial.indexed_face_count()));
  EXPECT_EQ(partial.indexed_face_count(), partial.face_count());
  EXPECT_LT(partial.face_count(), 100);

  FILE* pipe = ::popen((cli + " 2>/dev/null").c_str(), "r");
  std::string out;
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  ASSERT_EQ(::pclose(pipe), 0) << out;
  const auto report = nlohmann::json::parse(out);
  const int enrolled = report["enrolled"].get<int>();
  const int skipped = report["skipped"].get<int>();
  const auto rejected = report["rejected"].size();
  EXPECT_EQ(static_cast<std::size_t>(enrolled + skipped) + rejected, 100u);
  const pb::Watchlist whole = get_watchlist("lfw");
  EXPECT_EQ(whole.face_count(), static_cast<std::int64_t>(100 - rejected));
  EXPECT_EQ(whole.indexed_face_count(), whole.face_count());
}

// frs watchlist reembed: a dlib watchlist moved to fused-v1 from what enrollment kept, with
// the server killed mid-way; the same command resumes and switches; searches work
// throughout and the audit log records who moved it.
TEST_F(ServerTest, ReembedMovesAWatchlistToAnotherModelAndResumesAfterKillNine) {
  ASSERT_TRUE(create_watchlist("lfw", "dlib-resnet-v1").ok());
  const std::string server = " --server " + server_->address();
  auto [code, out] =
      run_command(std::string(FRS_CLI) + " enroll --json" + server + " --watchlist lfw --dir '" +
                  (testdata_dir() / "lfw10").string() + "' 2>/dev/null");
  ASSERT_EQ(code, 0) << out;
  const std::int64_t faces = get_watchlist("lfw").face_count();
  ASSERT_GE(faces, 95);
  const std::string probe =
      (testdata_dir() / "lfw10" / "George_W_Bush" / "George_W_Bush_0001.jpg").string();
  const std::string reembed =
      std::string(FRS_CLI) + " watchlist reembed lfw --descriptor " + "fused-v1 --json" + server;
  const pid_t client = ::fork();
  if (client == 0) {
    const std::string quiet = reembed + " > '" + (root_ / "cut.out").string() + "' 2>&1";
    ::execl("/bin/sh", "sh", "-c", quiet.c_str(), static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  for (int i = 0; i < 1200 && get_watchlist("lfw").reembedding().done() < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const pb::Watchlist midway = get_watchlist("lfw");
  EXPECT_EQ(midway.reembedding().target_model(), "fused-v1");
  EXPECT_EQ(midway.descriptor_model(), "dlib-resnet-v1");  // still searched with dlib's
  EXPECT_EQ(top_match(probe), "George_W_Bush");
  {
    // A second re-embedding of the same watchlist meanwhile is refused.
    grpc::ClientContext c;
    pb::ReembedWatchlistRequest r;
    r.set_name("lfw");
    r.set_descriptor_model("fused-v1");
    auto reader = server_->gallery().ReembedWatchlist(&c, r);
    pb::ReembedProgress p;
    while (reader->Read(&p)) {
    }
    const auto status = reader->Finish();
    if (get_watchlist("lfw").reembedding().done() < faces) {  // the first is still running
      EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
          << status.error_message();
    }
  }
  server_->stop(SIGKILL);
  int status = 0;
  ::waitpid(client, &status, 0);
  EXPECT_FALSE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << bytes_of(root_ / "cut.out");

  server_->start();
  const pb::Watchlist after_kill = get_watchlist("lfw");
  EXPECT_EQ(after_kill.descriptor_model(), "dlib-resnet-v1");
  EXPECT_EQ(after_kill.reembedding().target_model(), "fused-v1");
  const std::int64_t kept = after_kill.reembedding().done();
  EXPECT_GT(kept, 0);
  EXPECT_EQ(top_match(probe), "George_W_Bush");
  std::tie(code, out) = run_command(std::string(FRS_CLI) + " watchlist show lfw" + server);
  EXPECT_NE(out.find("re-embedding  to fused-v1"), std::string::npos) << out;

  std::tie(code, out) = run_command(reembed + " 2>/dev/null");
  ASSERT_EQ(code, 0) << out;
  const auto done = nlohmann::json::parse(out);
  EXPECT_EQ(done["switched"], true);
  EXPECT_EQ(done["faces"], faces);
  // Resumed: what was made before the kill was not made again.
  EXPECT_EQ(done["from_region"].get<std::int64_t>(), faces - kept);
  EXPECT_EQ(done["from_thumbnail"], 0);
  EXPECT_EQ(done["watchlist"]["descriptor_model"], "fused-v1");
  EXPECT_EQ(done["watchlist"]["indexed_faces"], faces);
  EXPECT_TRUE(done["watchlist"]["reembedding"].is_null());
  // Calibrated by the built-in model before: recalibrated with fused-v1's.
  EXPECT_NEAR(done["watchlist"]["max_distance"].get<double>(), 0.683, 0.002);
  EXPECT_NE(done["threshold_note"].get<std::string>().find("recalibrated for fused-v1"),
            std::string::npos)
      << done;
  EXPECT_EQ(top_match(probe), "George_W_Bush");
  // A search by dlib descriptors now refuses the watchlist; moving again to fused-v1 too.
  std::tie(code, out) = run_command(reembed);
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("already"), std::string::npos) << out;
  // The audit log: who moved it, from what to what, and that it switched.
  bool switched_row = false;
  for (const pb::AuditRecord& row : server_->outcome_rows("/frs.v1.Gallery/ReembedWatchlist")) {
    const auto details = nlohmann::json::parse(row.details_json());
    EXPECT_EQ(details["descriptor_model_to"], "fused-v1");
    if (details.value("switched", false)) {
      switched_row = true;
      EXPECT_EQ(details["descriptor_model_from"], "dlib-resnet-v1");
      EXPECT_EQ(row.token(), "admin");
    }
  }
  EXPECT_TRUE(switched_row);
  // And a restart keeps it.
  server_->stop(SIGTERM);
  server_->start();
  EXPECT_EQ(get_watchlist("lfw").descriptor_model(), "fused-v1");
  EXPECT_EQ(get_watchlist("lfw").indexed_face_count(), faces);
  EXPECT_EQ(top_match(probe), "George_W_Bush");
}

}  // namespace
}  // namespace frs::testing

namespace frs::testing {
namespace {

// The live path through the server and the CLI: a camera added with `frs camera add` is
// kept across a restart, its alert is listed, streamed (backlog first) and reviewed.
TEST_F(ServerTest, CamerasAndAlertsThroughTheCli) {
  enroll_him(*server_);
  TestCamera camera;
  const std::string frs = std::string(FRS_CLI) + " ";
  const std::string server = " --server " + server_->address();
  auto [code, out] =
      run_command(frs + "camera add stage " + camera.url() + " --watchlist wanted --json" + server);
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(nlohmann::json::parse(out)["name"], "stage");
  std::tie(code, out) = run_command(frs + "camera add stage " + camera.url() + server);
  EXPECT_EQ(code, 1);  // the name is taken
  EXPECT_NE(out.find("already exists"), std::string::npos) << out;
  // Every option the API has, through the CLI.
  // (At an address where nothing listens: it cannot raise an alert that the checks below
  // would mistake for the stage camera's.)
  std::tie(code, out) = run_command(frs + "camera add side rtsp://127.0.0.1:9/none" +
                                    " --region 0,0,640,360 --transport udp --latency 100 --fps 2"
                                    " --json" +
                                    server);
  ASSERT_EQ(code, 0) << out;
  {
    const auto side = nlohmann::json::parse(out);
    EXPECT_EQ(side["region"]["width"], 640);
    EXPECT_EQ(side["rtsp_transport"], "udp");
    EXPECT_DOUBLE_EQ(side["analyse_fps"].get<double>(), 2.0);
  }
  std::tie(code, out) = run_command(frs + "camera remove side" + server);
  ASSERT_EQ(code, 0) << out;
  std::tie(code, out) =
      run_command(frs + "camera add bad " + camera.url() + " --region 0,0,0,10" + server);
  EXPECT_EQ(code, 1);  // an empty region
  EXPECT_NE(out.find("region"), std::string::npos) << out;

  // His alert (within two loops of the clip on a quiet machine; a loaded one may need a
  // reconnection first).
  nlohmann::json alert;
  eventually(
      [&] {
        std::tie(code, out) = run_command(frs + "alerts --json" + server);
        if (code == 0 && !out.empty()) alert = nlohmann::json::parse(out.substr(0, out.find('\n')));
        return !alert.is_null();
      },
      std::chrono::seconds(90), std::chrono::milliseconds(250));
  ASSERT_FALSE(alert.is_null()) << "no alert within 90 s: " << out;
  EXPECT_EQ(alert["name"], "Lin-Manuel Miranda");
  EXPECT_EQ(alert["external_id"], "LMM-1");
  EXPECT_EQ(alert["camera"], "stage");
  EXPECT_EQ(alert["review"], "pending");
  EXPECT_LE(alert["distance"].get<double>(), get_watchlist("wanted").max_distance());

  std::tie(code, out) = run_command(frs + "camera list --json" + server);
  ASSERT_EQ(code, 0) << out;
  const auto listed = nlohmann::json::parse(out.substr(0, out.find('\n')));
  EXPECT_EQ(listed["state"], "streaming");
  EXPECT_GT(listed["frames_analysed"].get<int>(), 0);
  EXPECT_GE(listed["alerts"].get<int>(), 1);

  // Prometheus sees the camera and the stages.
  httplib::Client metrics("127.0.0.1", server_->metrics_port());
  const auto scraped = metrics.Get("/metrics");
  ASSERT_TRUE(scraped);
  EXPECT_EQ(scraped->status, 200);
  EXPECT_NE(scraped->body.find("frs_camera_frames_in_total{camera=\"stage\"}"), std::string::npos)
      << scraped->body;
  EXPECT_NE(scraped->body.find("frs_camera_streaming{camera=\"stage\"} 1"), std::string::npos);
  EXPECT_NE(scraped->body.find("frs_stage_embed_seconds_count"), std::string::npos);
  EXPECT_NE(scraped->body.find("frs_alert_subscribers 0"), std::string::npos);

  // Per-camera structured log lines (logfmt); the alert's line names no one.
  const std::string log = bytes_of(root_ / "server.log");
  EXPECT_NE(log.find("camera=stage event=added url=" + camera.url()), std::string::npos) << log;
  EXPECT_NE(log.find("camera=stage event=streaming width=640 height=360"), std::string::npos);
  EXPECT_NE(log.find("camera=stage event=alert alert_id=" + std::to_string(alert["id"].get<int>())),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("Lin-Manuel"), std::string::npos) << log;

  const std::string id = std::to_string(alert["id"].get<std::int64_t>());
  std::tie(code, out) =
      run_command(frs + "alerts review " + id + " --reject --note 'test' --json" + server);
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(nlohmann::json::parse(out)["review"], "rejected");
  std::tie(code, out) = run_command(frs + "alerts review 999999 --confirm" + server);
  EXPECT_EQ(code, 1);

  // After a restart the camera is back and the alert still there; a stream from id 0
  // delivers it first (the backlog), with its image when asked.
  server_->stop(SIGTERM);
  server_->start();
  std::tie(code, out) = run_command(frs + "camera list --json" + server);
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(nlohmann::json::parse(out.substr(0, out.find('\n')))["name"], "stage");
  pb::StreamAlertsRequest request;
  request.set_with_images(true);
  grpc::ClientContext streaming;
  streaming.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = pb::Alerts::NewStub(server_->channel())->StreamAlerts(&streaming, request);
  pb::Alert first;
  ASSERT_TRUE(stream->Read(&first));
  EXPECT_EQ(std::to_string(first.id()), id);
  EXPECT_EQ(first.review(), "rejected");
  EXPECT_GT(first.face_jpeg().size(), 100u);
  streaming.TryCancel();

  std::tie(code, out) = run_command(frs + "camera remove stage" + server);
  EXPECT_EQ(code, 0) << out;
  std::tie(code, out) = run_command(frs + "camera list --json" + server);
  EXPECT_TRUE(out.empty()) << out;
  std::tie(code, out) = run_command(frs + "camera remove stage" + server);
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("does not exist"), std::string::npos) << out;
}

// The camera is killed (no RTSP teardown) and started again, three times: each time the
// camera backs off and reconnects, its state and counters say so, and alerts resume (the
// cooldown is off, so each new sighting alerts); the server's thread count does not grow.
TEST_F(ServerTest, ACameraKilledAgainAndAgainReconnectsAndAlertsResume) {
  enroll_him(*server_);
  server_.reset();
  server_ = std::make_unique<Server>(root_ / "data",
                                     std::vector<std::string>{"--alert-cooldown-ms", "0"});
  TestCamera camera;
  const std::string frs = std::string(FRS_CLI) + " ";
  const std::string server = " --server " + server_->address();
  auto [code, out] = run_command(frs + "camera add stage " + camera.url() + server);
  ASSERT_EQ(code, 0) << out;
  auto camera_now = [&] {
    auto [c, o] = run_command(frs + "camera list --json" + server);
    EXPECT_EQ(c, 0) << o;
    return nlohmann::json::parse(o.substr(0, o.find('\n')));
  };
  auto alert_count = [&] {
    auto [c, o] = run_command(frs + "alerts --json" + server);
    EXPECT_EQ(c, 0) << o;
    return static_cast<int>(std::count(o.begin(), o.end(), '\n'));
  };
  ASSERT_TRUE(eventually([&] { return alert_count() >= 1; }, std::chrono::seconds(30)))
      << "no first alert";
  std::size_t threads_after_first_cycle = 0;
  for (int cycle = 1; cycle <= 3; ++cycle) {
    const auto before = camera_now();
    const int alerts_before = alert_count();
    camera.stop();
    ASSERT_TRUE(eventually(
        [&] {
          const auto now = camera_now();
          return now["state"] != "streaming" &&
                 now["reconnects"].get<int>() > before["reconnects"].get<int>();
        },
        std::chrono::seconds(60)))
        << "cycle " << cycle << ": the lost camera was not noticed: " << camera_now().dump();
    EXPECT_FALSE(camera_now()["last_error"].get<std::string>().empty());
    camera.start();
    ASSERT_TRUE(eventually(
        [&] {
          const auto now = camera_now();
          return now["state"] == "streaming" &&
                 now["frames_in"].get<long>() > before["frames_in"].get<long>();
        },
        // The retry delay doubles while a camera keeps dying within 10 s of streaming, up to
        // 30 s (on a loaded machine by the third cycle): the wait must outlast it.
        std::chrono::seconds(120)))
        << "cycle " << cycle << ": not streaming again: " << camera_now().dump();
    ASSERT_TRUE(eventually([&] { return alert_count() > alerts_before; }, std::chrono::seconds(90)))
        << "cycle " << cycle << ": no alert after reconnecting";
    if (cycle == 1) threads_after_first_cycle = server_->threads();
  }
  // Threads that each reconnection left behind would show as growth over two more cycles.
  EXPECT_LE(server_->threads(), threads_after_first_cycle + 1)
      << "after the first cycle: " << threads_after_first_cycle;
  EXPECT_EQ(camera_now()["state"], "streaming");
}

grpc::Status add_camera(Server& server, const std::string& name, const std::string& url,
                        const std::vector<std::string>& watchlists, pb::Camera* out = nullptr) {
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  pb::AddCameraRequest r;
  r.mutable_spec()->set_name(name);
  r.mutable_spec()->set_url(url);
  for (const auto& w : watchlists) r.mutable_spec()->add_watchlists(w);
  pb::Camera ignored;
  return server.cameras().AddCamera(&c, r, out ? out : &ignored);
}

pb::Camera camera_named(Server& server, const std::string& name) {
  grpc::ClientContext c;
  pb::ListCamerasResponse r;
  EXPECT_TRUE(server.cameras().ListCameras(&c, pb::ListCamerasRequest(), &r).ok());
  for (const auto& camera : r.cameras()) {
    if (camera.spec().name() == name) return camera;
  }
  ADD_FAILURE() << "no camera " << name;
  return {};
}

// A camera bound to a watchlist that does not exist used to show `streaming` and never
// alert. Unknown watchlists are refused; a deleted one is reported by the cameras naming it.
TEST_F(ServerTest, CamerasRefuseUnknownWatchlistsAndReportDeletedOnes) {
  // (Port 9 of loopback: nothing answers, the camera keeps retrying.)
  EXPECT_EQ(add_camera(*server_, "gate", "rtsp://127.0.0.1:9/gate", {"nope"}).error_code(),
            grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(create_watchlist("a").ok());
  ASSERT_TRUE(create_watchlist("b").ok());
  ASSERT_TRUE(server_->authorize("a").ok());
  ASSERT_TRUE(server_->authorize("b").ok());
  ASSERT_TRUE(add_camera(*server_, "gate", "rtsp://127.0.0.1:9/gate", {"a", "b"}).ok());
  EXPECT_EQ(camera_named(*server_, "gate").missing_watchlists_size(), 0);
  EXPECT_EQ(camera_named(*server_, "gate").matching_watchlists_size(), 2);
  const auto delete_watchlist = [&](const std::string& name) {
    grpc::ClientContext c;
    pb::DeleteWatchlistRequest r;
    r.set_name(name);
    pb::DeleteWatchlistResponse response;
    return server_->gallery().DeleteWatchlist(&c, r, &response);
  };
  ASSERT_TRUE(delete_watchlist("a").ok());
  pb::Camera gate = camera_named(*server_, "gate");
  ASSERT_EQ(gate.missing_watchlists_size(), 1);
  EXPECT_EQ(gate.missing_watchlists(0), "a");
  EXPECT_NE(gate.last_error().find("matched against the others only"), std::string::npos)
      << gate.last_error();
  ASSERT_TRUE(delete_watchlist("b").ok());
  gate = camera_named(*server_, "gate");
  EXPECT_EQ(gate.missing_watchlists_size(), 2);
  EXPECT_NE(gate.last_error().find("matches against nothing"), std::string::npos);
  const std::string log = bytes_of(root_ / "server.log");
  EXPECT_NE(log.find("camera=gate event=matching_stopped watchlist=a reason=\"watchlist deleted\""),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("camera=gate event=matching_stopped watchlist=b reason=\"watchlist deleted\""),
            std::string::npos);
  // Stored cameras whose watchlist went away still start, and say so.
  server_->stop(SIGTERM);
  server_->start();
  EXPECT_EQ(camera_named(*server_, "gate").missing_watchlists_size(), 2);
}

// A camera name that closes the label and starts a line of its own used to add a metric to
// the exposition. Control characters are refused in names; quotes and backslashes escaped.
TEST_F(ServerTest, CameraNamesCannotInjectMetrics) {
  EXPECT_EQ(
      add_camera(*server_, "x\"} 1\nfrs_injected_metric{camera=\"y", "rtsp://127.0.0.1:9/x", {})
          .error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(add_camera(*server_, "bell\x07", "rtsp://127.0.0.1:9/x", {}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  const std::string sneaky = "x\"} 1 frs_injected_metric{camera=\"y\\";
  ASSERT_TRUE(add_camera(*server_, sneaky, "rtsp://127.0.0.1:9/x", {}).ok());
  httplib::Client metrics("127.0.0.1", server_->metrics_port());
  const auto reply = metrics.Get("/metrics");
  ASSERT_TRUE(reply);
  const std::string line_start = "\nfrs_camera_frames_in_total{camera=";
  const auto at = reply->body.find(line_start);
  ASSERT_NE(at, std::string::npos) << reply->body;
  const std::string line = reply->body.substr(at + 1, reply->body.find('\n', at + 1) - at - 1);
  EXPECT_EQ(line,
            "frs_camera_frames_in_total{camera=\"x\\\"} 1 frs_injected_metric{camera=\\\"y"
            "\\\\\"} 0");
  EXPECT_EQ(reply->body.find("\nfrs_injected"), std::string::npos);
}

// A FIFO as a camera's path blocked the camera's thread in open(): stuck connecting,
// RemoveCamera hung past its deadline, the camera stayed stored and shutdown hung. A path
// that is not a regular file is refused when added and at every reconnection; removing a
// camera and stopping the server finish in bounded time.
TEST_F(ServerTest, ACameraWhoseSourceIsAFifoIsRefusedAndRemovalIsBounded) {
  // File cameras need a media dir.
  server_.reset();
  const auto media = root_ / "media";
  std::filesystem::create_directories(media);
  server_ =
      std::make_unique<Server>(root_ / "data", std::vector<std::string>{"--media-dir", media});
  const auto fifo = media / "camera.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  grpc::Status status = add_camera(*server_, "pipe", fifo.string(), {});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("not a regular file"), std::string::npos)
      << status.error_message();
  // Paths that are a (useless) regular file when added and a FIFO after: replaced under
  // the camera, as a hostile local user could.
  const auto make_fifo_later = [](const std::filesystem::path& path) {
    std::ofstream(path) << "not a video";
    return [path] {
      std::filesystem::remove(path);
      return ::mkfifo(path.c_str(), 0600);
    };
  };
  // A path that becomes a FIFO after the camera failed once: the next attempt says so.
  const auto later = media / "later.mp4";
  const auto later_to_fifo = make_fifo_later(later);
  ASSERT_TRUE(add_camera(*server_, "later", later.string(), {}).ok());
  auto eventually_error = [&](const std::string& camera, const std::string& wanted) {
    std::string last_error;
    for (int i = 0; i < 150 && last_error.find(wanted) == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      last_error = camera_named(*server_, camera).last_error();
    }
    return last_error;
  };
  EXPECT_FALSE(eventually_error("later", "stream").empty());
  ASSERT_EQ(later_to_fifo(), 0);
  const std::string error = eventually_error("later", "not a regular file");
  EXPECT_NE(error.find("not a regular file"), std::string::npos) << error;
  // A FIFO made at once, while the first attempt opens the path: either that attempt sees
  // it, or GStreamer's open() blocks for good. Either way removal ends in bounded time (a
  // thread stuck in the source is left behind, and never delivers a frame).
  const auto racing = media / "racing.mp4";
  const auto racing_to_fifo = make_fifo_later(racing);
  ASSERT_TRUE(add_camera(*server_, "racing", racing.string(), {}).ok());
  ASSERT_EQ(racing_to_fifo(), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (const std::string name : {"later", "racing"}) {
    const auto started = std::chrono::steady_clock::now();
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    pb::RemoveCameraRequest r;
    r.set_name(name);
    pb::RemoveCameraResponse response;
    const grpc::Status removed = server_->cameras().RemoveCamera(&c, r, &response);
    EXPECT_TRUE(removed.ok()) << name << ": " << removed.error_message();
    // Bounded by the stream's stop timeout, not hung in the FIFO; the margin is for a
    // loaded machine, far below forever.
    EXPECT_LT(std::chrono::steady_clock::now() - started,
              CameraStream::kStopTimeout + std::chrono::seconds(10))
        << name;
  }
  // Once more, left running (stuck in the FIFO's open(), or refused at each attempt) when
  // the server stops: shutdown is bounded too.
  const auto stuck_to_fifo = make_fifo_later(media / "stuck.mp4");
  ASSERT_TRUE(add_camera(*server_, "stuck", (media / "stuck.mp4").string(), {}).ok());
  ASSERT_EQ(stuck_to_fifo(), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto stopping = std::chrono::steady_clock::now();
  const int exit_status = server_->stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 0);
  EXPECT_LT(std::chrono::steady_clock::now() - stopping,
            3 * CameraStream::kStopTimeout + std::chrono::seconds(20));
  server_->start();
  grpc::ClientContext c;
  pb::ListCamerasResponse cameras;
  ASSERT_TRUE(server_->cameras().ListCameras(&c, pb::ListCamerasRequest(), &cameras).ok());
  // Removed means removed from the store too: only "stuck" is stored, and as its path is a
  // FIFO now it is refused at start (not running), and can still be removed.
  EXPECT_EQ(cameras.cameras_size(), 0);
  EXPECT_NE(bytes_of(root_ / "server.log").find("camera=stuck event=not_started"),
            std::string::npos);
  grpc::ClientContext remove;
  pb::RemoveCameraRequest r;
  r.set_name("stuck");
  pb::RemoveCameraResponse response;
  EXPECT_TRUE(server_->cameras().RemoveCamera(&remove, r, &response).ok());
}

}  // namespace
}  // namespace frs::testing
