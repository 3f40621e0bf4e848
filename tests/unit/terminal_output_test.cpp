#include "../../src/bin/terminal_output.h"

#include <gtest/gtest.h>

#include <sstream>

namespace frs::cli {
namespace {

// A stored name with escape sequences (from before names were checked, or from a
// library's error text) must not reach the terminal raw.
TEST(TerminalOutput, EscapesControlCharactersInEveryLinePrinted) {
  std::ostringstream captured;
  {
    const TerminalSafeBuffer safe(captured);
    captured << "watchlist \x1b[2J\x1b]0;owned\x07 ok\n";
    captured << "Zoë\tand a line without its end";
  }
  EXPECT_EQ(captured.str(),
            "watchlist \\x1b[2J\\x1b]0;owned\\x07 ok\nZoë\tand a line without its end");
}

}  // namespace
}  // namespace frs::cli
