# Sourced by the shell tests that run `timetrail serve` as a process: starts it on a free port
# and waits until it listens.
#
#   source tests/support/serve.sh
#   serve_start "$tt" "$work/serve" --data "$work/data" --auth off   # sets serve_pid, serve_url
#   curl "$serve_url/healthz"
#   serve_stop
#
# The server's stdout and stderr go to PREFIX.out and PREFIX.err; if it exits or does not
# listen within 10 s, its stderr is printed and the test fails.

serve_pid=""
serve_url=""

serve_start() {  # binary, log prefix, serve arguments...
  local binary=$1 prefix=$2
  shift 2
  "$binary" serve --listen 127.0.0.1:0 "$@" >"$prefix.out" 2>"$prefix.err" &
  serve_pid=$!
  serve_url=""
  for _ in $(seq 1 100); do
    # The file may not exist yet: the background process opens it.
    serve_url=$(sed -n 's/^listening on //p' "$prefix.out" 2>/dev/null | head -1 || true)
    [ -n "$serve_url" ] && return 0
    if ! kill -0 "$serve_pid" 2>/dev/null; then
      cat "$prefix.err" >&2
      echo "FAIL: timetrail serve $* exited" >&2
      exit 1
    fi
    sleep 0.1
  done
  cat "$prefix.err" >&2
  echo "FAIL: timetrail serve $* did not start" >&2
  exit 1
}

serve_stop() {  # SIGTERM, and wait for a clean stop
  [ -n "$serve_pid" ] || return 0
  kill "$serve_pid" 2>/dev/null || true
  wait "$serve_pid" 2>/dev/null || true
  serve_pid=""
}
