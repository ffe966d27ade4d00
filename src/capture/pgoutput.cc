#include "capture/pgoutput.h"

#include <cinttypes>
#include <cstdio>

namespace timetrail::capture {
namespace {

// Reads big-endian fields from a message, remembering the first shortfall instead of failing at
// every call, so decoders read like the format description and check once at the end.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  std::uint64_t Int(int bytes) {
    if (!Need(bytes)) return 0;
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<std::uint8_t>(data_[pos_ + i]);
    pos_ += bytes;
    return v;
  }
  std::uint8_t Byte() { return static_cast<std::uint8_t>(Int(1)); }
  std::string String() {
    std::size_t end = data_.find('\0', pos_);
    if (end == std::string_view::npos) {
      short_ = true;
      pos_ = data_.size();
      return {};
    }
    std::string s(data_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }
  std::string_view Bytes(std::size_t n) {
    if (!Need(n)) return {};
    std::string_view s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string_view Rest() {
    std::string_view s = data_.substr(pos_);
    pos_ = data_.size();
    return s;
  }
  bool ok() const { return !short_; }

 private:
  bool Need(std::size_t n) {
    if (short_ || data_.size() - pos_ < n) {
      short_ = true;
      return false;
    }
    return true;
  }
  std::string_view data_;
  std::size_t pos_ = 0;
  bool short_ = false;
};

Status ReadTuple(Reader& r, Tuple* out) {
  std::uint16_t n = static_cast<std::uint16_t>(r.Int(2));
  out->clear();
  out->reserve(n);
  for (std::uint16_t i = 0; i < n && r.ok(); ++i) {
    Value v;
    char kind = static_cast<char>(r.Byte());
    switch (kind) {
      case 'n':
        v.kind = Value::Kind::kNull;
        break;
      case 'u':
        v.kind = Value::Kind::kUnchangedToast;
        break;
      case 't':
      case 'b': {
        v.kind = kind == 't' ? Value::Kind::kText : Value::Kind::kBinary;
        std::uint32_t len = static_cast<std::uint32_t>(r.Int(4));
        v.bytes = std::string(r.Bytes(len));
        break;
      }
      default:
        return Status::Corruption("pgoutput tuple: unknown column kind '" + std::string(1, kind) +
                                  "'");
    }
    out->push_back(std::move(v));
  }
  return Status::Ok();
}

Status Short(const char* what) {
  return Status::Corruption(std::string("pgoutput ") + what + " message is truncated");
}

}  // namespace

std::string FormatLsn(Lsn lsn) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%" PRIX32 "/%" PRIX32, static_cast<std::uint32_t>(lsn >> 32),
                static_cast<std::uint32_t>(lsn));
  return buf;
}

Result<Lsn> ParseLsn(std::string_view text) {
  std::size_t slash = text.find('/');
  auto hex = [](std::string_view s, std::uint64_t* v) {
    if (s.empty() || s.size() > 8) return false;
    *v = 0;
    for (char c : s) {
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else return false;
      *v = (*v << 4) | static_cast<std::uint64_t>(d);
    }
    return true;
  };
  std::uint64_t hi = 0, lo = 0;
  if (slash == std::string_view::npos || !hex(text.substr(0, slash), &hi) ||
      !hex(text.substr(slash + 1), &lo)) {
    return Status::InvalidArgument("'" + std::string(text) +
                                   "' is not a PostgreSQL LSN (expected two hex numbers "
                                   "separated by '/', e.g. 0/16B3748)");
  }
  return (hi << 32) | lo;
}

Result<CopyData> DecodeCopyData(std::string_view buffer) {
  Reader r(buffer);
  char kind = static_cast<char>(r.Byte());
  if (kind == 'w') {
    XLogData d;
    d.wal_start = r.Int(8);
    d.wal_end = r.Int(8);
    (void)r.Int(8);  // the server's send time
    d.payload = r.Rest();
    if (!r.ok()) return Status::Corruption("replication XLogData message is truncated");
    return CopyData(d);
  }
  if (kind == 'k') {
    Keepalive k;
    k.wal_end = r.Int(8);
    (void)r.Int(8);
    k.reply_requested = r.Byte() != 0;
    if (!r.ok()) return Status::Corruption("replication keepalive message is truncated");
    return CopyData(k);
  }
  return Status::Corruption("unknown replication stream message '" + std::string(1, kind) + "'");
}

std::string EncodeStatusUpdate(Lsn written, Lsn flushed, Timestamp now, bool reply_requested) {
  std::string out;
  out.reserve(34);
  out.push_back('r');
  auto put = [&out](std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
  };
  put(written);
  put(flushed);
  put(flushed);  // applied: for timetrail, stored durably is applied
  put(static_cast<std::uint64_t>(ToPgTime(now)));
  out.push_back(reply_requested ? 1 : 0);
  return out;
}

Result<PgOutputMessage> DecodePgOutput(std::string_view payload) {
  if (payload.empty()) return Status::Corruption("empty pgoutput message");
  Reader r(payload.substr(1));
  switch (payload[0]) {
    case 'B': {
      BeginMessage m;
      m.final_lsn = r.Int(8);
      m.commit_time = FromPgTime(static_cast<std::int64_t>(r.Int(8)));
      m.xid = static_cast<std::uint32_t>(r.Int(4));
      if (!r.ok()) return Short("Begin");
      return PgOutputMessage(m);
    }
    case 'C': {
      CommitMessage m;
      (void)r.Byte();  // flags, unused
      m.commit_lsn = r.Int(8);
      m.end_lsn = r.Int(8);
      m.commit_time = FromPgTime(static_cast<std::int64_t>(r.Int(8)));
      if (!r.ok()) return Short("Commit");
      return PgOutputMessage(m);
    }
    case 'O': {
      OriginMessage m;
      m.lsn = r.Int(8);
      m.name = r.String();
      if (!r.ok()) return Short("Origin");
      return PgOutputMessage(m);
    }
    case 'R': {
      RelationMessage m;
      m.relation_id = static_cast<std::uint32_t>(r.Int(4));
      m.schema = r.String();
      m.table = r.String();
      m.replica_identity = static_cast<char>(r.Byte());
      std::uint16_t n = static_cast<std::uint16_t>(r.Int(2));
      for (std::uint16_t i = 0; i < n && r.ok(); ++i) {
        Column c;
        c.key = (r.Byte() & 1) != 0;
        c.name = r.String();
        c.type_oid = static_cast<std::uint32_t>(r.Int(4));
        c.type_modifier = static_cast<std::int32_t>(r.Int(4));
        m.columns.push_back(std::move(c));
      }
      if (!r.ok()) return Short("Relation");
      return PgOutputMessage(std::move(m));
    }
    case 'Y': {
      TypeMessage m;
      m.type_oid = static_cast<std::uint32_t>(r.Int(4));
      m.schema = r.String();
      m.name = r.String();
      if (!r.ok()) return Short("Type");
      return PgOutputMessage(std::move(m));
    }
    case 'I': {
      InsertMessage m;
      m.relation_id = static_cast<std::uint32_t>(r.Int(4));
      if (r.Byte() != 'N') return Status::Corruption("pgoutput Insert message lacks its new row");
      TT_RETURN_IF_ERROR(ReadTuple(r, &m.new_tuple));
      if (!r.ok()) return Short("Insert");
      return PgOutputMessage(std::move(m));
    }
    case 'U': {
      UpdateMessage m;
      m.relation_id = static_cast<std::uint32_t>(r.Int(4));
      char kind = static_cast<char>(r.Byte());
      if (kind == 'K' || kind == 'O') {
        m.old_kind = kind;
        TT_RETURN_IF_ERROR(ReadTuple(r, &m.old_tuple));
        kind = static_cast<char>(r.Byte());
      }
      if (kind != 'N') return Status::Corruption("pgoutput Update message lacks its new row");
      TT_RETURN_IF_ERROR(ReadTuple(r, &m.new_tuple));
      if (!r.ok()) return Short("Update");
      return PgOutputMessage(std::move(m));
    }
    case 'D': {
      DeleteMessage m;
      m.relation_id = static_cast<std::uint32_t>(r.Int(4));
      m.old_kind = static_cast<char>(r.Byte());
      if (m.old_kind != 'K' && m.old_kind != 'O') {
        return Status::Corruption("pgoutput Delete message lacks its old key or row");
      }
      TT_RETURN_IF_ERROR(ReadTuple(r, &m.old_tuple));
      if (!r.ok()) return Short("Delete");
      return PgOutputMessage(std::move(m));
    }
    case 'T': {
      TruncateMessage m;
      std::uint32_t n = static_cast<std::uint32_t>(r.Int(4));
      std::uint8_t options = r.Byte();
      m.cascade = (options & 1) != 0;
      m.restart_identity = (options & 2) != 0;
      for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
        m.relation_ids.push_back(static_cast<std::uint32_t>(r.Int(4)));
      }
      if (!r.ok()) return Short("Truncate");
      return PgOutputMessage(std::move(m));
    }
    case 'M': {
      LogicalMessage m;
      m.transactional = (r.Byte() & 1) != 0;
      m.lsn = r.Int(8);
      m.prefix = r.String();
      std::uint32_t len = static_cast<std::uint32_t>(r.Int(4));
      m.content = std::string(r.Bytes(len));
      if (!r.ok()) return Short("Message");
      return PgOutputMessage(std::move(m));
    }
    default:
      return Status::Corruption("unknown pgoutput message type '" + std::string(1, payload[0]) +
                                "'");
  }
}

}  // namespace timetrail::capture
