// One group of `frs` commands that talk to frs-server (see remote_common.h).

#include <grpcpp/grpcpp.h>

#include <iostream>

#include "remote_common.h"

namespace frs::cli {
namespace {

json camera_json(const pb::Camera& c) {
  return {{"name", c.spec().name()},
          {"url", c.spec().url()},
          {"watchlists", c.spec().watchlists()},
          {"analyse_fps", c.spec().analyse_fps()},
          {"region", c.spec().has_region() ? json{{"x", c.spec().region().x()},
                                                  {"y", c.spec().region().y()},
                                                  {"width", c.spec().region().width()},
                                                  {"height", c.spec().region().height()}}
                                           : json(nullptr)},
          {"rtsp_transport", c.spec().rtsp_transport()},
          {"state", c.state()},
          {"last_error", c.last_error()},
          {"matching_watchlists", c.matching_watchlists()},
          {"missing_watchlists", c.missing_watchlists()},
          {"unauthorized_watchlists", c.unauthorized_watchlists()},
          {"reconnects", c.reconnects()},
          {"frames_in", c.frames_in()},
          {"frames_analysed", c.frames_analysed()},
          {"frames_dropped", c.frames_dropped()},
          {"faces", c.faces()},
          {"tracks", c.tracks()},
          {"alerts", c.alerts()},
          {"last_frame_at_ms", c.last_frame_at_ms()}};
}

}  // namespace

void add_camera_commands(CLI::App& app, Action& action) {
  auto run = [&action](std::function<int()> f) { action = std::move(f); };
  // camera
  static std::string camera_name, camera_url;
  static std::vector<std::string> camera_watchlists;
  static double camera_fps = 0;
  static std::vector<int> camera_region;
  static std::string camera_transport;
  static int camera_latency_ms = 0;
  CLI::App* camera = app.add_subcommand("camera", "Add, list and remove cameras");
  camera->require_subcommand(1);
  CLI::App* cadd = camera->add_subcommand("add", "Add a camera (kept across restarts)");
  cadd->add_option("name", camera_name, "Camera name")->required();
  cadd->add_option("url", camera_url, "rtsp://..., http(s)://..., or a video file on the server")
      ->required();
  add_repeatable(cadd, "--watchlist", camera_watchlists,
                 "Watchlist to check (repeatable; default all)");
  cadd->add_option("--fps", camera_fps, "Frames analysed per second (default 5)")
      ->check(CLI::Range(0.1, 60.0));
  cadd->add_option("--region", camera_region,
                   "Only faces centred in this rectangle: X,Y,WIDTH,HEIGHT in pixels")
      ->delimiter(',')
      ->expected(4);
  cadd->add_option("--transport", camera_transport, "RTSP transport: tcp (default), udp or auto")
      ->check(CLI::IsMember({"tcp", "udp", "auto"}));
  cadd->add_option("--latency", camera_latency_ms, "RTSP jitter buffer, ms (default 200)")
      ->check(CLI::Range(1, 10000));
  cadd->callback([run] {
    run([] {
      auto stub = pb::Cameras::NewStub(connect(o));
      pb::AddCameraRequest request;
      request.mutable_spec()->set_name(camera_name);
      request.mutable_spec()->set_url(camera_url);
      for (const auto& w : camera_watchlists) request.mutable_spec()->add_watchlists(w);
      request.mutable_spec()->set_analyse_fps(camera_fps);
      if (camera_region.size() == 4 && (camera_region[2] <= 0 || camera_region[3] <= 0)) {
        throw RemoteError("--region needs a positive width and height: X,Y,WIDTH,HEIGHT");
      }
      if (camera_region.size() == 4) {
        pb::Box* region = request.mutable_spec()->mutable_region();
        region->set_x(camera_region[0]);
        region->set_y(camera_region[1]);
        region->set_width(camera_region[2]);
        region->set_height(camera_region[3]);
      }
      request.mutable_spec()->set_rtsp_transport(camera_transport);
      request.mutable_spec()->set_rtsp_latency_ms(camera_latency_ms);
      pb::Camera response;
      check(stub->AddCamera(context().get(), request, &response), o);
      if (o.json_output) {
        std::cout << camera_json(response).dump() << "\n";
      } else {
        std::cout << "added camera " << camera_name << " (" << response.state() << ")\n";
      }
      return 0;
    });
  });
  CLI::App* clist = camera->add_subcommand("list", "List cameras with their state and counters");
  clist->callback([run] {
    run([] {
      auto stub = pb::Cameras::NewStub(connect(o));
      pb::ListCamerasResponse response;
      check(stub->ListCameras(context().get(), pb::ListCamerasRequest(), &response), o);
      for (const auto& c : response.cameras()) {
        if (o.json_output) {
          std::cout << camera_json(c).dump() << "\n";
          continue;
        }
        std::cout << c.spec().name() << "  " << c.state() << "  " << c.spec().url() << "  frames "
                  << c.frames_in() << " in, " << c.frames_analysed() << " analysed, "
                  << c.frames_dropped() << " dropped  faces " << c.faces() << "  tracks "
                  << c.tracks() << "  alerts " << c.alerts() << "  reconnects " << c.reconnects()
                  << "\n";
        if (!c.last_error().empty()) std::cout << "  last error: " << c.last_error() << "\n";
      }
      return 0;
    });
  });
  CLI::App* cluster = app.add_subcommand("cluster", "Cluster mode: nodes and their cameras");
  cluster->require_subcommand(1);
  CLI::App* cstatus = cluster->add_subcommand(
      "status",
      "Nodes (address, version, heartbeat, cameras held, capacity, index change and lag) and "
      "cameras with their node and lease age");
  cstatus->callback([run] {
    run([] {
      auto stub = pb::Cameras::NewStub(connect(o));
      pb::ClusterStatusResponse response;
      check(stub->ClusterStatus(context().get(), pb::ClusterStatusRequest(), &response), o);
      if (o.json_output) {
        json nodes = json::array(), cameras = json::array();
        for (const auto& n : response.nodes()) {
          nodes.push_back({{"id", n.id()},
                           {"address", n.address()},
                           {"version", n.version()},
                           {"alive", n.alive()},
                           {"heartbeat_age_ms", n.heartbeat_age_ms()},
                           {"cameras_held", n.cameras_held()},
                           {"camera_capacity", n.camera_capacity()},
                           {"applied_change", n.applied_change()},
                           {"change_lag", n.change_lag()},
                           {"started_at_ms", n.started_at_ms()}});
        }
        for (const auto& c : response.cameras()) {
          cameras.push_back({{"camera", c.camera()},
                             {"node", c.node()},
                             {"lease_age_ms", c.lease_age_ms()},
                             {"expires_in_ms", c.expires_in_ms()},
                             {"epoch", c.epoch()}});
        }
        std::cout << json{{"nodes", nodes},
                          {"cameras", cameras},
                          {"store_change", response.store_change()},
                          {"lease_ms", response.lease_ms()},
                          {"answered_by", response.answered_by()}}
                         .dump()
                  << "\n";
        return 0;
      }
      std::cout << "nodes (answered by " << response.answered_by() << "; store change "
                << response.store_change() << ", leases of " << response.lease_ms() << " ms):\n";
      for (const auto& n : response.nodes()) {
        std::cout << "  " << n.id() << "  " << n.address() << "  v" << n.version() << "  "
                  << (n.alive() ? "alive" : "DEAD") << "  heartbeat " << n.heartbeat_age_ms()
                  << " ms ago  cameras " << n.cameras_held() << "/" << n.camera_capacity()
                  << "  index change " << n.applied_change() << " (lag " << n.change_lag() << ")\n";
      }
      std::cout << "cameras:\n";
      for (const auto& c : response.cameras()) {
        std::cout << "  " << c.camera() << "  ";
        if (c.node().empty()) {
          std::cout << "unassigned\n";
        } else {
          std::cout << c.node() << "  lease age " << c.lease_age_ms() / 1000.0 << " s\n";
        }
      }
      return 0;
    });
  });
  CLI::App* cremove = camera->add_subcommand("remove", "Stop and forget a camera");
  cremove->add_option("name", camera_name, "Camera name")->required();
  cremove->callback([run] {
    run([] {
      auto stub = pb::Cameras::NewStub(connect(o));
      pb::RemoveCameraRequest request;
      request.set_name(camera_name);
      pb::RemoveCameraResponse response;
      check(stub->RemoveCamera(context().get(), request, &response), o);
      if (!o.json_output) std::cout << "removed camera " << camera_name << "\n";
      return 0;
    });
  });
}

}  // namespace frs::cli
