// A property's history a page at a time, from the change signatures the temporal index keeps
// per event (temporal_index.h, ChangeSignature): only the events that may have changed the
// property's top-level member are read from the log, and only that member's value is parsed.
// The cost follows the intervals answered (and the events that touch the member), not the
// versions of the document. docs/temporal.md, "How queries are answered", explains it for users.
#ifndef TIMETRAIL_STORE_PROPERTY_HISTORY_H_
#define TIMETRAIL_STORE_PROPERTY_HISTORY_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "query/document.h"
#include "storage/kv_engine.h"
#include "timetrail/temporal.h"

namespace timetrail::temporal {

// One page: where to start, how much to give.
struct HistoryPageRequest {
  std::string_view stream;
  std::string_view cursor;  // from a previous page's next_cursor; empty: from the beginning
  std::size_t limit = 0;    // intervals in the page
};

// System time: the stream's events in revision order, up to revision "last" (visible). Fills
// out->intervals and out->next_cursor.
Status SystemTimeHistory(const KvEngine& engine, const HistoryPageRequest& request,
                         query::PointerTracker tracker, Revision last, PropertyHistory* out);

// Valid time: the document events with position <= "known", in (valid_from, position) order,
// where "last_known" is the stream's last revision at or before "known".
Status ValidTimeHistory(const KvEngine& engine, const HistoryPageRequest& request,
                        query::PointerTracker tracker, Revision last_known, Position known,
                        PropertyHistory* out);

}  // namespace timetrail::temporal

#endif  // TIMETRAIL_STORE_PROPERTY_HISTORY_H_
