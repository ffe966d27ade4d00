#!/usr/bin/env python3
"""A consumer group with three worker processes against a real `timetrail serve`.

The workers (this file run with --worker) read events of the group "jobs" over HTTP, process
them and ack them. One event makes the worker that first gets it hang, in the middle of its
processing; the test kills that worker with SIGKILL, and the event must be processed by another
worker once its lease runs out. A poison event fails in every worker (each nacks it for retry)
and must be parked after max_retries, with a copy in the stream "$parked/jobs". Half way
through, the server is stopped and started again on the same data directory: the group must
resume, and every event must in the end be processed (acked) by some worker. Last, a replay
of the parked events hands the poison event out again.

Usage: group_workers_test.py --bin path/to/timetrail
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

GROUP = "jobs"
LEASE_MS = 1000
MAX_RETRIES = 3
DEADLINE_S = 180  # generous: only a broken server takes this long

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL: " + what, file=sys.stderr)


def call(url, method, path, body=None, timeout=70):
    """(status, parsed JSON body); status 0 when the server cannot be reached."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return 0, None


# --- The worker -----------------------------------------------------------------------------

def worker(work_dir, name):
    """Reads, processes and acks events until the file "stop" appears. Writes one line per
    successful ack to acked-<name>.jsonl. Follows the server through restarts by rereading the
    file "url" whenever a call fails."""
    log = open(os.path.join(work_dir, f"acked-{name}.jsonl"), "a", buffering=1)

    def url():
        with open(os.path.join(work_dir, "url")) as f:
            return f.read().strip()

    def retrying(method, path, body):
        while not os.path.exists(os.path.join(work_dir, "stop")):
            status, answer = call(url(), method, path, body)
            if status != 0 and status != 503:
                return status, answer
            time.sleep(0.1)  # the server is restarting
        return 0, None

    while not os.path.exists(os.path.join(work_dir, "stop")):
        status, answer = retrying("POST", f"/v1/groups/{GROUP}/read",
                                  {"member": name, "max": 3, "wait_ms": 1000})
        if status != 200:
            time.sleep(0.1)
            continue
        for item in answer["events"]:
            position = item["position"]
            data = item["event"]["data"]
            if data.get("poison"):
                retrying("POST", f"/v1/groups/{GROUP}/nack",
                         {"positions": [position], "action": "retry", "member": name,
                          "reason": f"poison: {name} cannot process it"})
                continue
            if data.get("hang"):
                try:
                    # Only the first worker to get it hangs (whatever the delivery count says
                    # after a restart): the test kills it here, mid-processing.
                    fd = os.open(os.path.join(work_dir, "hanging"),
                                 os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                    os.write(fd, json.dumps({"member": name, "pid": os.getpid(),
                                             "position": position}).encode())
                    os.close(fd)
                    while True:
                        time.sleep(60)
                except FileExistsError:
                    pass
            time.sleep(0.01)  # the work
            status, answer = retrying("POST", f"/v1/groups/{GROUP}/ack", {"positions": [position]})
            # 409: not held any more (the lease ran out and another worker acked it, or the
            # server restarted): it will be, or was, processed again. At-least-once.
            log.write(json.dumps({"member": name, "position": position, "status": status,
                                  "delivery_count": item["delivery_count"]}) + "\n")


# --- The test -------------------------------------------------------------------------------

class Server:
    def __init__(self, binary, data, log_path, port=0):
        self.log = open(log_path, "a")
        self.proc = subprocess.Popen(
            [binary, "serve", "--data", data, "--listen", f"127.0.0.1:{port}"],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline().strip()
        m = re.match(r"listening on (http://\S+)$", line)
        if not m:
            self.stop()
            raise RuntimeError(f"server did not say where it listens: {line!r}")
        self.url = m.group(1)
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def append(url, first, count, special):
    """Appends jobs first..first+count-1, one event each; returns {job: position}."""
    positions = {}
    for i in range(first, first + count):
        data = special.get(i, {"n": i})
        status, answer = call(url, "POST", f"/v1/streams/jobs%2F{i}",
                              {"events": [{"type": "job", "data": data}]})
        if status != 201:
            raise RuntimeError(f"append of job {i}: {status} {answer}")
        positions[i] = answer["position"]
    return positions


def acked_lines(work_dir):
    lines = []
    for name in os.listdir(work_dir):
        if name.startswith("acked-"):
            with open(os.path.join(work_dir, name)) as f:
                lines += [json.loads(line) for line in f if line.strip()]
    return lines


def wait_for(what, predicate):
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    check(False, f"gave up waiting for {what} after {DEADLINE_S} s")
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin")
    ap.add_argument("--worker", nargs=2, metavar=("WORK_DIR", "NAME"))
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker)
        return 0

    with tempfile.TemporaryDirectory(prefix="timetrail-groups-") as tmp:
        work, data, server_log = os.path.join(tmp, "work"), os.path.join(tmp, "data"), \
            os.path.join(tmp, "server.log")
        os.mkdir(work)
        server = Server(args.bin, data, server_log)
        workers = {}
        try:
            with open(os.path.join(work, "url"), "w") as f:
                f.write(server.url)
            status, created = call(server.url, "PUT", f"/v1/groups/{GROUP}", {
                "stream_prefix": "jobs/", "max_retries": MAX_RETRIES, "lease_ms": LEASE_MS,
                "max_in_flight": 5})
            check(status == 201, f"PUT group: {status} {created}")
            # Not in the group: another prefix.
            call(server.url, "POST", "/v1/streams/other", {"events": [{"type": "x"}]})
            positions = append(server.url, 1, 30, {7: {"hang": True}, 13: {"poison": True}})

            for name in ("worker-1", "worker-2", "worker-3"):
                workers[name] = subprocess.Popen(
                    [sys.executable, os.path.abspath(__file__), "--worker", work, name])

            # The worker that got job 7 hangs holding it: kill it mid-processing.
            hanging_path = os.path.join(work, "hanging")
            wait_for("a worker to hang on job 7", lambda: os.path.exists(hanging_path) and
                     os.path.getsize(hanging_path) > 0)
            with open(hanging_path) as f:
                hanging = json.load(f)
            os.kill(hanging["pid"], signal.SIGKILL)
            workers.pop(hanging["member"]).wait()
            print(f"killed {hanging['member']} holding position {hanging['position']}")

            # Half way: the server stops and starts again on the same data directory.
            wait_for("10 events acked", lambda: sum(
                1 for line in acked_lines(work) if line["status"] == 200) >= 10)
            server.stop()
            try:
                server = Server(args.bin, data, server_log, server.port)
            except RuntimeError:  # the port was taken meanwhile: the workers reread "url"
                server = Server(args.bin, data, server_log)
            with open(os.path.join(work, "url"), "w") as f:
                f.write(server.url)
            status, group = call(server.url, "GET", f"/v1/groups/{GROUP}")
            check(status == 200 and group["max_retries"] == MAX_RETRIES and
                  group["lease_ms"] == LEASE_MS, f"group after the restart: {status} {group}")
            print(f"restarted: acked through {group['acked_through']}")
            positions.update(append(server.url, 31, 30, {}))

            last = max(positions.values())

            def all_done():
                status, g = call(server.url, "GET", f"/v1/groups/{GROUP}")
                return status == 200 and g["acked_through"] >= last

            wait_for("the group to be done with every job", all_done)
        finally:
            open(os.path.join(work, "stop"), "w").close()
            for p in workers.values():
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

        lines = acked_lines(work)
        acked = {}
        for line in lines:
            if line["status"] == 200:
                acked.setdefault(line["position"], []).append(line["member"])
        poison = positions[13]
        for job, position in sorted(positions.items()):
            if job == 13:
                check(position not in acked, f"the poison job was acked: {acked.get(position)}")
            else:
                check(position in acked, f"job {job} (position {position}) was never acked")
        hang_by = acked.get(positions[7], [])
        check(hang_by and hanging["member"] not in hang_by,
              f"job 7 should be processed by another worker than the killed "
              f"{hanging['member']}: {hang_by}")

        status, group = call(server.url, "GET", f"/v1/groups/{GROUP}")
        check(status == 200 and group["parked"] == 1 and group["in_flight"] == 0,
              f"the group at the end: {status} {group}")
        status, parked = call(server.url, "GET", "/v1/streams/%24parked%2Fjobs")
        copies = [e["data"] for e in (parked or {}).get("events", [])]
        check(status == 200 and len(copies) == 1, f"the parked stream: {status} {parked}")
        if copies:
            copy = copies[0]
            check(copy["position"] == poison and copy["stream"] == "jobs/13" and
                  copy["failed_deliveries"] == MAX_RETRIES and
                  copy["reason"].startswith("poison") and copy["data"] == {"poison": True},
                  f"the parked copy: {copy}")
        # Replaying the parked events hands the poison event out again, as new.
        status, replay = call(server.url, "POST", f"/v1/groups/{GROUP}/replay-parked")
        check(status == 200 and replay["replayed"] == 1, f"replay-parked: {status} {replay}")
        status, got = call(server.url, "POST", f"/v1/groups/{GROUP}/read",
                           {"member": "inspector", "max": 10, "wait_ms": 0})
        check(status == 200 and [(e["position"], e["delivery_count"]) for e in got["events"]] ==
              [(poison, 1)], f"read after replay-parked: {status} {got}")
        status, skipped = call(server.url, "POST", f"/v1/groups/{GROUP}/nack",
                               {"positions": [poison], "action": "skip"})
        check(status == 200, f"nack skip: {status} {skipped}")
        status, group = call(server.url, "GET", f"/v1/groups/{GROUP}")
        check(status == 200 and group["replaying"] == 0 and group["in_flight"] == 0,
              f"the group after the replay: {status} {group}")
        members = {line["member"] for line in lines if line["status"] == 200}
        print(f"{len(acked)} positions acked by {sorted(members)}; "
              f"{sum(1 for line in lines if line['status'] != 200)} acks refused as not held")
        server.stop()
        if failures:
            with open(server_log) as f:
                print("server log:\n" + f.read()[-4000:], file=sys.stderr)
    if failures:
        print(f"{len(failures)} failure(s)", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
