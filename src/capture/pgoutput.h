// Decoding of the messages of PostgreSQL's built-in logical decoding plugin "pgoutput",
// protocol version 1 (PostgreSQL 10+; logical decoding messages need 14+), and of the
// replication stream's CopyBoth framing around them.
//
// Formats: "Logical Streaming Replication Protocol" and "Logical Replication Message Formats"
// in the PostgreSQL manual. All integers are big-endian; strings are NUL-terminated.
// Positions (LSN) are 64-bit WAL byte positions; times are microseconds since 2000-01-01 UTC.
#ifndef TIMETRAIL_CAPTURE_PGOUTPUT_H_
#define TIMETRAIL_CAPTURE_PGOUTPUT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "timetrail/status.h"
#include "timetrail/time.h"

namespace timetrail::capture {

using Lsn = std::uint64_t;

// "16/B374D848", the form PostgreSQL prints and accepts.
std::string FormatLsn(Lsn lsn);
// Inverse of FormatLsn; kInvalidArgument names the bad text.
Result<Lsn> ParseLsn(std::string_view text);

// PostgreSQL timestamps count from 2000-01-01; timetrail's from 1970-01-01.
inline constexpr std::int64_t kPgEpochOffsetMicros = 946684800LL * 1000000;
// PostgreSQL's '-infinity' and 'infinity' (the int64 limits) stay the limits, and times near
// them saturate rather than overflow.
inline Timestamp FromPgTime(std::int64_t pg_micros) {
  std::int64_t micros;
  if (pg_micros == INT64_MIN) return Timestamp{INT64_MIN};
  if (__builtin_add_overflow(pg_micros, kPgEpochOffsetMicros, &micros)) micros = INT64_MAX;
  return Timestamp{micros};
}
inline std::int64_t ToPgTime(Timestamp t) { return t.micros - kPgEpochOffsetMicros; }

// --- The CopyBoth framing ----------------------------------------------------------------------

// 'w': a chunk of decoded WAL; "payload" is one pgoutput message.
struct XLogData {
  Lsn wal_start = 0;
  Lsn wal_end = 0;
  std::string_view payload;  // points into the buffer given to DecodeCopyData
};
// 'k': the server's keepalive; reply_requested asks for a status update now.
struct Keepalive {
  Lsn wal_end = 0;
  bool reply_requested = false;
};
using CopyData = std::variant<XLogData, Keepalive>;
Result<CopyData> DecodeCopyData(std::string_view buffer);

// The standby status update ('r') that reports how far the client has written and flushed.
std::string EncodeStatusUpdate(Lsn written, Lsn flushed, Timestamp now, bool reply_requested);

// --- pgoutput messages -------------------------------------------------------------------------

struct Column {
  bool key = false;       // part of the replica identity (every column under REPLICA IDENTITY FULL)
  std::string name;
  std::uint32_t type_oid = 0;
  std::int32_t type_modifier = -1;
};

// How a changed column's value arrives in a tuple.
struct Value {
  enum class Kind : char { kNull = 'n', kUnchangedToast = 'u', kText = 't', kBinary = 'b' };
  Kind kind = Kind::kNull;
  std::string bytes;  // text form for kText
};
using Tuple = std::vector<Value>;

struct BeginMessage {
  Lsn final_lsn = 0;  // the commit record's position
  Timestamp commit_time;
  std::uint32_t xid = 0;
};
struct CommitMessage {
  Lsn commit_lsn = 0;
  Lsn end_lsn = 0;  // just past the commit record: where a restart resumes
  Timestamp commit_time;
};
struct RelationMessage {
  std::uint32_t relation_id = 0;
  std::string schema;  // "" stands for pg_catalog in the protocol; kept as sent
  std::string table;
  char replica_identity = 'd';  // d default (primary key), n nothing, f full, i index
  std::vector<Column> columns;
};
struct TypeMessage {
  std::uint32_t type_oid = 0;
  std::string schema;
  std::string name;
};
struct InsertMessage {
  std::uint32_t relation_id = 0;
  Tuple new_tuple;
};
struct UpdateMessage {
  std::uint32_t relation_id = 0;
  // 'K': old key (the key changed); 'O': whole old row (REPLICA IDENTITY FULL); 0: neither.
  char old_kind = 0;
  Tuple old_tuple;
  Tuple new_tuple;
};
struct DeleteMessage {
  std::uint32_t relation_id = 0;
  char old_kind = 'K';  // 'K' key columns only, 'O' the whole row
  Tuple old_tuple;
};
struct TruncateMessage {
  bool cascade = false;
  bool restart_identity = false;
  std::vector<std::uint32_t> relation_ids;
};
struct LogicalMessage {
  bool transactional = false;
  Lsn lsn = 0;
  std::string prefix;
  std::string content;
};
struct OriginMessage {
  Lsn lsn = 0;
  std::string name;
};

using PgOutputMessage =
    std::variant<BeginMessage, CommitMessage, RelationMessage, TypeMessage, InsertMessage,
                 UpdateMessage, DeleteMessage, TruncateMessage, LogicalMessage, OriginMessage>;

// Decodes one pgoutput message. kCorruption names the message type and what was short or
// unknown; nothing is assumed about bytes past the message.
Result<PgOutputMessage> DecodePgOutput(std::string_view payload);

}  // namespace timetrail::capture

#endif  // TIMETRAIL_CAPTURE_PGOUTPUT_H_
