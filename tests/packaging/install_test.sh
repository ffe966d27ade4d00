#!/usr/bin/env bash
# Installs a build into a temporary prefix with `cmake --install`, then builds and runs a
# project outside the source tree that finds it with find_package(timetrail) and links
# timetrail::timetrail: the program of examples/quickstart.cc, on a fresh data directory.
#   install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) source=$(cd "$2" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" >"$work/install.log"
for f in bin/timetrail include/timetrail/store.h lib/libtimetrail.a \
         lib/cmake/timetrail/timetrailConfig.cmake; do
  [ -e "$work/prefix/$f" ] || { echo "not installed: $f" >&2; cat "$work/install.log" >&2; exit 1; }
done
help=$("$work/prefix/bin/timetrail" --help)
grep -q "serve" <<<"$help" || { echo "the installed timetrail does not run" >&2; exit 1; }

mkdir "$work/outside"
cp "$source/examples/quickstart.cc" "$work/outside/main.cc"
cat >"$work/outside/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(outside LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 20)
find_package(timetrail 0.1 REQUIRED)
add_executable(outside main.cc)
target_link_libraries(outside PRIVATE timetrail::timetrail)
CMAKE
cmake -S "$work/outside" -B "$work/outside/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/configure.log" 2>&1 || {
  cat "$work/configure.log" >&2; exit 1; }
cmake --build "$work/outside/build" >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }

out=$("$work/outside/build/outside" "$work/data")
echo "$out"
grep -q "^integrity chain verified: 2 events" <<<"$out" || {
  echo "the outside program did not store and verify its events" >&2; exit 1; }
echo "install_test: the installed package builds and runs an outside project"
