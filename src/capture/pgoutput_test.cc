#include "capture/pgoutput.h"

#include <gtest/gtest.h>

namespace timetrail::capture {
namespace {

std::string Be(std::uint64_t v, int bytes) {
  std::string out;
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
  return out;
}

// Found by fuzz/pgoutput: a commit time near the int64 limit overflowed on the way to
// timetrail's epoch. PostgreSQL's 'infinity' is INT64_MAX.
TEST(PgOutputTest, TimesNearTheLimitsSaturate) {
  EXPECT_EQ(FromPgTime(INT64_MAX).micros, INT64_MAX);
  EXPECT_EQ(FromPgTime(INT64_MIN).micros, INT64_MIN);
  EXPECT_EQ(FromPgTime(0).micros, kPgEpochOffsetMicros);
}

TEST(PgOutputTest, LsnFormatRoundTrips) {
  EXPECT_EQ(FormatLsn(0x16B374D848ULL), "16/B374D848");
  EXPECT_EQ(*ParseLsn("16/B374D848"), 0x16B374D848ULL);
  EXPECT_FALSE(ParseLsn("16B374D848").ok());
  EXPECT_FALSE(ParseLsn("x/1").ok());
}

TEST(PgOutputTest, DecodesInsertWithNullAndToast) {
  std::string m = "I" + Be(42, 4) + "N" + Be(3, 2) + "t" + Be(2, 4) + "17" + "n" + "u";
  auto r = DecodePgOutput(m);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto& ins = std::get<InsertMessage>(*r);
  EXPECT_EQ(ins.relation_id, 42u);
  ASSERT_EQ(ins.new_tuple.size(), 3u);
  EXPECT_EQ(ins.new_tuple[0].bytes, "17");
  EXPECT_EQ(ins.new_tuple[1].kind, Value::Kind::kNull);
  EXPECT_EQ(ins.new_tuple[2].kind, Value::Kind::kUnchangedToast);
}

TEST(PgOutputTest, TruncatedMessagesAreErrorsNotCrashes) {
  std::string m = "I" + Be(42, 4) + "N" + Be(3, 2) + "t" + Be(200, 4) + "17";
  auto r = DecodePgOutput(m);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  for (std::size_t n = 0; n < m.size(); ++n) EXPECT_FALSE(DecodePgOutput(m.substr(0, n)).ok());
}

TEST(PgOutputTest, DecodesCommitAndKeepalive) {
  std::string c = "C" + Be(0, 1) + Be(100, 8) + Be(120, 8) + Be(0, 8);
  auto r = DecodePgOutput(c);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::get<CommitMessage>(*r).end_lsn, 120u);
  EXPECT_EQ(std::get<CommitMessage>(*r).commit_time.micros, kPgEpochOffsetMicros);
  std::string k = "k" + Be(777, 8) + Be(0, 8) + Be(1, 1);
  auto kd = DecodeCopyData(k);
  ASSERT_TRUE(kd.ok());
  EXPECT_EQ(std::get<Keepalive>(*kd).wal_end, 777u);
  EXPECT_TRUE(std::get<Keepalive>(*kd).reply_requested);
  EXPECT_EQ(EncodeStatusUpdate(1, 2, Timestamp{kPgEpochOffsetMicros}, false).size(), 34u);
}

}  // namespace
}  // namespace timetrail::capture
