// The integrity chain: verify passes on an untouched store and names the first position that
// was changed, damaged or removed behind timetrail's back.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <filesystem>
#include <random>

#include "core/event_codec.h"
#include "store/keys.h"
#include "support/store_helpers.h"
#include "support/temp_dir.h"

namespace timetrail {
namespace {

using testing::Event;
using testing::OpenOrDie;
using testing::TempDir;

// Opens the RocksDB directory directly, as an attacker or a faulty tool would, and changes the
// stored bytes under one key of one column family ("change" sees "" for a missing key; leaving
// it empty deletes the key).
void TamperWith(const std::string& dir, const std::string& family, const std::string& key,
                const std::function<void(std::string*)>& change) {
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir, cfs, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::ColumnFamilyHandle* handle = nullptr;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == family) handle = handles[i];
  }
  ASSERT_NE(handle, nullptr) << family;
  std::string value;
  rocksdb::Status got = db->Get(rocksdb::ReadOptions(), handle, key, &value);
  ASSERT_TRUE(got.ok() || got.IsNotFound()) << got.ToString();
  change(&value);
  if (value.empty()) {
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), handle, key).ok());
  } else {
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handle, key, value).ok());
  }
  for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  ASSERT_TRUE(db->Close().ok());
}

void TamperWithLog(const std::string& dir, Position p,
                   const std::function<void(std::string*)>& change) {
  TamperWith(dir, "log", keys::Log(p), change);
}

class IntegrityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenOrDie(dir_.Sub("data"));
    for (int i = 0; i < 200; ++i) {
      auto r = store->Append(
          "s/" + std::to_string(i % 7), ExpectedRevision::Any(),
          {Event("$patch", R"({"v":)" + std::to_string(i) + "}", R"({"actor":"a"})")});
      ASSERT_TRUE(r.ok());
    }
    head_ = store->GetIntegrityHead();
  }
  VerifyReport VerifyNow() {
    auto store = OpenOrDie(dir_.Sub("data"));
    auto report = store->Verify(VerifyOptions{});
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return report.ok() ? *report : VerifyReport{};
  }
  TempDir dir_;
  IntegrityHead head_;
};

TEST_F(IntegrityTest, AnUntouchedStoreVerifiesAndReportsItsHead) {
  std::vector<std::uint64_t> progress;
  auto store = OpenOrDie(dir_.Sub("data"));
  VerifyOptions o;
  o.progress = [&](std::uint64_t checked, Position) { progress.push_back(checked); };
  auto report = store->Verify(o);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->message;
  EXPECT_EQ(report->events_checked, 200u);
  EXPECT_EQ(report->head.position, 200u);
  EXPECT_EQ(report->head.hash_hex, head_.hash_hex);
  EXPECT_EQ(store->GetIntegrityHead().hash_hex, head_.hash_hex);
  EXPECT_FALSE(progress.empty());
  // A range in the middle verifies from the link before it.
  o.from_position = 50;
  o.to_position = 60;
  auto part = store->Verify(o);
  ASSERT_TRUE(part.ok());
  EXPECT_TRUE(part->ok);
  EXPECT_EQ(part->events_checked, 11u);
  EXPECT_EQ(part->head.hash_hex, store->GetEventAt(60)->HashHex());
}

TEST_F(IntegrityTest, FlippingOneByteOfAnyEventIsReportedAtItsPosition) {
  std::mt19937 rng(7);
  for (int round = 0; round < 5; ++round) {
    TempDir clone;
    std::filesystem::copy(dir_.Sub("data"), clone.Sub("data"));
    Position p = 1 + rng() % 200;
    std::size_t byte_index = 0;
    TamperWithLog(clone.Sub("data"), p, [&](std::string* v) {
      // Any byte: the fields, the data, or the stored hash itself.
      byte_index = rng() % v->size();
      (*v)[byte_index] = static_cast<char>((*v)[byte_index] ^ 0x01);
    });
    auto store = OpenOrDie(clone.Sub("data"));
    auto report = store->Verify(VerifyOptions{});
    ASSERT_TRUE(report.ok());
    EXPECT_FALSE(report->ok) << "flipped byte " << byte_index << " of position " << p;
    EXPECT_EQ(report->first_bad_position, p) << report->message;
    EXPECT_FALSE(report->message.empty());
  }
}

TEST_F(IntegrityTest, ChangingTheDataOfAnEventIsReportedAtItsPosition) {
  TamperWithLog(dir_.Sub("data"), 123, [](std::string* v) {
    auto e = DecodeStoredEvent(*v);
    ASSERT_TRUE(e.ok());
    e->data = R"({"v":999999})";  // a plausible, well-formed change, hash left as it was
    *v = EncodeStoredEvent(*e);
  });
  VerifyReport report = VerifyNow();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_position, 123u);
  EXPECT_NE(report.message.find("changed"), std::string::npos) << report.message;
}

TEST_F(IntegrityTest, ARemovedEventIsReportedAsMissing) {
  TamperWithLog(dir_.Sub("data"), 77, [](std::string* v) { v->clear(); });
  VerifyReport report = VerifyNow();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_position, 77u);
  EXPECT_NE(report.message.find("missing"), std::string::npos) << report.message;
}

TEST_F(IntegrityTest, AForgeryWithARecomputedHashIsStillDetected) {
  // A forger who recomputes the event's hash without the true previous link is still caught.
  TamperWithLog(dir_.Sub("data"), 100, [](std::string* v) {
    auto e = DecodeStoredEvent(*v);
    ASSERT_TRUE(e.ok());
    e->data = R"({"v":-1})";
    std::string canonical;
    EncodeCanonicalEvent(*e, &canonical);
    // The previous link is unknown to this code path, so any 32 bytes will do for the forger.
    e->hash = ChainHash(Hash{}, canonical);
    *v = EncodeStoredEvent(*e);
  });
  VerifyReport report = VerifyNow();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_position, 100u);
}

// The data directory's layout version: written at creation, and a directory of a newer layout
// is refused before anything reads or changes it.
TEST(LayoutVersionTest, ANewerLayoutIsRefusedAndAnUnmarkedOneIsMarked) {
  TempDir dir;
  std::string data = dir.Sub("data");
  {
    auto store = OpenOrDie(data);
    ASSERT_TRUE(store->Append("s", ExpectedRevision::Any(), {Event("e")}).ok());
  }
  std::string seen;
  TamperWith(data, "meta", std::string(keys::kFormatVersion), [&](std::string* v) { seen = *v; });
  EXPECT_EQ(seen, "2");

  TamperWith(data, "meta", std::string(keys::kFormatVersion), [](std::string* v) { *v = "3"; });
  Result<std::unique_ptr<EventStore>> newer = EventStore::Open(Options{}, data);
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(newer.status().message().find("layout version 3, written by a newer timetrail"),
            std::string::npos)
      << newer.status().ToString();

  TamperWith(data, "meta", std::string(keys::kFormatVersion), [](std::string* v) { *v = "x"; });
  Result<std::unique_ptr<EventStore>> damaged = EventStore::Open(Options{}, data);
  ASSERT_FALSE(damaged.ok());
  EXPECT_EQ(damaged.status().code(), StatusCode::kCorruption);

  // A directory from before the marker existed opens, keeps its events and gets the marker.
  TamperWith(data, "meta", std::string(keys::kFormatVersion), [](std::string* v) { v->clear(); });
  {
    auto store = OpenOrDie(data);
    EXPECT_EQ(store->LastPosition(), 1u);
    Result<VerifyReport> report = store->Verify(VerifyOptions{});
    ASSERT_TRUE(report.ok());
    EXPECT_TRUE(report->ok);
  }
  TamperWith(data, "meta", std::string(keys::kFormatVersion), [&](std::string* v) { seen = *v; });
  EXPECT_EQ(seen, "2");
}

}  // namespace
}  // namespace timetrail
