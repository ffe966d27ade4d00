#!/usr/bin/python3
"""As-of point queries on a MariaDB system-versioned table (FOR SYSTEM_TIME AS OF).

The same shape as asof_bench's latency table: one entity per size with that many versions,
loaded one transaction per version with the system time set by SET @@timestamp (MariaDB
stamps system-versioned rows with the transaction's time, so this is how a history over time
is loaded), then random as-of point queries over the whole history. Loading runs with
innodb_flush_log_at_trx_commit=2 to be quick; queries run with it back at 1 (reads do not
depend on it). The client is Python (PyMySQL), so each latency includes the client's own
overhead of some tens of microseconds; the report says so.
"""
import argparse
import datetime
import json
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
    ap.add_argument("--out", required=True, help="JSON summary to write")
    args = ap.parse_args()
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
    summary = {"benchmark": "mariadb_asof",
               "started_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "machine": {"cores": os.cpu_count(), "load_average": list(os.getloadavg())},
               "mariadb": {"server_version": version, "innodb_flush_log_at_trx_commit": 1,
                           "innodb_buffer_pool_size": "256M", "binary_log": "off",
                           "table": "entity BIGINT PRIMARY KEY, v BIGINT, data JSON, WITH SYSTEM VERSIONING",
                           "client": "PyMySQL " + pymysql.__version__ + " over the Unix socket"},
               "config": {"sizes": sizes, "queries_per_size": args.queries},
               "latency": rows}
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=2)
    print(f"mariadb_asof: wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
