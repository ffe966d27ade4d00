#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang, AddressSanitizer and UBSan, and fuzzes each
# for a while. Findings (crashes, hangs, sanitizer reports) are left in build/fuzz/findings/ and
# make the script fail; once fixed, copy the input into fuzz/corpus/<target>/ so the test suite
# replays it from then on.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/fuzz.sh [--seconds=N] [--keep] [--list] [TARGET...]

  --seconds=N  how long to fuzz each target (default 60)
  --keep       merge the inputs that reach new code into fuzz/corpus/<target>/ (commit them)
  --list       print the targets and exit
  TARGET       fuzz only these (default: all)

Installs clang and its fuzzer runtime (clang-14, libclang-rt-14-dev) when missing, builds in
build/fuzz, and prints, per target, the runs, coverage and findings.
USAGE
}

root=$(cd "$(dirname "$0")/.." && pwd)
targets_all=(stored_event raw_json ndjson_import api_request http_request auth_header pgoutput pg_values)
seconds=60
keep=0
targets=()
for arg in "$@"; do
  case "$arg" in
    --seconds=*) seconds=${arg#--seconds=} ;;
    --keep) keep=1 ;;
    --list) printf '%s\n' "${targets_all[@]}"; exit 0 ;;
    --help|-h) usage; exit 0 ;;
    -*) echo "fuzz.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
    *)
      if [[ ! " ${targets_all[*]} " == *" $arg "* ]]; then
        echo "fuzz.sh: unknown target '$arg'; targets: ${targets_all[*]}" >&2
        exit 2
      fi
      targets+=("$arg") ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${targets_all[@]}")
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz.sh: --seconds must be a positive whole number" >&2
  exit 2
fi

"$root/scripts/install-deps.sh"
missing=()
for pkg in clang-14 libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fuzz.sh: installing ${missing[*]}" >&2
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd=sudo
  $sudo_cmd apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi

build="$root/build/fuzz"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++-14 -DTIMETRAIL_FUZZ=ON -DTIMETRAIL_BUILD_TESTS=OFF \
  -DTIMETRAIL_BUILD_BENCH=OFF >&2
cmake --build "$build" --target "${targets[@]/#/fuzz_}" >&2

failed=()
for t in "${targets[@]}"; do
  scratch="$build/corpus/$t"
  findings="$build/findings/$t"
  mkdir -p "$scratch" "$findings"
  echo "== fuzz_$t for ${seconds}s (corpus fuzz/corpus/$t, findings $findings)" >&2
  # New inputs go to the scratch corpus (the first directory); the repo's corpus seeds the run.
  if ! LSAN_OPTIONS="suppressions=$root/fuzz/lsan.supp:print_suppressions=0" \
      "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=90 -rss_limit_mb=4096 \
      -print_final_stats=1 -artifact_prefix="$findings/" "$scratch" "$root/fuzz/corpus/$t" \
      2> "$build/fuzz_$t.log"; then
    failed+=("$t")
  fi
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|cov:" "$build/fuzz_$t.log" \
    | tail -3 >&2 || true
  if [ "$keep" -eq 1 ]; then
    "$build/fuzz/fuzz_$t" -merge=1 "$root/fuzz/corpus/$t" "$scratch" 2>/dev/null
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: findings in: ${failed[*]} (inputs under $build/findings/, logs $build/fuzz_*.log)" >&2
  exit 1
fi
echo "fuzz.sh: no findings in ${targets[*]}" >&2
