#!/usr/bin/python3
"""As-of point queries on a MariaDB system-versioned table (FOR SYSTEM_TIME AS OF).

The same shape as asof_bench: a latency part, one entity per size with that many versions,
loaded one transaction per version with the system time set by SET @@timestamp (MariaDB
stamps system-versioned rows with the transaction's time, so this is how a history over time
is loaded), then random as-of point queries over the whole history; and a throughput part,
--events versions over --entities entities (every entity gets version k at the same instant),
queried by --clients client processes at once for --seconds, in --rounds rounds. Loading runs with
innodb_flush_log_at_trx_commit=2 to be quick; queries run with it back at 1 (reads do not
depend on it). The client is Python (PyMySQL), so each latency includes the client's own
overhead of some tens of microseconds; the report says so.
"""
import argparse
import datetime
import json
import multiprocessing
import os
import random
import statistics
import sys
import time

import pymysql
import pymysql.constants.CLIENT


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(p / 100.0 * len(sorted_values)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", required=True, help="MariaDB server socket")
    ap.add_argument("--sizes", default="10,1000,100000", help="versions per entity, comma separated")
    ap.add_argument("--queries", type=int, default=2000, help="as-of queries per size")
    ap.add_argument("--events", type=int, default=1_000_000, help="versions of the throughput part (0: skip it)")
    ap.add_argument("--entities", type=int, default=100_000, help="entities they are spread over")
    ap.add_argument("--clients", type=int, default=4, help="client processes of the throughput part")
    ap.add_argument("--seconds", type=float, default=10, help="length of one throughput round")
    ap.add_argument("--rounds", type=int, default=3, help="throughput rounds (the median is reported)")
    ap.add_argument("--out", required=True, help="JSON summary to write")
    args = ap.parse_args()
    if args.events and (args.entities < 1 or args.events < args.entities or args.clients < 1
                        or args.seconds <= 0 or args.rounds < 1):
        ap.error("--entities, --clients, --seconds and --rounds must be positive and --events at least --entities")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    conn = pymysql.connect(unix_socket=args.socket, user="root", database="bench", autocommit=True,
                           client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
    cur = conn.cursor()
    cur.execute("SET time_zone = '+00:00'")
    cur.execute("SELECT VERSION()")
    version = cur.fetchone()[0]
    cur.execute("DROP TABLE IF EXISTS versions")
    cur.execute("CREATE TABLE versions (entity BIGINT NOT NULL PRIMARY KEY, v BIGINT NOT NULL,"
                " data JSON NOT NULL) WITH SYSTEM VERSIONING")
    cur.execute("SET GLOBAL innodb_flush_log_at_trx_commit = 2")
    base = 1_700_000_000  # seconds since the epoch of the first version
    rows = []
    for entity, n in enumerate(sizes, start=1):
        t0 = time.monotonic()
        print(f"mariadb_asof: loading {n} versions of entity {entity}", file=sys.stderr)
        stmts = []
        for i in range(n):
            ts = base + i  # one version per second
            data = json.dumps({"name": f"e{entity}", "v": i, "pad": "x" * 80})
            if i == 0:
                sql = f"INSERT INTO versions VALUES ({entity}, 0, '{data}')"
            else:
                sql = f"UPDATE versions SET v = {i}, data = '{data}' WHERE entity = {entity}"
            stmts.append(f"SET @@timestamp = {ts}; {sql};")
            if len(stmts) == 500 or i == n - 1:
                cur.execute(" ".join(stmts))
                while cur.nextset():
                    pass
                stmts = []
        cur.execute("SET @@timestamp = DEFAULT")
        load_seconds = time.monotonic() - t0
        # Check that the history is really there: a query as of version k returns v = k.
        cur.execute("SELECT COUNT(*) FROM versions FOR SYSTEM_TIME ALL WHERE entity = %s", (entity,))
        stored = cur.fetchone()[0]
        if stored != n:
            sys.exit(f"mariadb_asof: entity {entity} has {stored} versions, expected {n}")
        rows.append({"versions": n, "load_seconds": load_seconds})
    cur.execute("SET GLOBAL innodb_flush_log_at_trx_commit = 1")
    cur.execute("ANALYZE TABLE versions")
    cur.fetchall()
    rng = random.Random(6)
    for entity, row in enumerate(rows, start=1):
        n = row["versions"]
        lat = []
        wrong = 0
        for _ in range(args.queries):
            k = rng.randrange(n)
            at = datetime.datetime.fromtimestamp(base + k, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            # The session time zone is UTC below, so the literal means the same instant.
            t0 = time.perf_counter_ns()
            cur.execute("SELECT v, data FROM versions FOR SYSTEM_TIME AS OF TIMESTAMP %s WHERE entity = %s",
                        (at, entity))
            got = cur.fetchone()
            lat.append((time.perf_counter_ns() - t0) / 1000.0)
            if got is None or got[0] != k:
                wrong += 1
        lat.sort()
        row.update({"queries": len(lat), "wrong_answers": wrong,
                    "latency": {"p50_us": percentile(lat, 50), "p99_us": percentile(lat, 99),
                                "max_us": lat[-1], "mean_us": statistics.fmean(lat)}})
        print(f"mariadb_asof: {n} versions: p50 {row['latency']['p50_us']:.1f} us, "
              f"p99 {row['latency']['p99_us']:.1f} us, wrong answers {wrong}", file=sys.stderr)
    throughput = None
    if args.events:
        throughput = measure_throughput(args, cur)
    summary = {"benchmark": "mariadb_asof",
               "started_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "machine": {"cores": os.cpu_count(), "load_average": list(os.getloadavg())},
               "mariadb": {"server_version": version, "innodb_flush_log_at_trx_commit": 1,
                           "innodb_buffer_pool_size": "256M", "binary_log": "off",
                           "table": "entity BIGINT PRIMARY KEY, v BIGINT, data JSON, WITH SYSTEM VERSIONING",
                           "client": "PyMySQL " + pymysql.__version__ + " over the Unix socket"},
               "config": {"sizes": sizes, "queries_per_size": args.queries, "events": args.events,
                          "entities": args.entities, "clients": args.clients, "seconds": args.seconds,
                          "rounds": args.rounds},
               "latency": rows}
    if throughput:
        summary["throughput"] = throughput
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=2)
    print(f"mariadb_asof: wrote {args.out}", file=sys.stderr)


# The throughput part's entities are numbered from here, after the latency part's, and its
# versions start at this instant: version k of every entity was written at THROUGHPUT_BASE + k.
THROUGHPUT_FIRST_ENTITY = 1_000_000
THROUGHPUT_BASE = 1_800_000_000


def load_throughput_data(args, cur):
    versions = args.events // args.entities
    cur.execute("SET GLOBAL innodb_flush_log_at_trx_commit = 2")
    t0 = time.monotonic()
    first, last = THROUGHPUT_FIRST_ENTITY, THROUGHPUT_FIRST_ENTITY + args.entities - 1
    chunk = 5000
    for k in range(versions):
        # One statement per chunk of entities, all stamped with version k's instant.
        for lo in range(first, last + 1, chunk):
            hi = min(last, lo + chunk - 1)
            data = f"CONCAT('{{\"name\": \"e', entity, '\", \"v\": {k}, \"pad\": \"{'x' * 80}\"}}')"
            if k == 0:
                sql = (f"INSERT INTO versions SELECT seq, 0, CONCAT('{{\"name\": \"e', seq, '\", \"v\": 0, "
                       f"\"pad\": \"{'x' * 80}\"}}') FROM seq_{lo}_to_{hi}")
            else:
                sql = f"UPDATE versions SET v = {k}, data = {data} WHERE entity BETWEEN {lo} AND {hi}"
            cur.execute(f"SET @@timestamp = {THROUGHPUT_BASE + k}")
            cur.execute(sql)
        print(f"mariadb_asof: throughput data: version {k + 1} of {versions} of {args.entities} entities, "
              f"{time.monotonic() - t0:.0f} s", file=sys.stderr)
    cur.execute("SET @@timestamp = DEFAULT")
    cur.execute("SET GLOBAL innodb_flush_log_at_trx_commit = 1")
    cur.execute("ANALYZE TABLE versions")
    cur.fetchall()
    return versions, time.monotonic() - t0


def query_worker(socket, client, entities, versions, seconds, out):
    """One client process: random as-of queries for "seconds"; puts (queries, wrong, latencies)."""
    conn = pymysql.connect(unix_socket=socket, user="root", database="bench", autocommit=True)
    cur = conn.cursor()
    cur.execute("SET time_zone = '+00:00'")
    rng = random.Random(9000 + client)
    lat, wrong = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        entity = THROUGHPUT_FIRST_ENTITY + rng.randrange(entities)
        micros = rng.randrange(versions * 1_000_000)
        at = datetime.datetime.fromtimestamp(THROUGHPUT_BASE, datetime.timezone.utc) + \
            datetime.timedelta(microseconds=micros)
        t0 = time.perf_counter_ns()
        cur.execute("SELECT v FROM versions FOR SYSTEM_TIME AS OF TIMESTAMP %s WHERE entity = %s",
                    (at.strftime("%Y-%m-%d %H:%M:%S.%f"), entity))
        got = cur.fetchone()
        lat.append((time.perf_counter_ns() - t0) / 1000.0)
        if got is None or got[0] != micros // 1_000_000:
            wrong += 1
    out.put((len(lat), wrong, lat))
    conn.close()


def measure_throughput(args, cur):
    print(f"mariadb_asof: loading {args.events} versions over {args.entities} entities", file=sys.stderr)
    versions, load_seconds = load_throughput_data(args, cur)
    socket = cur.connection.unix_socket
    rounds = []
    for r in range(args.rounds):
        out = multiprocessing.Queue()
        procs = [multiprocessing.Process(target=query_worker,
                                         args=(socket, c, args.entities, versions, args.seconds, out))
                 for c in range(args.clients)]
        t0 = time.monotonic()
        for p in procs:
            p.start()
        results = [out.get() for _ in procs]
        for p in procs:
            p.join()
        elapsed = time.monotonic() - t0
        queries = sum(q for q, _, _ in results)
        wrong = sum(w for _, w, _ in results)
        lat = sorted(x for _, _, l in results for x in l)
        rounds.append({"queries": queries, "wrong_answers": wrong, "seconds": elapsed,
                       "queries_per_second": queries / elapsed,
                       "latency": {"p50_us": percentile(lat, 50), "p99_us": percentile(lat, 99)}})
        print(f"mariadb_asof: throughput round {r + 1}/{args.rounds}: {queries / elapsed:.0f} queries/s, "
              f"p50 {percentile(lat, 50):.1f} us, wrong answers {wrong}", file=sys.stderr)
    median = sorted(rounds, key=lambda x: x["queries_per_second"])[(len(rounds) - 1) // 2]
    return {"events": versions * args.entities, "entities": args.entities, "clients": args.clients,
            "load_seconds": load_seconds, "queries_per_second": median["queries_per_second"],
            "latency": median["latency"], "wrong_answers": sum(r["wrong_answers"] for r in rounds),
            "round_queries_per_second": [r["queries_per_second"] for r in rounds]}


if __name__ == "__main__":
    main()
