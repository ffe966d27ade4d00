// Options for opening an EventStore. Every field has a default that suits most users.
#ifndef TIMETRAIL_OPTIONS_H_
#define TIMETRAIL_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace timetrail {

// Limits on what one request may contain. A request over a limit fails with kTooLarge (sizes,
// counts) or kInvalidArgument (names) and changes nothing. Intentionally copyable.
struct Limits {
  std::size_t max_stream_name_bytes = 512;        // docs/concepts.md: 1..512 bytes
  std::size_t max_type_bytes = 256;               // docs/concepts.md: 1..256 bytes
  std::size_t max_event_bytes = 4u << 20;         // data + metadata of one event: 4 MiB
  std::size_t max_transaction_bytes = 16u << 20;  // all events of one transaction: 16 MiB
  std::size_t max_transaction_events = 10000;     // events in one transaction
  std::size_t max_transaction_streams = 1000;     // distinct streams in one transaction
};

// Intentionally copyable.
struct Options {
  // Create the data directory and an empty store when none exists. Default: true.
  bool create_if_missing = true;

  // Open the store for reading only, without taking the data directory's lock: another
  // process (e.g. `timetrail serve` or `timetrail capture`) may hold the directory and go on
  // writing meanwhile. Reads see what that writer had written (to its table files and
  // write-ahead log) when the store opened, and what it wrote since after each
  // EventStore::Refresh(). Nothing is ever written into the directory (the storage engine keeps
  // its files for the reader in a private temporary directory, removed on close). Every write
  // (append, transact, checkpoints, revert, backup) fails with kInvalidArgument, saying the
  // store is read-only, and changes nothing. The directory must hold a store that a writer of
  // this release has opened at least once (create_if_missing does not apply; a layout that
  // needs an upgrade is refused, telling to open it once with a writer). Cannot be combined
  // with bulk_load. Default: false.
  bool read_only = false;

  // When true (the default) an append returns only after its write is fsync'd: an acknowledged
  // event survives a crash or power loss. Turning it off is for throwaway test data only.
  bool sync = true;

  Limits limits;

  // Group commit: the writer waits at most this long for more appends to share one fsync after
  // the first one arrives. 0 (the default) commits at once; concurrent appends still share an
  // fsync because they queue up while the previous one runs.
  std::uint32_t group_commit_delay_micros = 0;

  // Upper bounds on one group commit; a batch is cut when either is reached.
  std::size_t group_commit_max_transactions = 1024;
  std::size_t group_commit_max_bytes = 64u << 20;

  // Memory for RocksDB's block cache. Default: 64 MiB.
  std::size_t block_cache_bytes = 64u << 20;
  // Temporal queries: a stream's folded document state is stored after every this many of its
  // events, so that an as-of query folds at most this many events after one seek. Smaller
  // values make queries cheaper and use more disk. Must be at least 1. Default: 64.
  std::uint32_t snapshot_interval = 64;
  // Temporal queries: a snapshot is also taken as soon as a stream's document events ($put,
  // $patch, $delete) since its last snapshot hold this many bytes of data, so that a fold over
  // big events reads about this many bytes rather than snapshot_interval whole events (and the
  // writer keeps no more than that per stream in memory). Streams of small events are not
  // affected: 64 events of 4 KiB reach the default. 0 turns it off. Default: 256 KiB.
  std::size_t snapshot_bytes = 256u << 10;

  // Bulk loading (what `timetrail import --data` uses): for loading a large history into a
  // store that nothing else reads or writes meanwhile, with TransactMany and large batches.
  // A group of transactions is made durable by writing it as sorted table files that the
  // storage engine takes in whole, instead of inserting every key into its write-ahead log and
  // memory tables; each transaction is still acknowledged only once durable, and after a crash
  // the store holds a prefix of whole transactions. Every read first makes all earlier writes
  // durable, so it is slow while writes are small and frequent: open the store again without
  // it to serve reads. No effect on a store kept in PostgreSQL. Default: false.
  bool bulk_load = false;
  // For a store kept in PostgreSQL (EventStore::Open with a "postgresql://..." URL instead of a
  // data directory): the schema holding its tables, created with them when missing (if
  // create_if_missing). The role needs to own it, or the right to create it; no superuser.
  // Several stores can share a database under different schemas. Default: "timetrail_store".
  std::string postgres_schema = "timetrail_store";
  // For a store kept in PostgreSQL: at most this many connections serve reads at once.
  int postgres_read_connections = 8;
  // For a store kept in PostgreSQL and opened for writing: a "postgresql://..." URL of one
  // streaming replica (a hot standby) of the store's database. Every read goes to it (with its
  // own postgres_read_connections connections, to the same postgres_schema); writes,
  // checkpoints and what the write path reads go to the primary. Reads see a position only once
  // the replica has replayed it, so a read right after an append may not see it yet; a wait for
  // the append's position (WaitForPosition, the API's min_position) waits until the replica
  // has it. Appends are acknowledged once durable on the primary, without waiting for the
  // replica. The replica must hold this store (the primary's): opening fails if it does not
  // have it within 10 s, or holds another store, and with kUnavailable if it cannot be reached;
  // a replica lost later makes reads fail with kUnavailable while writes go on. Refused for a
  // data directory and with read_only (open the replica's URL itself read-only instead).
  // Empty (the default): reads go to the store's own database.
  std::string postgres_read_replica;
};

}  // namespace timetrail

#endif  // TIMETRAIL_OPTIONS_H_
