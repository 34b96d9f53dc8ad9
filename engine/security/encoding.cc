#include "engine/security/encoding.h"

#include <array>
#include <cstdint>

namespace herald::security {

namespace {

constexpr std::string_view kHexDigits = "0123456789abcdef";
constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kBase64UrlAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// 255 marks a character outside the alphabet.
constexpr std::array<uint8_t, 256> make_reverse(std::string_view alphabet) {
  std::array<uint8_t, 256> table{};
  for (auto& entry : table) entry = 255;
  for (size_t i = 0; i < alphabet.size(); ++i) {
    table[static_cast<unsigned char>(alphabet[i])] = static_cast<uint8_t>(i);
  }
  return table;
}

constexpr auto kBase64Reverse = make_reverse(kBase64Alphabet);
constexpr auto kBase64UrlReverse = make_reverse(kBase64UrlAlphabet);

std::string encode(std::string_view bytes, std::string_view alphabet, bool pad) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t index) {
    return static_cast<uint32_t>(static_cast<unsigned char>(bytes[index]));
  };
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t chunk = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += alphabet[chunk >> 18 & 63];
    out += alphabet[chunk >> 12 & 63];
    out += alphabet[chunk >> 6 & 63];
    out += alphabet[chunk & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t chunk = byte(i) << 16;
    out += alphabet[chunk >> 18 & 63];
    out += alphabet[chunk >> 12 & 63];
    if (pad) out += "==";
  } else if (rest == 2) {
    uint32_t chunk = byte(i) << 16 | byte(i + 1) << 8;
    out += alphabet[chunk >> 18 & 63];
    out += alphabet[chunk >> 12 & 63];
    out += alphabet[chunk >> 6 & 63];
    if (pad) out += '=';
  }
  return out;
}

// Decodes unpadded groups; the caller has already stripped and checked padding. Refuses
// non-canonical encodings (unused low bits set in the last character) so that every byte string
// has exactly one accepted text form.
Result<std::string> decode(std::string_view text, const std::array<uint8_t, 256>& reverse,
                           std::string_view what) {
  if (text.size() % 4 == 1) {
    return make_error(ErrorCode::invalid_argument,
                      "not valid " + std::string(what) + ": wrong length");
  }
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    uint8_t value = reverse[static_cast<unsigned char>(c)];
    if (value == 255) {
      return make_error(ErrorCode::invalid_argument,
                        "not valid " + std::string(what) + ": unexpected character");
    }
    buffer = buffer << 6 | value;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>(buffer >> bits & 0xff);
    }
  }
  if (bits > 0 && (buffer & ((1u << bits) - 1)) != 0) {
    return make_error(ErrorCode::invalid_argument,
                      "not valid " + std::string(what) + ": non-canonical final character");
  }
  return out;
}

}  // namespace

std::string hex_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out += kHexDigits[b >> 4];
    out += kHexDigits[b & 0x0f];
  }
  return out;
}

Result<std::string> hex_decode(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    return make_error(ErrorCode::invalid_argument, "not valid hex: odd number of digits");
  }
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int high = hex_value(hex[i]);
    int low = hex_value(hex[i + 1]);
    if (high < 0 || low < 0) {
      return make_error(
          ErrorCode::invalid_argument,
          "not valid hex: non-hex character at position " + std::to_string(high < 0 ? i : i + 1));
    }
    out += static_cast<char>(high << 4 | low);
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  return encode(bytes, kBase64Alphabet, true);
}

Result<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return make_error(ErrorCode::invalid_argument,
                      "not valid base64: length is not a multiple of 4");
  }
  size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') {
    ++padding;
  }
  return decode(text.substr(0, text.size() - padding), kBase64Reverse, "base64");
}

std::string base64url_encode(std::string_view bytes) {
  return encode(bytes, kBase64UrlAlphabet, false);
}

Result<std::string> base64url_decode(std::string_view text) {
  return decode(text, kBase64UrlReverse, "base64url");
}

}  // namespace herald::security
