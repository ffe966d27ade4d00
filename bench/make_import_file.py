#!/usr/bin/env python3
"""Writes an NDJSON file for `timetrail import` to load: one $put event per line, spread over
many streams, each with an id (so a second import writes nothing), metadata with an actor and a
document of about 120 bytes, and no tx field (every line is a transaction of its own, the
import's slowest case before transactions shared fsyncs).

    bench/make_import_file.py --lines 1000000 --streams 100000 -o /tmp/import.ndjson
    time build/release/src/cli/timetrail import /tmp/import.ndjson --data /tmp/import-data
"""
import argparse
import random
import sys
import uuid


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000, help="events (default 1000000)")
    parser.add_argument("--streams", type=int, default=100_000,
                        help="streams the events are spread over (default 100000)")
    parser.add_argument("--revisions", action="store_true",
                        help="give each line its stream revision, so the import checks it")
    parser.add_argument("--without-ids", action="store_true",
                        help="leave out the ids: the store generates them (no id index entry, "
                             "no idempotency lookup per event)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("-o", "--output", default="-", help="file to write; - is stdout")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    cities = ["New York", "Paris", "London", "Berlin", "Tokyo", "Lisbon", "Oslo", "Rome"]
    revision = [0] * args.streams
    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
    with out:
        for i in range(args.lines):
            s = rng.randrange(args.streams)
            event_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            # About 120 bytes of document.
            data = ('{"name":"customer %d","city":"%s","balance":%d.%02d,'
                    '"tier":"gold","tags":["a","b"],"note":"%s"}'
                    % (i, rng.choice(cities), rng.randrange(100000), rng.randrange(100),
                       "x" * rng.randrange(8, 24)))
            rev = ',"revision":%d' % revision[s] if args.revisions else ""
            revision[s] += 1
            id_field = "" if args.without_ids else ',"id":"%s"' % event_id
            out.write('{"stream":"customer/%d"%s%s,"type":"$put","data":%s,'
                      '"metadata":{"actor":"importer"}}\n' % (s, rev, id_field, data))


if __name__ == "__main__":
    main()
