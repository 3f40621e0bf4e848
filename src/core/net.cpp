#include "frs/core/net.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "frs/core/error.h"

namespace frs {

std::string host_of_address(std::string_view address) {
  if (address.rfind("unix:", 0) == 0 || address.rfind("unix-abstract:", 0) == 0) return "unix";
  if (address.rfind("dns:", 0) == 0) address.remove_prefix(4);
  if (address.rfind("ipv4:", 0) == 0) address.remove_prefix(5);
  if (address.rfind("ipv6:", 0) == 0) address.remove_prefix(5);
  if (!address.empty() && address.front() == '[') {
    const auto close = address.find(']');
    return std::string(address.substr(1, close == std::string_view::npos ? close : close - 1));
  }
  const auto colon = address.rfind(':');
  // More than one colon and no brackets: a bare IPv6 address without a port.
  if (colon != std::string_view::npos && address.find(':') != colon) return std::string(address);
  return std::string(address.substr(0, colon));
}

bool is_loopback_host(std::string_view host) {
  if (host == "unix" || host == "localhost") return true;
  const std::string text(host);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

void check_tls_key_pair(const std::string& certificate_pem, const std::string& key_pem,
                        const std::string& certificate_file, const std::string& key_file) {
  const auto bio_of = [](const std::string& pem) {
    return std::unique_ptr<BIO, decltype(&BIO_free)>(
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  };
  // A passphrase callback that gives none: an encrypted key fails instead of prompting.
  const auto no_passphrase = [](char*, int, int, void*) { return 0; };
  const auto certificate_bio = bio_of(certificate_pem);
  const std::unique_ptr<X509, decltype(&X509_free)> certificate(
      PEM_read_bio_X509(certificate_bio.get(), nullptr, no_passphrase, nullptr), &X509_free);
  const auto key_bio = bio_of(key_pem);
  const std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_passphrase, nullptr), &EVP_PKEY_free);
  ERR_clear_error();
  if (!certificate) {
    throw Error(ErrorCode::kInvalidArgument,
                "--tls-cert '" + certificate_file +
                    "' holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
  }
  if (!key) {
    throw Error(ErrorCode::kInvalidArgument,
                "--tls-key '" + key_file +
                    "' holds no PEM private key, or one protected by a passphrase (frs-server "
                    "reads unencrypted keys only: openssl pkey -in KEY -out PLAIN-KEY)");
  }
  if (X509_check_private_key(certificate.get(), key.get()) != 1) {
    ERR_clear_error();
    throw Error(ErrorCode::kInvalidArgument,
                "--tls-key '" + key_file + "' is not the private key of --tls-cert '" +
                    certificate_file +
                    "': they do not match (give the key the certificate was "
                    "made for)");
  }
}

}  // namespace frs
