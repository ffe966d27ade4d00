#!/usr/bin/env bash
# Moving a store between a data directory and PostgreSQL (run under
# tests/support/with_postgres.sh): `timetrail copy-store` there and back keeps every event,
# time, hash and token, and the copies verify by their chain; `export | import` moves the events
# into a PostgreSQL store too; a destination that holds a store is refused.
#
#   tests/support/with_postgres.sh tests/cli/copy_store_test.sh path/to/timetrail path/to/source
set -euo pipefail
tt=$1
url=$TIMETRAIL_PG_URL
work=$(mktemp -d "${TMPDIR:-/tmp}/timetrail-copy-XXXXXX")
# shellcheck source=../support/serve.sh
source "$2/tests/support/serve.sh"
trap '[ -n "$serve_pid" ] && kill -9 "$serve_pid" 2>/dev/null; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
data="$work/data"

echo "1. a data directory with history, corrections and a token"
for i in 1 2 3 4 5; do
  "$tt" append "friend-$i" -t '$put' -d "{\"name\":\"n$i\",\"city\":\"A\"}" --actor joey \
    --data "$data" >/dev/null
  "$tt" append "friend-$i" -t '$patch' -d '{"city":"B"}' --valid-from 2026-01-01T00:00:00Z \
    --data "$data" >/dev/null
done
"$tt" append friend-1 -t Note -d '{"text":"tab\there"}' --data "$data" >/dev/null
"$tt" token create --name reader --scope read --data "$data" >"$work/token.out"
token=$(grep -o 'tt_[A-Za-z0-9_-]*' "$work/token.out" | head -1)
[ -n "$token" ] || { cat "$work/token.out"; fail "no token was made"; }
"$tt" export --data "$data" >"$work/dir.ndjson" 2>/dev/null
"$tt" integrity --data "$data" --json >"$work/dir.head"

echo "2. copy-store into PostgreSQL: the same events, hashes and chain head"
"$tt" copy-store --from "$data" --to "$url" --to-schema moved >"$work/copy1.out" ||
  fail "copy-store into PostgreSQL"
grep -q "the copy verifies: 12 events" "$work/copy1.out" || { cat "$work/copy1.out"; fail "report"; }
"$tt" export --store "$url" --store-schema moved >"$work/pg.ndjson" 2>/dev/null
cmp -s "$work/dir.ndjson" "$work/pg.ndjson" || fail "the events in PostgreSQL differ from the directory's"
"$tt" integrity --store "$url" --store-schema moved --json >"$work/pg.head"
cmp -s "$work/dir.head" "$work/pg.head" || fail "the chain head differs: $(cat "$work/pg.head")"
# Temporal indexes came along: valid time answers from the copy.
city=$("$tt" get friend-3 --valid-at 2026-02-01T00:00:00Z --store "$url" --store-schema moved --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["state"]["city"])')
[ "$city" = B ] || fail "valid-time state in the copy is '$city'"

echo "3. the token works against a server on the copy"
serve_start "$tt" "$work/serve" --store "$url" --store-schema moved --auth on
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$serve_url/v1/streams/friend-1")
serve_stop
[ "$code" = 200 ] || fail "the copied token was refused ($code)"

echo "4. and back into a new data directory"
"$tt" copy-store --from "$url" --from-schema moved --to "$work/back" >"$work/copy2.out" ||
  fail "copy-store back"
"$tt" export --data "$work/back" >"$work/back.ndjson" 2>/dev/null
cmp -s "$work/dir.ndjson" "$work/back.ndjson" || fail "the events back home differ"
"$tt" integrity --data "$work/back" --json >"$work/back.head"
cmp -s "$work/dir.head" "$work/back.head" || fail "the chain head back home differs"

echo "5. export | import moves the events into a PostgreSQL store too"
"$tt" export --data "$data" 2>/dev/null | "$tt" import - --store "$url" --store-schema imported \
  >/dev/null 2>&1 || fail "export | import"
"$tt" verify --store "$url" --store-schema imported >"$work/verify.out" 2>&1 ||
  { cat "$work/verify.out"; fail "the imported store does not verify"; }
n=$("$tt" export --store "$url" --store-schema imported 2>/dev/null | wc -l)
[ "$n" = "$(wc -l <"$work/dir.ndjson")" ] || fail "import gave $n events"

echo "6. a destination that holds a store, or a source that holds none, is refused"
if "$tt" copy-store --from "$data" --to "$url" --to-schema moved >"$work/bad1.out" 2>&1; then
  fail "a copy over a store was accepted"
fi
grep -q "holds a store already" "$work/bad1.out" || { cat "$work/bad1.out"; fail "message"; }
if "$tt" copy-store --from "$work/nothing" --to "$work/x" >"$work/bad2.out" 2>&1; then
  fail "a copy of nothing was accepted"
fi
[ ! -e "$work/x" ] || [ -z "$(ls -A "$work/x")" ] || fail "a failed copy left a store behind"
echo ok
