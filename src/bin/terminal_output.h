#pragma once
// What the CLI prints comes partly from the server (watchlist names, descriptions, notes,
// camera errors), and a stored name could carry terminal escape sequences that move the
// cursor, rewrite earlier lines or retitle the window. Every line written to std::cout and
// std::cerr goes through frs::escape_for_terminal: control characters and invalid UTF-8
// show as \xNN. (JSON output is unaffected: JSON escapes control characters itself.)

#include <iostream>
#include <streambuf>
#include <string>

#include "frs/core/text.h"

namespace frs::cli {

class TerminalSafeBuffer : public std::streambuf {
 public:
  explicit TerminalSafeBuffer(std::ostream& stream) : stream_(stream), target_(stream.rdbuf()) {
    stream_.rdbuf(this);
  }
  ~TerminalSafeBuffer() override {
    sync();
    stream_.rdbuf(target_);
  }
  TerminalSafeBuffer(const TerminalSafeBuffer&) = delete;
  TerminalSafeBuffer& operator=(const TerminalSafeBuffer&) = delete;

 protected:
  int_type overflow(int_type c) override {
    if (traits_type::eq_int_type(c, traits_type::eof())) return sync() == 0 ? 0 : c;
    line_ += traits_type::to_char_type(c);
    // A whole line at a time, so that a character split over two writes is seen whole.
    if (c == '\n') return sync() == 0 ? c : traits_type::eof();
    return c;
  }
  int sync() override {
    if (line_.empty()) return target_->pubsync();
    const std::string shown = escape_for_terminal(line_);
    line_.clear();
    const auto written = target_->sputn(shown.data(), static_cast<std::streamsize>(shown.size()));
    if (written != static_cast<std::streamsize>(shown.size())) return -1;
    return target_->pubsync();
  }

 private:
  std::ostream& stream_;
  std::streambuf* target_;
  std::string line_;
};

}  // namespace frs::cli
