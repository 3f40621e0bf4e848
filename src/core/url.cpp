#include "frs/core/url.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace frs {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool secret_parameter(std::string_view name) {
  static constexpr std::array<std::string_view, 11> kSecret = {
      "pass", "pwd",        "token", "secret",  "key",   "auth",
      "sig",  "credential", "cred",  "session", "apikey"};
  const std::string n = lower(name);
  return std::any_of(kSecret.begin(), kSecret.end(),
                     [&](std::string_view s) { return n.find(s) != std::string::npos; });
}

// Where the query starts, or the end: the first '?' or '#' after the authority's start.
std::size_t query_start(std::string_view url, std::size_t from) {
  const auto q = url.find_first_of("?#", from);
  return q == std::string_view::npos ? url.size() : q;
}

// Appends one "name=value" (of a query or a path), its value as *** when the name looks
// secret.
void append_parameter(std::string& out, std::string_view pair) {
  const auto equals = pair.find('=');
  if (equals != std::string_view::npos && secret_parameter(pair.substr(0, equals))) {
    out.append(pair.substr(0, equals + 1));
    out += "***";
  } else {
    out.append(pair);
  }
}

std::string redact_query(std::string_view query) {
  // query = "?a=1&password=x#frag" (or "" / "#frag")
  std::string out;
  std::size_t i = 0;
  while (i < query.size()) {
    const char c = query[i];
    if (c == '#') {
      out.append(query.substr(i));  // fragments never reach the server
      break;
    }
    if (c == '?' || c == '&' || c == ';') {
      out += c;
      ++i;
      continue;
    }
    const auto end = std::min(query.find_first_of("&;#", i), query.size());
    append_parameter(out, query.substr(i, end - i));
    i = end;
  }
  return out;
}

// Path parameters, as in "/live;password=x;res=hd/track1": each ";name=value" whose name
// looks secret gets its value replaced (the value ends at the next ';' or '/').
std::string redact_path_parameters(std::string_view path) {
  std::string out;
  std::size_t i = 0;
  while (i < path.size()) {
    const auto semicolon = path.find(';', i);
    if (semicolon == std::string_view::npos) {
      out.append(path.substr(i));
      break;
    }
    out.append(path.substr(i, semicolon + 1 - i));
    const auto end = std::min(path.find_first_of(";/", semicolon + 1), path.size());
    append_parameter(out, path.substr(semicolon + 1, end - semicolon - 1));
    i = end;
  }
  return out;
}

}  // namespace

std::string redact_url(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::string(url);
  const std::size_t authority = scheme_end + 3;
  const std::size_t query = query_start(url, authority);
  std::string head(url.substr(0, query));
  // The user info ends at the last '@' before the query, wherever '/' falls: a password
  // typed with a '/' in it is still a password.
  const auto at = head.rfind('@');
  std::size_t host = authority;
  if (at != std::string::npos && at >= authority) {
    const auto colon = head.find(':', authority);
    if (colon != std::string::npos && colon < at) {
      head = head.substr(0, colon + 1) + "***" + head.substr(at);
    }
    host = head.rfind('@') + 1;
  }
  // The path, after the host: its ";name=value" parameters (RTSP servers take
  // rtsp://cam/live;password=...).
  const auto path = head.find('/', host);
  if (path != std::string::npos) {
    head = head.substr(0, path) + redact_path_parameters(std::string_view(head).substr(path));
  }
  return head + redact_query(url.substr(query));
}

std::string redact_urls_in(std::string_view text) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto mark = text.find("://", i);
    if (mark == std::string_view::npos) {
      out.append(text.substr(i));
      break;
    }
    // The scheme: letters, digits, + - . before "://".
    std::size_t start = mark;
    while (start > i &&
           (std::isalnum(static_cast<unsigned char>(text[start - 1])) || text[start - 1] == '+' ||
            text[start - 1] == '-' || text[start - 1] == '.')) {
      --start;
    }
    std::size_t end = mark + 3;
    while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end])) &&
           text[end] != '"' && text[end] != '\'' && text[end] != '>' && text[end] != ')') {
      ++end;
    }
    out.append(text.substr(i, start - i));
    out += redact_url(text.substr(start, end - start));
    i = end;
  }
  return out;
}

std::optional<UrlParts> split_url(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::nullopt;
  UrlParts parts;
  parts.scheme = lower(url.substr(0, scheme_end));
  const std::size_t authority = scheme_end + 3;
  const std::size_t query = query_start(url, authority);
  std::string_view head = url.substr(authority, query - authority);
  const auto at = head.rfind('@');
  if (at != std::string_view::npos) {
    parts.user_info = std::string(head.substr(0, at));
    head.remove_prefix(at + 1);
  }
  const auto slash = head.find('/');
  std::string_view host_port = head.substr(0, slash);
  parts.rest = std::string(slash == std::string_view::npos ? "" : head.substr(slash)) +
               std::string(url.substr(query));
  if (!host_port.empty() && host_port.front() == '[') {
    const auto close = host_port.find(']');
    parts.host = std::string(
        host_port.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1));
    if (close != std::string_view::npos && close + 1 < host_port.size() &&
        host_port[close + 1] == ':') {
      parts.port = std::string(host_port.substr(close + 2));
    }
  } else {
    const auto colon = host_port.rfind(':');
    parts.host = std::string(host_port.substr(0, colon));
    if (colon != std::string_view::npos) parts.port = std::string(host_port.substr(colon + 1));
  }
  parts.host = lower(parts.host);
  return parts;
}

}  // namespace frs
