#include "capture/ordered_writes.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <unordered_map>

namespace timetrail::capture {

struct OrderedWrites::Answers {
  Answers() : wake_fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~Answers() {
    if (wake_fd >= 0) close(wake_fd);
  }
  Answers(const Answers&) = delete;
  Answers& operator=(const Answers&) = delete;

  std::mutex mu;
  std::condition_variable cv;
  std::unordered_map<std::uint64_t, Status> done;  // GUARDED_BY(mu)
  // Readable once an answer came since it was last read, so that the streaming loop can wait
  // for the source's changes and the store's answers at once.
  const int wake_fd;
};

OrderedWrites::OrderedWrites(EventStore* store, std::string checkpoint_name)
    : store_(store),
      checkpoint_name_(std::move(checkpoint_name)),
      answers_(std::make_shared<Answers>()) {}

OrderedWrites::~OrderedWrites() = default;

void OrderedWrites::Submit(Transaction tx, std::string value, Write write, std::string what) {
  Entry e;
  e.seq = next_seq_++;
  e.write = write;
  store_->TransactWithCheckpointAsync(
      std::move(tx), checkpoint_name_, value, last_value_,
      [answers = answers_, seq = e.seq, what = std::move(what)](Result<Committed> r) {
        std::lock_guard<std::mutex> lock(answers->mu);
        answers->done[seq] = r.ok() ? Status::Ok() : r.status().WithPrefix(what);
        answers->cv.notify_all();
        if (answers->wake_fd >= 0) eventfd_write(answers->wake_fd, 1);
      });
  last_value_ = std::move(value);
  bytes_ += write.bytes;
  in_flight_.push_back(e);
}

void OrderedWrites::Mark(Write write) {
  Entry e;
  e.stores = false;
  e.write = write;
  in_flight_.push_back(e);
}

Status OrderedWrites::Harvest(std::size_t keep, const std::function<void(const Write&)>& done) {
  Status failure;
  while (!in_flight_.empty() && (in_flight_.size() > keep || keep == SIZE_MAX || !failure.ok())) {
    Entry& e = in_flight_.front();
    Status result;
    if (e.stores) {
      std::unique_lock<std::mutex> lock(answers_->mu);
      auto it = answers_->done.find(e.seq);
      if (it == answers_->done.end()) {
        if (keep == SIZE_MAX && failure.ok()) break;  // not answered yet, and not waiting
        answers_->cv.wait(lock, [&] { return answers_->done.count(e.seq) > 0; });
        it = answers_->done.find(e.seq);
      }
      result = std::move(it->second);
      answers_->done.erase(it);
    }
    if (!result.ok() && failure.ok()) failure = result;
    if (failure.ok()) done(e.write);
    bytes_ -= e.write.bytes;
    in_flight_.pop_front();
  }
  return failure;
}

int OrderedWrites::wake_fd() const { return answers_->wake_fd; }

void OrderedWrites::ConsumeWake() {
  if (answers_->wake_fd < 0) return;
  eventfd_t answered = 0;
  eventfd_read(answers_->wake_fd, &answered);
}

}  // namespace timetrail::capture
