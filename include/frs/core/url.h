#pragma once
// Camera URLs carry credentials (rtsp://user:password@host/..., ?password=...). frs stores
// and uses them, and never shows them: every API answer, log line and error message goes
// through the one redactor here.

#include <optional>
#include <string>
#include <string_view>

namespace frs {

// `url` with its secrets replaced by ***: the password of the user info (everything between
// the first ':' after "://" and the last '@' before the query, so a password holding '/',
// '@' or ':' is hidden whole), and the values of query parameters whose names look secret
// (password, passwd, pwd, pass, token, secret, key, auth, signature, sig, credential;
// any case, anywhere in the name), in the query (?password=x&...) and as path parameters
// (/live;password=x). A URL without secrets is returned as it is.
std::string redact_url(std::string_view url);

// `text` (an error message, a log line) with every URL in it ("scheme://..." up to white
// space or a quote) redacted as above.
std::string redact_urls_in(std::string_view text);

struct UrlParts {
  std::string scheme;     // lower case: "rtsp"
  std::string user_info;  // "user:password" ("" when none)
  std::string host;       // "10.0.0.5", "cam.example", "::1" (IPv6 without brackets)
  std::string port;       // "" when none
  std::string rest;       // path, query and fragment: "/stream1?x=1"
};
// Splits "scheme://[user_info@]host[:port][rest]"; nullopt when `url` has no "://".
std::optional<UrlParts> split_url(std::string_view url);

}  // namespace frs
