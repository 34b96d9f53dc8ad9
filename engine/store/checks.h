// Checks every Store implementation makes on what it is given (see store.h), kept in one place
// so the SQLite and PostgreSQL stores refuse the same things with the same words. Not for use
// outside engine/store.
#pragma once

#include <string_view>

#include "engine/common/result.h"

namespace herald::store {

// invalid_argument, naming `what` ("workspace id") and the bad id, unless `id` is a slug: 1 to
// 63 of [a-z0-9-_.], starting with a letter or digit.
Status check_slug(std::string_view what, std::string_view id);

// invalid_argument unless `role` is admin, editor, approver, viewer or influencer.
Status check_role(std::string_view role);

}  // namespace herald::store
