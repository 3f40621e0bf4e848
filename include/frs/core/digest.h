#pragma once
// Hashes and secrets, from OpenSSL: the content hash of photos and searched images, the
// stored form of API tokens, and the links of the audit log's hash chain.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace frs {

// SHA-256 of `bytes`, as 64 lowercase hex digits.
std::string sha256_hex(std::span<const std::uint8_t> bytes);
std::string sha256_hex(std::string_view bytes);

// `count` bytes from the operating system's CSPRNG (OpenSSL RAND_bytes, seeded by the
// kernel); throws Error(kInternal) when it cannot deliver.
std::string random_bytes(std::size_t count);

// `bytes` in the URL-safe base64 alphabet (RFC 4648 section 5) without padding.
std::string base64url(std::string_view bytes);

// Whether two strings are equal, in time that depends only on their lengths.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace frs
