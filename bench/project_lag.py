#!/usr/bin/env python3
"""project_lag: how far a projection kept by `timetrail serve --project` trails a steady rate of
appends (bench/project_bench runs it; bench/README.md, "project_bench").

Appends RATE events per second over HTTP (requests of BATCH events, paced), for SECONDS. A
second thread takes every 10th acknowledged position and asks the server to answer once the
projection holds it (GET /v1/projections/NAME?min_position=P): the time from the append's
acknowledgement to that answer is how long a write takes to become visible in the target's
tables, the consistency token across the boundary. A third thread samples lag_events every
100 ms. Prints one JSON object.
"""
import argparse
import http.client
import json
import queue
import sys
import threading
import time
import urllib.parse


def percentile(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="the server, http://HOST:PORT")
    ap.add_argument("--projection", default="changes")
    ap.add_argument("--rate", type=int, default=2000, help="events per second")
    ap.add_argument("--batch", type=int, default=10, help="events per append request")
    ap.add_argument("--seconds", type=float, default=20)
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)

    def connect():
        return http.client.HTTPConnection(u.hostname, u.port, timeout=60)

    to_check = queue.Queue()
    visible_ms = []
    lag_samples = []
    done = threading.Event()

    def checker():
        c = connect()
        while True:
            item = to_check.get()
            if item is None:
                return
            position, acked = item
            c.request("GET", "/v1/projections/%s?min_position=%d&timeout_ms=60000" %
                      (a.projection, position))
            r = c.getresponse()
            r.read()
            if r.status == 200:
                visible_ms.append((time.monotonic() - acked) * 1000.0)

    def sampler():
        c = connect()
        while not done.is_set():
            c.request("GET", "/v1/projections/" + a.projection)
            r = c.getresponse()
            body = json.loads(r.read())
            lag_samples.append(body.get("lag_events", 0))
            time.sleep(0.1)

    threads = [threading.Thread(target=checker), threading.Thread(target=sampler)]
    for t in threads:
        t.start()
    c = connect()
    interval = a.batch / float(a.rate)
    start = time.monotonic()
    sent = 0
    request = 0
    next_at = start
    while time.monotonic() - start < a.seconds:
        events = [{"type": "$patch", "data": {"n": sent + i, "note": "steady"},
                   "metadata": {"actor": "bench"}} for i in range(a.batch)]
        body = json.dumps({"events": events})
        c.request("POST", "/v1/streams/steady-%d" % (request % 500), body,
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        answer = json.loads(r.read())
        if r.status != 201:
            sys.exit("append answered %d: %s" % (r.status, answer))
        acked = time.monotonic()
        sent += a.batch
        if request % 10 == 0:
            to_check.put((answer["position"], acked))
        request += 1
        next_at += interval
        pause = next_at - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    elapsed = time.monotonic() - start
    done.set()
    to_check.put(None)
    for t in threads:
        t.join()
    print(json.dumps({
        "events": sent, "seconds": round(elapsed, 2),
        "events_per_second": round(sent / elapsed),
        "visible_ms_p50": round(percentile(visible_ms, 50), 1),
        "visible_ms_p99": round(percentile(visible_ms, 99), 1),
        "visible_ms_max": round(max(visible_ms) if visible_ms else 0, 1),
        "visible_samples": len(visible_ms),
        "lag_events_p50": percentile(lag_samples, 50),
        "lag_events_max": max(lag_samples) if lag_samples else 0,
    }))


if __name__ == "__main__":
    main()
