// Random bytes, ids and nonces for anything an attacker must not guess: API tokens, secret
// nonces, webhook secrets, master keys, opaque ids. Everything comes from OpenSSL's CSPRNG
// (RAND_bytes), never from <random>, whose engines are predictable from their output.
//
// These functions do not return an error: if the CSPRNG fails (it practically cannot on Linux,
// where it is seeded from getrandom) they throw std::runtime_error, because handing out a
// predictable token is the one outcome that must be impossible, and a throw guarantees it.
#pragma once

#include <cstddef>
#include <string>

namespace herald::security {

// `count` random bytes.
std::string random_bytes(size_t count);
// `byte_count` random bytes as lowercase hex (2 * byte_count characters).
std::string random_hex(size_t byte_count);
// `byte_count` random bytes as unpadded base64url: compact and safe in URLs and file names.
std::string random_base64url(size_t byte_count);
// `length` characters drawn uniformly from [0-9A-Za-z] (about 5.95 bits each). Used where an
// id must survive double-click selection and contain no separator characters ('-', '_').
std::string random_base62(size_t length);

// An opaque random id: 16 bytes (128 bits) as 32 hex characters, enough that ids generated
// independently by several processes never collide.
std::string random_id();

}  // namespace herald::security
