#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <set>

#include "dialects.h"
#include "frs/storage/database.h"

namespace frs {

ChangeListener::ChangeListener(const StoreLocation& where, std::vector<std::string> channels,
                               std::function<void(const std::string&)> on_change,
                               std::chrono::milliseconds resync)
    : url_(where.postgres_url),
      channels_(std::move(channels)),
      on_change_(std::move(on_change)),
      resync_(resync) {
  if (!where.is_postgres()) return;
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  thread_ = std::thread([this] { run(); });
}

ChangeListener::~ChangeListener() {
  stop_ = true;
  if (wake_fd_ >= 0) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(wake_fd_, &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void ChangeListener::run() {
  using Clock = std::chrono::steady_clock;
  PGconn* conn = nullptr;
  auto tell = [this](const std::string& channel) {
    try {
      on_change_(channel);
    } catch (...) {
      // The callback reports its own failures; the next notification or resync retries.
    }
  };
  // Waits up to `ms` for the connection's socket (when there is one) or the stop signal.
  auto wait = [&](int socket, std::chrono::milliseconds ms) {
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {socket, POLLIN, 0}};
    ::poll(fds, socket >= 0 ? 2 : 1, static_cast<int>(ms.count()));
  };
  auto next_resync = Clock::now();
  while (!stop_) {
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
      connected_ = false;
      if (conn) PQfinish(conn);
      conn = nullptr;
      try {
        conn = connect_to_postgres(url_);
      } catch (...) {
      }
      bool listening = conn && PQstatus(conn) == CONNECTION_OK;
      for (const std::string& channel : channels_) {
        if (!listening) break;
        PGresult* r = PQexec(conn, ("LISTEN " + channel).c_str());
        listening = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
      }
      if (!listening) {
        if (conn) PQfinish(conn);  // connected but not listening is no use: start over
        conn = nullptr;
        wait(-1, std::chrono::seconds(1));  // PostgreSQL is down: try again in a second
        continue;
      }
      connected_ = true;
      next_resync = Clock::now();  // what was missed while away
    }
    if (Clock::now() >= next_resync) {
      for (const std::string& channel : channels_) tell(channel);
      next_resync = Clock::now() + resync_;
    }
    const auto until_resync =
        std::chrono::duration_cast<std::chrono::milliseconds>(next_resync - Clock::now());
    wait(PQsocket(conn), std::max(std::chrono::milliseconds(1), until_resync));
    if (stop_) break;
    if (!PQconsumeInput(conn)) continue;  // the connection broke: reconnect above
    std::set<std::string> heard;
    while (PGnotify* n = PQnotifies(conn)) {
      heard.insert(n->relname);
      PQfreemem(n);
    }
    for (const std::string& channel : heard) tell(channel);
  }
  connected_ = false;
  if (conn) PQfinish(conn);
}

}  // namespace frs
