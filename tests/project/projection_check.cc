// projection_check --data DIR --config FILE --target URL: compares each projection of FILE in
// the target with the store in DIR (tests/project/fold_check.h); exit 1 with the differences.
// tests/cli/project_test.sh runs it after killing and restarting the projector.
#include <iostream>
#include <string>

#include "fold_check.h"
#include "project/config.h"
#include "timetrail/store.h"

int main(int argc, char** argv) {
  std::string data, config_path, target;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    (flag == "--data" ? data : flag == "--config" ? config_path : target) = argv[i + 1];
  }
  auto config = timetrail::project::LoadProjectorConfig(config_path);
  timetrail::Options options;
  options.read_only = true;
  auto store = timetrail::EventStore::Open(options, data);
  if (!config.ok() || !store.ok()) {
    std::cerr << "projection_check: cannot read the configuration or open the store\n";
    return 2;
  }
  int differences = 0;
  for (const auto& spec : config->projections) {
    for (const std::string& d : timetrail::testing::CompareWithStore(**store, target, spec)) {
      std::cerr << spec.name << ": " << d << "\n";
      if (++differences > 50) return 1;
    }
  }
  if (differences == 0) std::cout << "every table equals the store\n";
  return differences == 0 ? 0 : 1;
}
