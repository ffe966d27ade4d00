// A real full disk: the store on a tmpfs with a small size limit. Appends that do not fit are
// refused with an error saying the disk is full, reads go on, and appends resume (without a
// reopen) once space is freed. Needs root (mount); CI runs as root.
#include <sys/mount.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "support/store_helpers.h"
#include "support/temp_dir.h"

namespace timetrail {
namespace {

using testing::Event;
using testing::TempDir;

ReadStreamOptions All() {
  ReadStreamOptions o;
  o.max_count = SIZE_MAX;
  return o;
}

class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mount_point_ = tmp_.Sub("small-disk");
    std::filesystem::create_directories(mount_point_);
    if (::mount("tmpfs", mount_point_.c_str(), "tmpfs", 0, "size=12m") != 0) {
      FAIL() << "cannot mount a 12 MB tmpfs on " << mount_point_ << ": " << std::strerror(errno)
             << " (this test needs root)";
    }
    mounted_ = true;
    // Space to free later: a filler file beside the data directory.
    std::ofstream filler(mount_point_ + "/filler", std::ios::binary);
    std::string mb(1 << 20, 'x');
    for (int i = 0; i < 3; ++i) filler << mb;
    ASSERT_TRUE(filler.good());
  }
  void TearDown() override {
    if (mounted_) {
      EXPECT_EQ(::umount2(mount_point_.c_str(), MNT_DETACH), 0) << std::strerror(errno);
    }
  }

  TempDir tmp_;
  std::string mount_point_;
  bool mounted_ = false;
};

TEST_F(DiskFullTest, AppendsAreRefusedReadsGoOnAndAppendsResumeOnceSpaceIsFreed) {
  const std::string data_dir = mount_point_ + "/data";
  auto store = testing::OpenOrDie(data_dir);
  ASSERT_NE(store, nullptr);
  const std::string payload = "{\"pad\":\"" + std::string(4000, 'p') + "\",\"n\":";
  std::vector<std::string> acked;
  Status refused;
  for (int i = 0; i < 20000; ++i) {
    std::string data = payload + std::to_string(i) + "}";
    auto r = store->Append("s", ExpectedRevision::Any(), {Event("T", data)});
    if (!r.ok()) {
      refused = r.status();
      break;
    }
    acked.push_back(data);
  }
  ASSERT_FALSE(refused.ok()) << "the disk never filled up";
  ASSERT_GT(acked.size(), 10u);
  EXPECT_EQ(refused.code(), StatusCode::kIOError) << refused.ToString();
  EXPECT_NE(refused.message().find("the disk is full"), std::string::npos) << refused.ToString();
  EXPECT_NE(refused.message().find(data_dir), std::string::npos)
      << "the error names the data directory: " << refused.ToString();

  // Reads go on, and show exactly the acknowledged events.
  auto read = store->ReadStream("s", All());
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->size(), acked.size());
  EXPECT_EQ(read->back().data, acked.back());
  // Still full: still refused, with the same clear error.
  auto again = store->Append("s", ExpectedRevision::Any(), {Event("T", payload + "-1}")});
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("the disk is full"), std::string::npos)
      << again.status().ToString();

  // Free space: appends resume without a reopen (RocksDB notices the free space by itself,
  // within seconds; until then appends keep getting the disk-full error).
  ASSERT_EQ(::unlink((mount_point_ + "/filler").c_str()), 0);
  int refusals = 0;
  for (int i = 0; i < 20;) {
    std::string data = "{\"after\":" + std::to_string(i) + "}";
    auto r = store->Append("s", ExpectedRevision::Any(), {Event("T", data)});
    if (!r.ok()) {
      ASSERT_NE(r.status().message().find("the disk is full"), std::string::npos)
          << r.status().ToString();
      ASSERT_LT(++refusals, 6000) << "appends never resumed: " << r.status().ToString();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    acked.push_back(data);
    ++i;
  }
  store.reset();

  store = testing::OpenOrDie(data_dir);
  ASSERT_NE(store, nullptr);
  read = store->ReadStream("s", All());
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->size(), acked.size());
  for (std::size_t i = 0; i < acked.size(); ++i) EXPECT_EQ((*read)[i].data, acked[i]);
  auto report = store->Verify(VerifyOptions());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->ok) << report->message;
}

}  // namespace
}  // namespace timetrail
