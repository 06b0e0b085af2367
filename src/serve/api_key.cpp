#include "serve/api_key.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

namespace medgpt::serve {

namespace {

std::string digest(const std::string& s) {
  std::string d(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), reinterpret_cast<unsigned char*>(d.data()));
  return d;
}

}  // namespace

ApiKey::ApiKey(const std::string& key) : expected_(key.empty() ? "" : digest("Bearer " + key)) {}

bool ApiKey::accepts(const std::string& authorization_header) const {
  if (!required()) return true;
  return CRYPTO_memcmp(digest(authorization_header).data(), expected_.data(), expected_.size()) == 0;
}

}  // namespace medgpt::serve
