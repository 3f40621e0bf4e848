// One group of `frs` commands that talk to frs-server (see remote_common.h).

#include <grpcpp/grpcpp.h>

#include <iostream>

#include "frs/core/text.h"
#include "remote_common.h"

namespace frs::cli {

void add_search_commands(CLI::App& app, Action& action) {
  auto run = [&action](std::function<int()> f) { action = std::move(f); };
  // search
  static std::vector<std::string> search_watchlists;
  static int top_k = 5;
  static float search_max_distance = 0;
  static std::vector<std::string> search_images;
  CLI::App* search = app.add_subcommand("search", "Search every face of each image");
  search->add_option("images", search_images, "Images")->required();
  add_repeatable(search, "--watchlist", search_watchlists, "Watchlist (repeatable; default all)");
  search->add_option("--top-k", top_k, "Candidates per face")->check(CLI::Range(1, 100));
  search
      ->add_option("--max-distance", search_max_distance,
                   "Stricter threshold than the watchlists' own")
      ->check(CLI::Range(0.01f, 4.0f));
  search->callback([run] {
    run([] {
      auto stub = pb::Search::NewStub(connect(o));
      int status = 0;
      for (const auto& path : search_images) {
        pb::SearchRequest request;
        pb::SearchResponse response;
        grpc::Status rpc;
        try {
          request.set_image(read_bytes(path));
          for (const auto& w : search_watchlists) request.add_watchlists(w);
          request.set_top_k(top_k);
          request.set_max_distance(search_max_distance);
          rpc = stub->Search(context().get(), request, &response);
          if (rpc.error_code() == grpc::StatusCode::UNAVAILABLE) check(rpc, o);
        } catch (const RemoteError& e) {
          if (std::string(e.what()).rfind("cannot reach", 0) == 0) throw;
          rpc = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.what());
        }
        if (!rpc.ok()) {
          status = 1;
          if (o.json_output)
            std::cout << json{{"image", path}, {"error", rpc.error_message()}}.dump() << "\n";
          std::cerr << "frs: " << path << ": " << rpc.error_message() << "\n";
          continue;
        }
        json line = {{"image", path}, {"faces", json::array()}};
        // Watchlists a search of all left out (live-only ones without an authorisation in
        // force): "no match" must not read as "not on any watchlist".
        line["skipped_watchlists"] = json::array();
        for (const auto& w : response.skipped_watchlists()) line["skipped_watchlists"].push_back(w);
        for (const auto& f : response.faces()) {
          json face = {{"box", box_json(f.box())}, {"candidates", json::array()}};
          for (const auto& c : f.candidates()) {
            face["candidates"].push_back({{"identity_id", c.identity_id()},
                                          {"external_id", c.external_id()},
                                          {"name", c.display_name()},
                                          {"watchlist", c.watchlist()},
                                          {"distance", rounded(c.distance())}});
          }
          line["faces"].push_back(face);
        }
        if (o.json_output) {
          std::cout << line.dump() << "\n";
        } else {
          std::cout << path << ": " << response.faces_size() << " faces\n";
          if (response.skipped_watchlists_size() > 0) {
            std::cout << "  not searched (live-only, no authorisation in force): ";
            for (int i = 0; i < response.skipped_watchlists_size(); ++i) {
              std::cout << (i ? ", " : "") << escape_for_terminal(response.skipped_watchlists(i));
            }
            std::cout << "\n";
          }
          for (const auto& f : line["faces"]) {
            std::cout << "  face at " << f["box"]["x"] << "," << f["box"]["y"] << ": ";
            if (f["candidates"].empty()) std::cout << "no match";
            for (const auto& c : f["candidates"]) {
              std::cout << c["name"].get<std::string>() << " (" << c["watchlist"].get<std::string>()
                        << ", " << c["distance"] << ")  ";
            }
            std::cout << "\n";
          }
        }
      }
      return status;
    });
  });
}

}  // namespace frs::cli
