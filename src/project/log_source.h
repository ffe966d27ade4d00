// Where a projection reads the log: a store opened in this process, or a server over HTTP
// (`timetrail project --server`, src/cli/http_log_source.cc). The projections need only these
// few reads, so both give them the same answers.
#ifndef TIMETRAIL_PROJECT_LOG_SOURCE_H_
#define TIMETRAIL_PROJECT_LOG_SOURCE_H_

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "timetrail/store.h"

namespace timetrail::project {

class LogSource {
 public:
  virtual ~LogSource() = default;

  // Up to "max" events of the log from position "from" on, with the head it saw.
  virtual Result<LogPage> ReadLog(Position from, std::size_t max) = 0;
  // The events of "stream" with revisions 0 to "through", in revision order.
  virtual Result<std::vector<RecordedEvent>> ReadStream(std::string_view stream,
                                                        Revision through) = 0;
  // The state of "stream" after its revision "revision".
  virtual Result<EntityState> StateAt(std::string_view stream, Revision revision) = 0;
  // Returns once the log may have grown past "position", or after "timeout".
  virtual Status WaitPast(Position position, std::chrono::milliseconds timeout) = 0;
  // "data directory ./x", "server http://...", for messages.
  virtual std::string Describe() const = 0;
};

// Reads "store" (which must outlive the source). A read-only store is refreshed while waiting,
// so it sees what its writer adds.
std::unique_ptr<LogSource> StoreLogSource(EventStore& store, std::string description);

}  // namespace timetrail::project

#endif  // TIMETRAIL_PROJECT_LOG_SOURCE_H_
