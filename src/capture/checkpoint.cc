#include "capture/checkpoint.h"

#include <nlohmann/json.hpp>

namespace timetrail::capture {

using nlohmann::json;

std::string Checkpoint::Encode() const {
  json j = {{"lsn", FormatLsn(lsn)}};
  if (parts > 0) j["part"] = {{"commit_lsn", FormatLsn(part_commit_lsn)}, {"parts", parts}};
  if (snapshot_incomplete) j["snapshot_incomplete"] = true;
  return j.dump();
}

Result<Checkpoint> Checkpoint::Decode(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  Checkpoint c;
  if (!j.is_object() || !j.contains("lsn") || !j["lsn"].is_string()) {
    return Status::Corruption("capture checkpoint '" + text + "' is not understood");
  }
  TT_ASSIGN_OR_RETURN(c.lsn, ParseLsn(j["lsn"].get<std::string>()));
  if (j.contains("part")) {
    TT_ASSIGN_OR_RETURN(c.part_commit_lsn, ParseLsn(j["part"].value("commit_lsn", std::string())));
    c.parts = j["part"].value("parts", 0ull);
  }
  c.snapshot_incomplete = j.value("snapshot_incomplete", false);
  return c;
}

}  // namespace timetrail::capture
