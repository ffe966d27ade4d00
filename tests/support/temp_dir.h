// A temporary directory removed when the test ends.
#ifndef TIMETRAIL_TESTS_SUPPORT_TEMP_DIR_H_
#define TIMETRAIL_TESTS_SUPPORT_TEMP_DIR_H_

#include <string>

namespace timetrail::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace timetrail::testing

#endif  // TIMETRAIL_TESTS_SUPPORT_TEMP_DIR_H_
