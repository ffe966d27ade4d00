#include "core/event_codec.h"

#include <gtest/gtest.h>

namespace timetrail {
namespace {

RecordedEvent Sample() {
  RecordedEvent e;
  e.stream = "public.orders/42";
  e.revision = 7;
  e.position = 1234;
  e.id = Uuid::Generate();
  e.type = "$patch";
  e.data = R"({"status":"shipped","total":12345678901234567890.123})";
  e.metadata = R"({"actor":"ops"})";
  e.recorded_at = Timestamp{1795863600123456};
  e.valid_from = Timestamp{-5};
  e.tx = 99;
  e.hash = ChainHash(Hash{}, "x");
  return e;
}

TEST(EventCodecTest, RoundTripsEveryFieldVerbatim) {
  RecordedEvent e = Sample();
  auto d = DecodeStoredEvent(EncodeStoredEvent(e));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->stream, e.stream);
  EXPECT_EQ(d->revision, e.revision);
  EXPECT_EQ(d->position, e.position);
  EXPECT_EQ(d->id, e.id);
  EXPECT_EQ(d->type, e.type);
  EXPECT_EQ(d->data, e.data);  // numbers keep every digit
  EXPECT_EQ(d->metadata, e.metadata);
  EXPECT_EQ(d->recorded_at, e.recorded_at);
  EXPECT_EQ(d->valid_from, e.valid_from);
  EXPECT_EQ(d->tx, e.tx);
  EXPECT_EQ(d->hash, e.hash);
}

TEST(EventCodecTest, TruncatedOrExtendedBytesAreCorruption) {
  std::string bytes = EncodeStoredEvent(Sample());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto d = DecodeStoredEvent(std::string_view(bytes).substr(0, n));
    ASSERT_FALSE(d.ok()) << n;
    EXPECT_EQ(d.status().code(), StatusCode::kCorruption);
  }
  EXPECT_FALSE(DecodeStoredEvent(bytes + "x").ok());
}

// Found by fuzz/stored_event: a length written with a redundant zero group decoded to the same
// event, so two byte strings meant one event. Each event has one stored form.
TEST(EventCodecTest, OverlongLengthIsCorruption) {
  RecordedEvent e = Sample();
  std::string bytes = EncodeStoredEvent(e);
  constexpr std::size_t kStreamLength = 1 + 8;  // after the version byte and the position
  ASSERT_EQ(static_cast<unsigned char>(bytes[kStreamLength]), e.stream.size());
  bytes[kStreamLength] = static_cast<char>(e.stream.size() | 0x80);
  bytes.insert(kStreamLength + 1, 1, '\0');
  auto d = DecodeStoredEvent(bytes);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kCorruption);
}

TEST(EventCodecTest, ChainHashIsSha256OfPreviousAndCanonical) {
  // SHA-256 of 32 zero bytes followed by "abc", computed independently (Python hashlib).
  Hash h = ChainHash(Hash{}, "abc");
  std::string hex;
  for (auto b : h) {
    char buf[3];
    snprintf(buf, sizeof(buf), "%02x", b);
    hex += buf;
  }
  EXPECT_EQ(hex, "365aa7d8f7f9402c4b9434502b4cc89ddb09fe50d7cd95b493b834c62d5a5370");
  EXPECT_NE(ChainHash(Hash{}, "abc"), ChainHash(Hash{}, "abd"));
  EXPECT_NE(ChainHash(h, "abc"), h);
}

}  // namespace
}  // namespace timetrail
