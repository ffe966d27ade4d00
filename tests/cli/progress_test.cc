// The progress report's lines: a bar, how far along and the time left with a known total; the
// events and the rate without one; the final line.
#include "cli/progress.h"

#include <gtest/gtest.h>

namespace timetrail::cli {
namespace {

TEST(ProgressTest, AKnownTotalShowsABarHowFarAlongAndTheTimeLeft) {
  EXPECT_EQ(ProgressLine("imported", 400, 1000, 10.0, false),
            "imported 400 events of 1000 [########------------] 40%, 40 events/s, 10.0 s, "
            "about 15 s left");
  EXPECT_EQ(ProgressLine("imported", 0, 1000, 0.5, false),
            "imported 0 events of 1000 [--------------------] 0%, 0 events/s, 0.5 s, "
            "about 0 s left");
  // More done than announced (a total that was an estimate) fills the bar, never overflows it.
  EXPECT_EQ(ProgressLine("imported", 1200, 1000, 2.0, false),
            "imported 1200 events of 1000 [####################] 100%, 600 events/s, 2.0 s, "
            "about 0 s left");
}

TEST(ProgressTest, WithoutATotalOrWhenDoneItShowsEventsAndTheRate) {
  EXPECT_EQ(ProgressLine("exported", 500, 0, 2.0, false),
            "exported 500 events, 250 events/s, 2.0 s");
  EXPECT_EQ(ProgressLine("imported", 1000, 1000, 4.0, true),
            "imported 1000 events, 250 events/s, 4.0 s, done");
}

}  // namespace
}  // namespace timetrail::cli
