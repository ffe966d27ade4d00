#!/usr/bin/env python3
"""Writes the NDJSON history behind tests/data/store-v1.tar.gz.

The archive is a data directory written by timetrail's layout version 1 (the release before the
key layout changed), kept so that upgrade_test can prove that today's timetrail opens and upgrades
such a directory and answers every query from it as it did. It was made with that release by:

    python3 tests/data/make_store_v1.py > /tmp/v1.ndjson
    timetrail import /tmp/v1.ndjson --data /tmp/store-v1
    timetrail verify --data /tmp/store-v1     # records its answer in $audit: position 231
    tar -C /tmp -czf tests/data/store-v1.tar.gz store-v1

The history covers what the layout keeps apart: generated and client-chosen ids, multi-event
transactions, $put/$patch/$delete and domain events, actors, backdated corrections (valid_from
before earlier events) and streams longer than the snapshot interval (64).
"""
import json
import uuid

def line(**fields):
    print(json.dumps(fields, separators=(",", ":")))

# A long $put/$patch stream: snapshots at revisions 63 and 127.
for r in range(150):
    ev = {"stream": "friend/1", "metadata": {"actor": "alice" if r % 3 else "bob",
                                               "reason": "edit %d" % r}}
    if r % 10 == 0:
        ev.update(type="$put", data={"name": "Rachel", "visits": r, "city": "New York"})
    else:
        ev.update(type="$patch", data={"visits": r, "note": None if r % 4 == 0 else "n%d" % r})
    if r % 7 == 0:
        # Client-chosen ids: idempotent retries must keep working after the upgrade.
        ev["id"] = str(uuid.UUID(int=0x1000 + r))
    line(**ev)

# Backdated corrections in valid time.
line(stream="price/9", type="$put", data={"amount": 100},
     valid_from="2026-01-01T00:00:00Z", metadata={"actor": "carol"})
line(stream="price/9", type="$put", data={"amount": 120},
     valid_from="2026-03-01T00:00:00Z", metadata={"actor": "carol"})
line(stream="price/9", type="$patch", data={"amount": 110},
     valid_from="2026-02-01T00:00:00Z", metadata={"actor": "dave", "reason": "correction"})
for i in range(70):
    line(stream="price/9", type="$patch", data={"amount": 200 + i},
         valid_from="2026-04-%02dT00:00:00Z" % (1 + i % 28),
         metadata={"actor": "carol"})

# Delete and re-create; a domain event in between.
line(stream="order/7", type="$put", data={"items": [1, 2]}, metadata={"actor": "erin"})
line(stream="order/7", type="OrderShipped", data={"carrier": "x"}, metadata={})
line(stream="order/7", type="$delete", data=None, metadata={"actor": "erin", "reason": "cancel"})
line(stream="order/7", type="$put", data={"items": [3]}, metadata={"actor": "frank"},
     id=str(uuid.UUID(int=0x2000)))

# A multi-stream transaction.
for s in ("acct/a", "acct/b", "acct/c"):
    line(stream=s, type="$put", data={"balance": 10}, tx=1, metadata={"actor": "bank"})
