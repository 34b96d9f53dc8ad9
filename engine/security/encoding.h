// Text encodings for bytes that Herald stores or shows: hex (key files, hashes, HMAC
// signatures), standard base64 (sealed secrets in the database, master keys) and unpadded
// base64url (ids and nonces that go into URLs). The decoders are strict — no whitespace, no
// missing or extra padding, no stray characters — because every caller is reading key material
// or a signature, where a lenient decoder turns typos into silently different values.
#pragma once

#include <string>
#include <string_view>

#include "engine/common/result.h"

namespace herald::security {

// Lowercase hex, two characters per byte.
std::string hex_encode(std::string_view bytes);
// Accepts upper- and lowercase digits; an odd length or a non-hex character is an
// invalid_argument error. The message says what is wrong but never echoes the input, which may
// be a key.
Result<std::string> hex_decode(std::string_view hex);

// RFC 4648 section 4, with '=' padding.
std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);

// RFC 4648 section 5 ('-' and '_'), without padding: safe in URLs, headers and file names.
std::string base64url_encode(std::string_view bytes);
// Accepts the unpadded form only (what base64url_encode writes).
Result<std::string> base64url_decode(std::string_view text);

}  // namespace herald::security
