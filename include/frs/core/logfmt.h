#pragma once
// Log lines as logfmt (`key=value` pairs, e.g. `camera=gate event=failed error="..."`):
// readable by people, and parsed as fields by log shippers (Loki, Vector, Fluent Bit).

#include <string>
#include <string_view>

namespace frs {

// `value` as a logfmt value: as it is when it is a plain word, else in double quotes with
// quotes, backslashes and control characters escaped.
std::string logfmt_value(std::string_view value);

}  // namespace frs
