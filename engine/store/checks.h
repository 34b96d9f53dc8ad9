// Checks every Store implementation makes on what it is given (see store.h), kept in one place
// so the SQLite and PostgreSQL stores refuse the same things with the same words. Not for use
// outside engine/store.
#pragma once

#include <string_view>

#include "engine/common/result.h"
#include "engine/store/store.h"

namespace herald::store {

// invalid_argument, naming `what` ("workspace id") and the bad id, unless `id` is a slug: 1 to
// 63 of [a-z0-9-_.], starting with a letter or digit.
Status check_slug(std::string_view what, std::string_view id);

// invalid_argument unless `role` is admin, editor, approver, viewer or influencer.
Status check_role(std::string_view role);

// invalid_argument for a Commit whose lease fields do not fit together: `release` without a
// fence, `lease_inserted` without runs or with an empty owner.
Status check_lease_fields(const Commit& commit);

// `aborted` unless `stored_token` is the fence's token: the run was claimed again since.
Status check_lease_token(const RunLease& fence, int64_t stored_token);

// In milliseconds: leases that end at or before this are over for the claim (its `now`, or every
// lease for a take-over).
int64_t lease_cutoff(const ClaimRequest& request);

// The failed_precondition of a schedule mark at or before the stored one.
Error schedule_mark_behind(const ScheduleMark& mark);

}  // namespace herald::store
