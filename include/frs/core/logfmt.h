#pragma once
// Log lines as logfmt (`key=value` pairs, e.g. `camera=gate event=failed error="..."`):
// readable by people, and parsed as fields by log shippers (Loki, Vector, Fluent Bit).

#include <string>
#include <string_view>

namespace frs {

// `value` as a logfmt value: as it is when it is a plain word, else in double quotes with
// quotes, backslashes and control characters escaped.
std::string logfmt_value(std::string_view value);

// A camera URL fit for logs: a password in it (rtsp://user:secret@host/) is replaced by
// `***`, so logs never carry camera credentials.
std::string url_for_logs(std::string_view url);

}  // namespace frs
