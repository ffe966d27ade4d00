// The RocksDB engine's read paths that the temporal queries use: stream iterators (prefix bloom
// filters may skip table files) must find what a plain iterator finds within a stream, in
// memtables and across table files; reused iterators must see every write made before they are
// handed out again.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/coding.h"
#include "storage/kv_engine.h"
#include "support/temp_dir.h"

namespace timetrail {
namespace {

// A stream index key: name, 0x00, revision.
std::string StreamKey(const std::string& stream, std::uint64_t r) {
  std::string k = stream + std::string(1, '\0');
  PutBigEndian64(&k, r);
  return k;
}

// An index key: tag, 32-bit length, name, then a 64-bit number.
std::string IndexKey(char tag, const std::string& name, std::uint64_t n) {
  std::string k(1, tag);
  const auto len = static_cast<std::uint32_t>(name.size());
  for (int shift = 24; shift >= 0; shift -= 8) k.push_back(static_cast<char>(len >> shift));
  k += name;
  PutBigEndian64(&k, n);
  return k;
}

std::unique_ptr<KvEngine> Open(const std::string& dir) {
  auto engine = OpenRocksDbEngine(RocksDbEngineOptions{}, dir);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  return engine.ok() ? std::move(*engine) : nullptr;
}

// The keys from a seek to "target" on, in "forward" or backward direction, that start with
// "prefix".
std::vector<std::string> Walk(KvIterator& it, const std::string& target, bool forward,
                              const std::string& prefix) {
  std::vector<std::string> out;
  if (forward) {
    it.Seek(target);
  } else {
    it.SeekForPrev(target);
  }
  for (; it.Valid() && it.key().starts_with(prefix); forward ? it.Next() : it.Prev()) {
    out.emplace_back(it.key());
  }
  EXPECT_TRUE(it.status().ok()) << it.status().ToString();
  return out;
}

TEST(EngineTest, StreamIteratorsFindWhatPlainOnesFindAcrossTableFiles) {
  testing::TempDir dir;
  std::mt19937 rng(3);
  // Five rounds, each reopened (which flushes the memtables to a table file), each writing a
  // different subset of the streams, so that most files lack most streams.
  std::vector<std::string> streams;
  for (int s = 0; s < 40; ++s) streams.push_back("s" + std::to_string(s));
  std::uint64_t n = 0;
  for (int round = 0; round < 5; ++round) {
    auto engine = Open(dir.path());
    ASSERT_NE(engine, nullptr);
    auto batch = engine->NewBatch();
    for (const std::string& s : streams) {
      if (std::uniform_int_distribution<int>(0, 2)(rng) != 0) continue;
      for (int k = 0; k < 3; ++k, ++n) {
        batch->Put(Family::kStreamIndex, StreamKey(s, n), "v");
        batch->Put(Family::kIndex, IndexKey('p', s, n), "v");
      }
    }
    ASSERT_TRUE(engine->Write(*batch, true).ok());
  }
  auto engine = Open(dir.path());
  ASSERT_NE(engine, nullptr);
  streams.push_back("s4x");  // in no file
  for (const std::string& s : streams) {
    for (std::uint64_t target : {std::uint64_t{0}, n / 3, n / 2, n, UINT64_MAX}) {
      for (bool forward : {true, false}) {
        const std::string prefix = StreamKey(s, 0).substr(0, s.size() + 1);
        const std::string what = s + (forward ? " seek " : " seek back ") + std::to_string(target);
        auto plain = engine->NewIterator(Family::kStreamIndex);
        auto stream = engine->NewStreamIterator(Family::kStreamIndex);
        EXPECT_EQ(Walk(*stream, StreamKey(s, target), forward, prefix),
                  Walk(*plain, StreamKey(s, target), forward, prefix))
            << what;
        const std::string index_prefix = IndexKey('p', s, 0).substr(0, 5 + s.size());
        auto plain_index = engine->NewIterator(Family::kIndex);
        auto stream_index = engine->NewStreamIterator(Family::kIndex);
        EXPECT_EQ(Walk(*stream_index, IndexKey('p', s, target), forward, index_prefix),
                  Walk(*plain_index, IndexKey('p', s, target), forward, index_prefix))
            << what;
      }
    }
  }
}

TEST(EngineTest, ReusedIteratorsSeeEveryEarlierWrite) {
  testing::TempDir dir;
  auto engine = Open(dir.path());
  ASSERT_NE(engine, nullptr);
  for (std::uint64_t r = 0; r < 50; ++r) {
    auto batch = engine->NewBatch();
    batch->Put(Family::kStreamIndex, StreamKey("a", r), "v");
    batch->Put(Family::kLog, StreamKey("log", r), "v");
    ASSERT_TRUE(engine->Write(*batch, false).ok());
    // Each iterator is returned when it goes out of scope and handed out again next time.
    for (bool within_stream : {false, true}) {
      auto it = within_stream ? engine->NewStreamIterator(Family::kStreamIndex)
                              : engine->NewIterator(Family::kStreamIndex);
      it->SeekForPrev(StreamKey("a", UINT64_MAX));
      ASSERT_TRUE(it->Valid()) << r;
      EXPECT_EQ(it->key(), StreamKey("a", r));
    }
    auto log = engine->NewIterator(Family::kLog);
    log->SeekToLast();
    ASSERT_TRUE(log->Valid()) << r;
    EXPECT_EQ(log->key(), StreamKey("log", r));
    if (r % 10 == 9) {
      ASSERT_TRUE(engine->WaitForBackgroundWork().ok());
    }
  }
}

std::unique_ptr<KvEngine> OpenBulk(const std::string& dir) {
  RocksDbEngineOptions options;
  options.bulk_load = true;
  auto engine = OpenRocksDbEngine(options, dir);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  return engine.ok() ? std::move(*engine) : nullptr;
}

// A bulk load's writes reach the store only through ingested table files, yet every read sees
// every write made before it, in every family, with later writes of a key winning: the write
// path reads its own writes (stream heads, index entries) between group commits.
TEST(EngineTest, BulkLoadReadsSeeEveryEarlierWrite) {
  testing::TempDir dir;
  auto engine = OpenBulk(dir.path());
  ASSERT_NE(engine, nullptr);
  std::mt19937 rng(7);
  std::map<std::string, std::string> heads;  // what kStreamHeads must hold
  std::vector<std::string> keys;             // kStreamIndex keys written, in order
  for (int round = 0; round < 20; ++round) {
    auto batch = engine->NewBatch();
    for (int i = 0; i < 50; ++i) {
      std::string stream = "s" + std::to_string(rng() % 10);
      std::string key = StreamKey(stream, static_cast<std::uint64_t>(round * 50 + i));
      batch->Put(Family::kStreamIndex, key, "v" + std::to_string(round));
      keys.push_back(key);
      // Several writes of one key in one batch and across batches: the last one wins.
      heads[stream] = std::to_string(round) + "." + std::to_string(i);
      batch->Put(Family::kStreamHeads, stream, heads[stream]);
    }
    if (round % 3 == 2) {
      const std::string gone = "s" + std::to_string(rng() % 10);
      batch->Delete(Family::kStreamHeads, gone);
      heads.erase(gone);
    }
    ASSERT_TRUE(engine->Write(*batch, /*sync=*/false).ok());
    // Point reads, then an iterator, without a sync in between.
    for (const auto& [stream, value] : heads) {
      auto got = engine->Get(Family::kStreamHeads, stream);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      ASSERT_TRUE(got->has_value()) << stream;
      EXPECT_EQ(**got, value);
    }
    auto it = engine->NewIterator(Family::kStreamIndex);
    std::vector<std::string> seen;
    for (it->SeekToFirst(); it->Valid(); it->Next()) seen.emplace_back(it->key());
    ASSERT_TRUE(it->status().ok()) << it->status().ToString();
    std::vector<std::string> expected = keys;
    std::sort(expected.begin(), expected.end());
    ASSERT_EQ(seen, expected) << "round " << round;
  }
  // Reopened as an ordinary engine: everything read above was made durable.
  engine.reset();
  engine = Open(dir.path());
  ASSERT_NE(engine, nullptr);
  for (int i = 0; i < 10; ++i) {
    const std::string stream = "s" + std::to_string(i);
    auto got = engine->Get(Family::kStreamHeads, stream);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->has_value(), heads.count(stream) == 1) << stream;
    if (got->has_value() && heads.count(stream) == 1) {
      EXPECT_EQ(**got, heads[stream]);
    }
  }
}

// What a bulk load wrote becomes durable at a sync, whole; what was written after the last
// sync (and never read) is not there after the process stops.
TEST(EngineTest, BulkLoadKeepsTheBatchesOfCompletedSyncs) {
  testing::TempDir dir;
  {
    auto engine = OpenBulk(dir.path());
    ASSERT_NE(engine, nullptr);
    auto first = engine->NewBatch();
    first->Put(Family::kLog, "a", "1");
    first->Put(Family::kMeta, "head", "1");
    ASSERT_TRUE(engine->Write(*first, /*sync=*/false).ok());
    ASSERT_TRUE(engine->SyncWal().ok());
    auto second = engine->NewBatch();
    second->Put(Family::kLog, "b", "2");
    second->Put(Family::kMeta, "head", "2");
    ASSERT_TRUE(engine->Write(*second, /*sync=*/false).ok());
  }
  auto engine = Open(dir.path());
  ASSERT_NE(engine, nullptr);
  auto head = engine->Get(Family::kMeta, "head");
  ASSERT_TRUE(head.ok() && head->has_value());
  EXPECT_EQ(**head, "1");
  auto b = engine->Get(Family::kLog, "b");
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->has_value());
}

}  // namespace
}  // namespace timetrail
