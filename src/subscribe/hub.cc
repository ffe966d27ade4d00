#include "subscribe/hub.h"

#include <charconv>
#include <string>
#include <utility>

namespace timetrail::subscribe {

LogCursor::LogCursor(const EventStore* store, Position from, LogFilter filter,
                     std::size_t page_size)
    : store_(store), next_(from == 0 ? 1 : from), filter_(std::move(filter)),
      page_size_(page_size == 0 ? 1 : page_size) {}

Result<std::vector<RecordedEvent>> LogCursor::ReadNext() {
  ReadLogOptions options;
  options.from_position = next_;
  options.max_count = page_size_;
  options.filter = filter_;
  // With a filter, bound the scan too, so a rare match does not make one call read the log.
  options.max_scan = filter_.empty() ? 0 : page_size_ * 16;
  TT_ASSIGN_OR_RETURN(LogPage page, store_->ReadLog(options));
  if (page.next_position > next_) next_ = page.next_position;
  if (!page.events.empty() && page.events.back().position + 1 > next_) {
    next_ = page.events.back().position + 1;
  }
  caught_up_ = next_ > page.head_position;
  return std::move(page.events);
}

SubscriptionHub::SubscriptionHub(EventStore* store) : store_(store) {
  listener_id_ = store_->AddCommitListener([this](Position p) { OnCommit(p); });
}

SubscriptionHub::~SubscriptionHub() { store_->RemoveCommitListener(listener_id_); }

std::uint64_t SubscriptionHub::Watch(std::function<void(Position)> wake) {
  std::lock_guard<std::mutex> lock(mu_);
  std::uint64_t id = next_id_++;
  watchers_.emplace(id, std::move(wake));
  return id;
}

void SubscriptionHub::Unwatch(std::uint64_t id) {
  // Taking the lock waits out a concurrent OnCommit that may be calling this wake-up.
  std::lock_guard<std::mutex> lock(mu_);
  watchers_.erase(id);
}

std::size_t SubscriptionHub::watchers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return watchers_.size();
}

void SubscriptionHub::OnCommit(Position p) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, wake] : watchers_) wake(p);
}

Status SubscriptionHub::ValidateConsumerName(std::string_view name) {
  if (name.empty() || name.size() > 200) {
    return Status::InvalidArgument("consumer name must be 1 to 200 characters long");
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      return Status::InvalidArgument("consumer name '" + std::string(name) +
                                     "' may contain only letters, digits, '.', '_' and '-'");
    }
  }
  return Status::Ok();
}

Result<std::optional<Position>> SubscriptionHub::GetConsumer(std::string_view name) const {
  TT_RETURN_IF_ERROR(ValidateConsumerName(name));
  TT_ASSIGN_OR_RETURN(std::optional<std::string> value,
                      store_->GetCheckpoint("consumer/" + std::string(name)));
  if (!value) return std::optional<Position>();
  Position p = 0;
  auto [ptr, ec] = std::from_chars(value->data(), value->data() + value->size(), p);
  if (ec != std::errc() || ptr != value->data() + value->size()) {
    return Status::Corruption("checkpoint of consumer '" + std::string(name) +
                              "' is not a position: '" + *value + "'");
  }
  return std::optional<Position>(p);
}

Status SubscriptionHub::AckConsumer(std::string_view name, Position position) {
  TT_RETURN_IF_ERROR(ValidateConsumerName(name));
  Position head = store_->LastPosition();
  if (position > head) {
    return Status::InvalidArgument("position " + std::to_string(position) +
                                   " is beyond the last position " + std::to_string(head) +
                                   "; acknowledge only positions you have received");
  }
  return store_->SetCheckpoint("consumer/" + std::string(name), std::to_string(position));
}

}  // namespace timetrail::subscribe
