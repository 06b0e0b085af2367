// SHA-256 (OpenSSL's libcrypto) of bytes and of files, as lowercase hex.
#pragma once

#include <string>
#include <string_view>

namespace medgpt::util {

std::string sha256_hex(std::string_view bytes);
std::string sha256_file(const std::string& path);  // streams the file; util::Error names it

}  // namespace medgpt::util
