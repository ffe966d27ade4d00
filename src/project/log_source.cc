#include "project/log_source.h"

#include <thread>

namespace timetrail::project {
namespace {

class StoreSource final : public LogSource {
 public:
  StoreSource(EventStore& store, std::string description)
      : store_(store), description_(std::move(description)) {}

  Result<LogPage> ReadLog(Position from, std::size_t max) override {
    ReadLogOptions o;
    o.from_position = from;
    o.max_count = max;
    return store_.ReadLog(o);
  }

  Result<std::vector<RecordedEvent>> ReadStream(std::string_view stream,
                                                Revision through) override {
    std::vector<RecordedEvent> out;
    ReadStreamOptions o;
    o.from_revision = 0;
    o.max_count = 1000;
    while (true) {
      TT_ASSIGN_OR_RETURN(std::vector<RecordedEvent> page, store_.ReadStream(stream, o));
      for (RecordedEvent& e : page) {
        if (e.revision > through) return out;
        out.push_back(std::move(e));
      }
      if (page.size() < o.max_count || out.back().revision >= through) return out;
      o.from_revision = out.back().revision + 1;
    }
  }

  Result<EntityState> StateAt(std::string_view stream, Revision revision) override {
    return store_.GetEntity(stream, EntityQuery::AtRevision(revision));
  }

  Status WaitPast(Position position, std::chrono::milliseconds timeout) override {
    if (store_.IsReadOnly()) {
      // A read-only store learns of its writer's commits only when it looks again.
      std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(100)));
      return store_.Refresh();
    }
    Status s = store_.WaitForPosition(position + 1, timeout);
    return s.code() == StatusCode::kTimeout || s.code() == StatusCode::kUnavailable ? Status::Ok()
                                                                                    : s;
  }

  std::string Describe() const override { return description_; }

 private:
  EventStore& store_;
  std::string description_;
};

}  // namespace

std::unique_ptr<LogSource> StoreLogSource(EventStore& store, std::string description) {
  return std::make_unique<StoreSource>(store, std::move(description));
}

}  // namespace timetrail::project
