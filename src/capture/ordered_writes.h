// The capture's writes in flight. Source transactions are handed to the store one after another
// without waiting for each other's fsync, so that the store's group commit makes many durable at
// once. Each is written with the capture's checkpoint in the same atomic write and names the
// checkpoint value its predecessor writes (EventStore::TransactWithCheckpointAsync), so none is
// stored after one the store refused: the store always holds a prefix of the source's
// transactions, and the checkpoint says where it ends.
#ifndef TIMETRAIL_CAPTURE_ORDERED_WRITES_H_
#define TIMETRAIL_CAPTURE_ORDERED_WRITES_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "capture/pgoutput.h"
#include "timetrail/status.h"
#include "timetrail/store.h"

namespace timetrail::capture {

// Not thread-safe: used from the capture's streaming thread (the store answers on its own
// threads, which only record the answers).
class OrderedWrites {
 public:
  // What a write stands for, given back once it is done. Intentionally copyable.
  struct Write {
    Lsn confirm_lsn = 0;  // the source position to confirm once durable (0: none)
    bool counts_transaction = false;
    std::int64_t commit_micros = 0;  // the source commit time, with confirm_lsn
    std::uint64_t events = 0;
    std::size_t bytes = 0;
  };

  OrderedWrites(EventStore* store, std::string checkpoint_name);
  // REQUIRES: nothing in flight (Harvest(0) returned).
  ~OrderedWrites();
  OrderedWrites(const OrderedWrites&) = delete;
  OrderedWrites& operator=(const OrderedWrites&) = delete;

  // Starts the chain again from the checkpoint's stored value (nullopt: none stored).
  // REQUIRES: nothing in flight.
  void Restart(std::optional<std::string> stored_value) { last_value_ = std::move(stored_value); }

  // Hands "tx" to the store, to be written with the checkpoint "value" after every write
  // submitted before it. "what" names it in an error ("storing source transaction 731").
  void Submit(Transaction tx, std::string value, Write write, std::string what);
  // A write of nothing: done once every write submitted before it is.
  void Mark(Write write);

  // Takes the answers for the oldest writes, in order, and calls "done" for each that
  // succeeded, until at most "keep" remain in flight (waiting for answers), or, with
  // keep = SIZE_MAX, only those already answered (not waiting). After a refused write it waits
  // for every write in flight (all refused too: each names its predecessor's value) and
  // returns the refusal; the caller starts again from what is stored (Restart).
  Status Harvest(std::size_t keep, const std::function<void(const Write&)>& done);

  // Writes submitted since construction (Marks not counted).
  std::uint64_t submitted() const { return next_seq_; }
  std::size_t size() const { return in_flight_.size(); }
  std::size_t bytes() const { return bytes_; }
  bool empty() const { return in_flight_.empty(); }
  // Readable (poll) once an answer came since the last ConsumeWake(); -1 if none could be
  // made, in which case the caller polls without it.
  int wake_fd() const;
  void ConsumeWake();

 private:
  struct Answers;
  struct Entry {
    std::uint64_t seq = 0;
    bool stores = true;  // false: a Mark
    Write write;
  };

  EventStore* store_;
  std::string checkpoint_name_;
  std::optional<std::string> last_value_;  // what the last submitted write leaves stored
  std::deque<Entry> in_flight_;
  std::size_t bytes_ = 0;
  std::uint64_t next_seq_ = 0;
  std::shared_ptr<Answers> answers_;  // shared with the store's callbacks
};

}  // namespace timetrail::capture

#endif  // TIMETRAIL_CAPTURE_ORDERED_WRITES_H_
