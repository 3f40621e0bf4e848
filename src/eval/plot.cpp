#include "frs/eval/plot.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "frs/core/error.h"

extern char** environ;

namespace frs {
namespace {

// A gnuplot single-quoted string: a quote inside is doubled.
std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// Writes the curve's points that a log-log plot can show (both rates above 0); returns
// how many.
std::size_t write_curve(const std::filesystem::path& file,
                        const std::vector<TradeOffPoint>& curve) {
  std::ofstream out(file);
  out << "# threshold false_accept false_reject\n";
  std::size_t shown = 0;
  for (const TradeOffPoint& p : curve) {
    if (p.false_accept <= 0 || p.false_reject <= 0) continue;
    out << p.threshold << ' ' << p.false_accept << ' ' << p.false_reject << '\n';
    ++shown;
  }
  if (!out) {
    throw Error(ErrorCode::kInvalidArgument, "cannot write '" + file.string() + "'");
  }
  return shown;
}

// Share of each class's distances per bin of 0.02, so that both classes show whatever
// their sizes.
void write_histogram(const std::filesystem::path& file, std::span<const LabelledDistance> pairs,
                     std::size_t& same, std::size_t& different) {
  constexpr double kBin = 0.02;
  float largest = 1.2f;
  for (const LabelledDistance& p : pairs) largest = std::max(largest, p.distance);
  const auto bins = static_cast<std::size_t>(std::ceil(largest / kBin)) + 1;
  std::vector<double> same_counts(bins), different_counts(bins);
  same = different = 0;
  for (const LabelledDistance& p : pairs) {
    const auto bin = static_cast<std::size_t>(std::max(0.0f, p.distance) / kBin);
    (p.same ? same_counts : different_counts)[bin] += 1;
    ++(p.same ? same : different);
  }
  std::ofstream out(file);
  out << "# bin_start same_share different_share\n";
  for (std::size_t b = 0; b < bins; ++b) {
    out << b * kBin << ' ' << (same ? same_counts[b] / same : 0) << ' '
        << (different ? different_counts[b] / different : 0) << '\n';
  }
  if (!out) {
    throw Error(ErrorCode::kInvalidArgument, "cannot write '" + file.string() + "'");
  }
}

void run_gnuplot(const std::filesystem::path& script, const std::filesystem::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::string program = "gnuplot", path = script.string();
  char* argv[] = {program.data(), path.data(), nullptr};
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, "gnuplot", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    throw Error(ErrorCode::kFailedPrecondition,
                "--plot needs gnuplot, which is not installed: apt-get install gnuplot-nox "
                "(scripts/setup.sh does)");
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::ifstream in(log);
    std::stringstream message;
    message << in.rdbuf();
    throw Error(ErrorCode::kInternal,
                "gnuplot failed on '" + script.string() + "': " + message.str().substr(0, 500));
  }
}

// Creates the plot folder; returns it as an absolute path (gnuplot scripts cd into it).
std::filesystem::path plot_folder(const std::filesystem::path& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    throw Error(ErrorCode::kInvalidArgument,
                "cannot create the plot folder '" + dir.string() + "': " + error.message());
  }
  return std::filesystem::absolute(dir);
}

void check_written(const std::ostream& out, const std::filesystem::path& file) {
  if (!out) throw Error(ErrorCode::kInvalidArgument, "cannot write '" + file.string() + "'");
}

}  // namespace

std::vector<std::filesystem::path> write_report_plots(const std::filesystem::path& dir,
                                                      const std::vector<AlertDayCounts>& days,
                                                      std::vector<double> review_delays_s,
                                                      const std::string& caption) {
  const auto root = plot_folder(dir);
  {
    std::ofstream out(root / "alerts_per_day.dat");
    out << "# day confirmed rejected pending\n";
    for (const AlertDayCounts& d : days) {
      out << d.day << ' ' << d.confirmed << ' ' << d.rejected << ' ' << d.pending << '\n';
    }
    check_written(out, root / "alerts_per_day.dat");
  }
  std::sort(review_delays_s.begin(), review_delays_s.end());
  {
    std::ofstream out(root / "review_delay.dat");
    out << "# delay_minutes share_of_decided_alerts_reviewed_within\n";
    for (std::size_t i = 0; i < review_delays_s.size(); ++i) {
      out << review_delays_s[i] / 60.0 << ' '
          << static_cast<double>(i + 1) / static_cast<double>(review_delays_s.size()) << '\n';
    }
    check_written(out, root / "review_delay.dat");
  }
  std::ofstream gp(root / "report.gp");
  gp << "# Written by frs audit report --plot; redraw with: gnuplot report.gp\n"
     << "set terminal pngcairo size 900,650 font ',11'\n"
     << "set grid\nset key top left\n"
     << "cd " << quoted(root.string()) << "\n\n"
     << "set output 'alerts_per_day.png'\n"
     << "set title " << quoted("Alerts per day by outcome: " + caption) << " noenhanced\n"
     << "set style data histograms\nset style histogram rowstacked\n"
     << "set style fill solid 0.8 border -1\nset boxwidth 0.8\n"
     << "set xtics rotate by -45\nset ylabel 'alerts'\nset yrange [0:*]\n";
  if (days.empty()) {
    gp << "set label 'no alerts in the period' at graph 0.5, graph 0.5 center\n"
       << "set xrange [0:1]\nplot NaN notitle\n";
  } else {
    gp << "plot 'alerts_per_day.dat' using 2:xtic(1) title 'confirmed', "
          "'' using 3 title 'rejected', '' using 4 title 'pending'\n";
  }
  gp << "\nunset style\nunset label\nset xtics norotate\nset xrange [0:*]\n"
     << "set output 'review_delay.png'\n"
     << "set title " << quoted("Time to review: " + caption) << " noenhanced\n"
     << "set xlabel 'minutes from the alert to the review that decided it'\n"
     << "set ylabel 'share of the decided alerts'\nset yrange [0:1]\n";
  if (review_delays_s.empty()) {
    gp << "set label 'no alert was decided' at graph 0.5, graph 0.5 center\n"
       << "plot NaN notitle\n";
  } else {
    gp << "plot 'review_delay.dat' using 1:2 with steps lw 2 title "
       << quoted(std::to_string(review_delays_s.size()) + " decided alerts") << "\n";
  }
  gp.close();
  check_written(gp, root / "report.gp");
  run_gnuplot(root / "report.gp", root / "gnuplot.log");
  return {root / "alerts_per_day.png", root / "review_delay.png"};
}

std::vector<std::filesystem::path> write_plots(const std::filesystem::path& dir,
                                               const PlotInputs& inputs) {
  const auto root = plot_folder(dir);
  const std::size_t verification_points =
      write_curve(root / "det_verification.dat", verification_curve(inputs.pairs));
  const std::size_t identification_points =
      write_curve(root / "det_identification.dat", identification_curve(inputs.searches));
  std::size_t same = 0, different = 0;
  write_histogram(root / "distances.dat", inputs.pairs, same, different);

  std::ofstream gp(root / "plots.gp");
  gp << "# Written by frs eval --plot; redraw with: gnuplot plots.gp\n"
     << "set terminal pngcairo size 900,650 font ',11'\n"
     << "set grid\nset key top right\n"
     << "cd " << quoted(root.string()) << "\n\n"
     << "set output 'det.png'\n"
     << "set title " << quoted("Error trade-off (DET): " + inputs.caption) << " noenhanced\n"
     << "set logscale xy\n"
     << "set xlabel 'false accepts: FMR (comparisons) or FPIR (searches)'\n"
     << "set ylabel 'false rejects: FNMR or FNIR'\n";
  std::vector<std::string> curves;
  if (verification_points > 0) {
    curves.push_back("'det_verification.dat' using 2:3 with lines lw 2 title " +
                     quoted("verification (FMR vs FNMR)"));
  }
  if (identification_points == 0 && !inputs.searches.empty()) {
    gp << "set label 'open-set identification: no threshold gives both false alerts and "
          "misses' at graph 0.02, graph 0.04 noenhanced\n";
  }
  if (identification_points > 0) {
    curves.push_back("'det_identification.dat' using 2:3 with lines lw 2 title " +
                     quoted("open-set identification (FPIR vs FNIR)"));
  }
  if (curves.empty()) {
    // Nothing to draw on log axes: no threshold gives both kinds of error.
    gp << "set label 'no threshold gives both kinds of error: nothing to draw on log axes' "
          "at graph 0.5, graph 0.5 center\n"
       << "set xrange [1e-4:1]\nset yrange [1e-4:1]\nplot NaN notitle\n";
  } else {
    gp << "plot ";
    for (std::size_t i = 0; i < curves.size(); ++i) gp << (i ? ", " : "") << curves[i];
    gp << "\n";
  }
  gp << "\nunset logscale\nunset label\n"
     << "set output 'distances.png'\n"
     << "set title " << quoted("Distances: " + inputs.caption) << " noenhanced\n"
     << "set xlabel 'distance between two photos (lower = more alike)'\n"
     << "set ylabel 'share of the comparisons'\n"
     << "set xrange [0:*]\nset yrange [0:*]\n"
     << "set arrow from " << inputs.threshold << ", graph 0 to " << inputs.threshold
     << ", graph 1 nohead dashtype 2 lw 2\n"
     << "set label " << quoted("max_distance " + std::to_string(inputs.threshold).substr(0, 5))
     << " at " << inputs.threshold << ", graph 0.95 offset 0.5,0 noenhanced\n"
     << "plot 'distances.dat' using 1:2 with steps lw 2 title "
     << quoted("same person (" + std::to_string(same) + ")") << ", "
     << "'distances.dat' using 1:3 with steps lw 2 title "
     << quoted("different people (" + std::to_string(different) + ")") << "\n";
  gp.close();
  if (!gp) {
    throw Error(ErrorCode::kInvalidArgument, "cannot write '" + (root / "plots.gp").string() + "'");
  }
  run_gnuplot(root / "plots.gp", root / "gnuplot.log");
  return {root / "det.png", root / "distances.png"};
}

}  // namespace frs
