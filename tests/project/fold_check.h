// Compares a projection's tables in the target database with what the store itself answers
// for the same streams (its state, its property history in system and in valid time), so a
// test learns whether the tables are the fold of the log without restating the projection's
// own logic.
#ifndef TIMETRAIL_TESTS_PROJECT_FOLD_CHECK_H_
#define TIMETRAIL_TESTS_PROJECT_FOLD_CHECK_H_

#include <string>
#include <vector>

#include "project/config.h"
#include "timetrail/store.h"

namespace timetrail::testing {

// The differences between "spec"'s tables at "target_url" and "store", up to the projection's
// checkpoint (which must be the store's head); empty when they agree.
std::vector<std::string> CompareWithStore(EventStore& store, const std::string& target_url,
                                          const project::ProjectionSpec& spec);

}  // namespace timetrail::testing

#endif  // TIMETRAIL_TESTS_PROJECT_FOLD_CHECK_H_
