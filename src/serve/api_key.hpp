// `Authorization: Bearer KEY` checked in constant time: the digests of the header and of the
// expected value are compared with CRYPTO_memcmp, so neither the position of the first wrong byte
// nor the key's length shows in the response time.
#pragma once

#include <string>

namespace medgpt::serve {

class ApiKey {
 public:
  explicit ApiKey(const std::string& key);  // "" = no key required
  bool required() const { return !expected_.empty(); }
  bool accepts(const std::string& authorization_header) const;

 private:
  std::string expected_;  // SHA-256 of "Bearer KEY", raw bytes
};

}  // namespace medgpt::serve
