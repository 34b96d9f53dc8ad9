// The OpenAPI 3 document of the REST API, served at /api/v1/openapi.json. Its source is
// engine/server/openapi.json, embedded at build time; a test checks that its paths and the
// router's routes are the same set.
#pragma once

#include <string_view>

namespace herald::server {

std::string_view openapi_document();

}  // namespace herald::server
