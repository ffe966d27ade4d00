#!/usr/bin/python3
"""Writes bench/REPORT.md (and PNG plots beside it) from bench/results/*.json.

For each benchmark it uses the full-mode summary when there is one, else the
quick one, so the report always says which mode each figure came from. Plots
need python3-matplotlib; without it the report is written without them and
says so. Usage: bench/report/report.py [--results DIR] [--out FILE]
"""
import argparse
import glob
import json
import os
import platform
import subprocess
import sys

BENCHMARKS = ["append", "http", "http_wrk", "asof", "mariadb_asof", "capture", "context", "project", "nodes", "temporal", "import"]


def load(results):
    found = {}
    for name in BENCHMARKS:
        for mode in ("full", "quick"):
            path = os.path.join(results, f"{name}-{mode}.json")
            if os.path.exists(path):
                try:
                    with open(path) as f:
                        found[name] = (mode, json.load(f))
                except (OSError, ValueError) as e:
                    print(f"report: skipping {path}: {e}", file=sys.stderr)
                break
    return found


def fmt(x, digits=0):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def ratio(x):
    return "-" if x is None else f"{x:.2f}x"


def measure_machine():
    facts = {"cores": os.cpu_count(), "kernel": platform.release()}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    facts["memory_gib"] = int(line.split()[1]) / 1024 / 1024
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    facts["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    facts["load_average"] = list(os.getloadavg())
    # The disk's durable-write rate where the benchmarks keep their data (TMPDIR): 4 KiB writes,
    # each followed by fdatasync, for one second; this bounds any one-fsync-per-commit design.
    try:
        import tempfile
        import time
        with tempfile.NamedTemporaryFile(dir=os.environ.get("TMPDIR", "/tmp")) as f:
            block = b"x" * 4096
            n, start = 0, time.monotonic()
            while time.monotonic() - start < 1.0:
                os.pwrite(f.fileno(), block, 0)
                os.fdatasync(f.fileno())
                n += 1
            facts["fdatasyncs_per_second"] = n / (time.monotonic() - start)
    except OSError:
        pass
    return facts


def versions():
    out = {}
    for key, cmd in [("postgresql", ["sh", "-c", "ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1"]),
                     ("rocksdb", ["sh", "-c", "dpkg-query -W -f='${Version}' librocksdb-dev 2>/dev/null"]),
                     ("compiler", ["sh", "-c", "c++ --version 2>/dev/null | head -1"])]:
        try:
            out[key] = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip() or "-"
        except (OSError, subprocess.SubprocessError):
            out[key] = "-"
    return out


def rounds_note(found, names):
    """How many times each figure of these benchmarks was measured, and which run it shows."""
    parts = []
    for n in names:
        if n in found:
            rounds = (found[n][1].get("config") or {}).get("rounds", 1)
            parts.append(f"{n}: {rounds} round(s)")
    return ("Each system ran every scenario in rounds, one after another (" + ", ".join(parts) + "); a figure is from the round "
            "with the median throughput, so its latencies come from that same round. Every round's events/s is in "
            "`bench/results/*.json` (`round_events_per_second`).")


def goals_rows(name, data):
    rows = []
    goals = data.get("goals", [])
    if isinstance(goals, dict):  # capture writes {goal: met}; the figures are beside them
        tps, tp = data.get("tps", {}), data.get("throughput", {})
        base = tps.get("median_no_audit")
        measured = {
            "capture_tps_within_10pct": f"{tps['median_capture'] / base:.2f}x of no audit" if base and tps.get("median_capture") else "-",
            "capture_cheaper_than_trigger": f"{tps['median_capture']:.0f} vs {tps['median_trigger']:.0f} TPS" if tps.get("median_capture") and tps.get("median_trigger") else "-",
            "throughput_at_least_0_8x": f"{tp['ratio']:.2f}x pg_recvlogical" if tp.get("ratio") is not None else "-",
            "capture_tps_within_2pct_of_pg_recvlogical": f"{tps['capture_of_pg_recvlogical']:.2f}x of pg_recvlogical draining" if tps.get("capture_of_pg_recvlogical") is not None else "-",
            "lag_p99_at_most_10ms": f"{data.get('lag', {}).get('p99_ms')} ms",
        }
        for goal, met in goals.items():
            text = (goal.replace("0_8x", "0.8x").replace("10pct", "10%").replace("2pct", "2%")
                    .replace("10ms", "10 ms").replace("_", " "))
            rows.append((name, text, measured.get(goal, "-"), met))
    else:
        for g in goals:
            measured = g.get("measured_text") or (
                f"{g['measured']:.2f}" if isinstance(g.get("measured"), (int, float)) else "-")
            rows.append((name, g.get("goal", "?"), measured, g.get("met")))
    return rows


def plots(found, outdir):
    """Returns a list of (title, file name) of the plots written."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    made = []
    if "asof" in found:
        lat = found["asof"][1].get("latency", [])
        xs = [r["versions"] for r in lat]
        if xs:
            fig, ax = plt.subplots(figsize=(6, 4))
            for side, label in (("timetrail", "timetrail (embedded)"), ("postgres", "PostgreSQL (tstzrange + gist)")):
                ys = [r.get(side, {}).get("latency", {}).get("p50_us") for r in lat]
                ax.plot(xs, ys, marker="o", label=label + " p50")
                ys = [r.get(side, {}).get("latency", {}).get("p99_us") for r in lat]
                ax.plot(xs, ys, marker="x", linestyle="--", label=label + " p99")
            ml = found.get("mariadb_asof", (None, {}))[1].get("latency", [])
            if ml:
                ax.plot([r["versions"] for r in ml], [r["latency"]["p50_us"] for r in ml], marker="s",
                        label="MariaDB (system-versioned, Python client) p50")
            ax.set_xscale("log"); ax.set_yscale("log")
            ax.set_xlabel("versions of the queried entity"); ax.set_ylabel("as-of query latency (us)")
            ax.set_title("As-of point query latency against history size")
            ax.legend(fontsize=7); ax.grid(True, which="both", alpha=0.3)
            fig.tight_layout(); fig.savefig(os.path.join(outdir, "asof-latency.png"), dpi=110); plt.close(fig)
            made.append(("As-of latency against history size", "asof-latency.png"))
    bars = []
    if "append" in found:
        for s in found["append"][1].get("scenarios", []):
            bars.append((s.get("label", s.get("name")),
                         s.get("timetrail", {}).get("events_per_second"),
                         s.get("postgres", {}).get("events_per_second")))
    if "http" in found:
        for s in found["http"][1].get("appends", []):
            bars.append(("HTTP " + s.get("label", s.get("name")),
                         s.get("timetrail_http", {}).get("events_per_second"),
                         s.get("postgres", {}).get("events_per_second")))
    if bars:
        fig, ax = plt.subplots(figsize=(8, 0.5 * len(bars) + 1.5))
        ys = range(len(bars))
        ax.barh([y + 0.2 for y in ys], [b[1] or 0 for b in bars], height=0.4, label="timetrail")
        ax.barh([y - 0.2 for y in ys], [b[2] or 0 for b in bars], height=0.4, label="PostgreSQL")
        ax.set_yticks(list(ys)); ax.set_yticklabels([b[0] for b in bars], fontsize=7)
        ax.set_xscale("log"); ax.set_xlabel("events per second (log); appends are durable")
        ax.set_title("Appends and reads"); ax.legend(fontsize=8); ax.grid(True, axis="x", alpha=0.3)
        fig.tight_layout(); fig.savefig(os.path.join(outdir, "appends.png"), dpi=110); plt.close(fig)
        made.append(("Appends and reads, timetrail against PostgreSQL", "appends.png"))
    pts = found.get("temporal", (None, {}))[1].get("scaling", [])
    if pts:
        # Cost against store size (log x): as-of latency, append throughput, bytes per event.
        xs = [p["size"] for p in pts]
        fig, axs = plt.subplots(1, 3, figsize=(13, 4))
        for side, label in (("timetrail", "timetrail"), ("postgres", "PostgreSQL")):
            axs[0].plot(xs, [p["asof"][side]["p50_us"] for p in pts], marker="o", label=label + " p50")
            axs[0].plot(xs, [p["asof"][side]["p99_us"] for p in pts], marker="x", linestyle="--", label=label + " p99")
            for a in pts[0].get("appends", []):
                w = a["writers"]
                axs[1].plot(xs, [next(b for b in p["appends"] if b["writers"] == w)[side]["events_per_second"] for p in pts],
                            marker="o" if w == 1 else "s", linestyle="-" if w == 1 else ":",
                            label=f"{label}, {w} writer{'s' if w != 1 else ''}")
        axs[2].plot(xs, [p["disk"]["timetrail_bytes_per_event"] for p in pts], marker="o", label="timetrail (data directory)")
        axs[2].plot(xs, [p["disk"]["postgres_bytes_per_event"] for p in pts], marker="s", label="PostgreSQL (tables + indexes)")
        axs[2].plot(xs, [p["disk"]["postgres_bytes_per_event_with_wal"] for p in pts], marker="s", linestyle=":",
                    label="PostgreSQL + pg_wal")
        for ax, yl, t in ((axs[0], "as-of point query latency (us)", "As-of latency"),
                          (axs[1], "durable appends, events/s (batches of 100)", "Append throughput"),
                          (axs[2], "bytes on disk per event", "Disk per event")):
            ax.set_xscale("log"); ax.set_xlabel("events in the store"); ax.set_ylabel(yl); ax.set_title(t)
            ax.grid(True, which="both", alpha=0.3); ax.legend(fontsize=7)
        axs[0].set_yscale("log")
        fig.tight_layout(); fig.savefig(os.path.join(outdir, "scaling.png"), dpi=110); plt.close(fig)
        made.append(("Cost against store size (temporal_bench)", "scaling.png"))
    return made


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    bench = os.path.dirname(here)
    p = argparse.ArgumentParser(description="Write bench/REPORT.md and its plots from bench/results/*.json.")
    p.add_argument("--results", default=os.path.join(bench, "results"), help="directory of <name>-<mode>.json")
    p.add_argument("--out", default=os.path.join(bench, "REPORT.md"), help="report file to write")
    args = p.parse_args()
    found = load(args.results)
    outdir = os.path.dirname(os.path.abspath(args.out))
    m = measure_machine()
    v = versions()
    L = ["# timetrail benchmark report", "",
         "Generated by `bench/report/report.py` (run by `bench/run`) from `bench/results/*.json`.",
         "Each benchmark's figures come from its full-mode run when there is one, else its quick run;",
         "the mode and the time of each run are stated. Medians and repetitions are as each benchmark",
         "records them (see bench/README.md).", "", "## Machine", "",
         "| | at report time | as recorded by each benchmark |", "|---|---|---|"]
    rec = {n: d.get("machine", {}) for n, (_, d) in found.items()}
    def per_bench(key):
        return "; ".join(f"{n}: {fmt(mm.get(key), 1) if isinstance(mm.get(key), float) else mm.get(key)}"
                         for n, mm in rec.items() if mm.get(key) is not None) or "-"
    L.append(f"| cores | {m.get('cores')} | {per_bench('cores')} |")
    L.append(f"| memory | {m.get('memory_gib', 0):.1f} GiB | {per_bench('memory_gib')} |")
    L.append(f"| CPU | {m.get('cpu_model', '-')} | |")
    L.append(f"| kernel | {m.get('kernel')} | |")
    L.append(f"| fdatasyncs/s of 4 KiB (measured) | {fmt(m.get('fdatasyncs_per_second'))} | {per_bench('fsyncs_per_second')} |")
    L.append(f"| load average (1/5/15 min) | {' / '.join(f'{x:.2f}' for x in m['load_average'])} | "
             + "; ".join(f"{n}: {' / '.join(f'{x:.2f}' for x in mm['load_average'])}" for n, mm in rec.items()
                         if mm.get('load_average')) + " |")
    L += ["", "The machine is shared with other builds, so load varies between runs; figures taken under",
          "high load understate both sides.", "", "## Versions and configurations", "",
          f"- PostgreSQL (installed major version): {v['postgresql']}; RocksDB package: {v['rocksdb']};"
          f" compiler: {v['compiler']}"]
    for n, (mode, d) in found.items():
        pg = d.get("postgres") or d.get("postgresql")
        L.append(f"- **{n}** ({mode}, {d.get('started_at') or d.get('at', '?')}): config `{json.dumps(d.get('config') or d.get('pgbench') or {})}`")
        if pg:
            L.append(f"  - PostgreSQL: `{json.dumps(pg)}`")
    L += ["", "## Goals", "", "| benchmark | goal | measured | met |", "|---|---|---|---|"]
    losses = []
    for n, (mode, d) in found.items():
        for b, goal, meas, met in goals_rows(n, d):
            L.append(f"| {b} ({mode}) | {goal} | {meas} | {'yes' if met else 'no' if met is False else '-'} |")
            if met is False:
                losses.append(f"- {b}: goal not met: {goal} (measured {meas}).")
    # The plan's four headline goals, from whichever figures measure them.
    L += ["", "### Headline goals of the benchmark plan", "", "| goal | measured | met |", "|---|---|---|"]
    b64 = next((s for s in found.get("append", (None, {}))[1].get("scenarios", []) if s.get("threads") == 64), None)
    if b64 and b64.get("ratio_events_per_second") is not None:
        r = b64["ratio_events_per_second"]
        L.append(f"| durable appends, 64 writers: at least 10x PostgreSQL | {ratio(r)} | {'yes' if r >= 10 else 'no'} |")
    else:
        L.append("| durable appends, 64 writers: at least 10x PostgreSQL | not measured | - |")
    th = found.get("asof", (None, {}))[1].get("throughput", {})
    if th.get("ratio_queries_per_second") is not None:
        r = th["ratio_queries_per_second"]
        L.append(f"| as-of queries at least 5x PostgreSQL (queries/s, 4 clients) | {ratio(r)} | {'yes' if r >= 5 else 'no'} |")
    maria = {r["versions"]: r for r in found.get("mariadb_asof", (None, {}))[1].get("latency", [])}
    tt = {r["versions"]: r for r in found.get("asof", (None, {}))[1].get("latency", [])}
    common = sorted(set(maria) & set(tt))
    if common:
        n = common[-1]
        r = maria[n]["latency"]["p50_us"] / tt[n]["timetrail"]["latency"]["p50_us"]
        L.append(f"| as-of queries at least 5x MariaDB (p50 latency, {n:,} versions) | {ratio(r)} | {'yes' if r >= 5 else 'no'} |")
    mtp = found.get("mariadb_asof", (None, {}))[1].get("throughput")
    if mtp and th.get("timetrail", {}).get("events_per_second"):
        r = th["timetrail"]["events_per_second"] / mtp["queries_per_second"]
        L.append(f"| as-of queries at least 5x MariaDB (queries/s, {fmt(mtp['events'])} versions, "
                 f"{mtp['clients']} clients) | {ratio(r)} | {'yes' if r >= 5 else 'no'} |")
    else:
        L.append("| as-of queries at least 5x MariaDB | not measured | - |")
    tg = found.get("temporal", (None, {}))[1].get("goals", [])
    if tg:
        for g in tg:
            L.append(f"| {g['goal']} | {g['measured']:.2f} | {'yes' if g['met'] else 'no'} |")
    else:
        L.append("| as-of latency within 2x from 10^4 to 10^7 events in the store | not measured | - |")
        L.append("| bytes on disk per event no more than PostgreSQL's | not measured | - |")
    if "append" in found or "http" in found:
        L += ["", "## Appends and reads", "", "| scenario | timetrail events/s | PostgreSQL events/s | ratio | timetrail p99 (us) |",
              "|---|---|---|---|---|"]
        for s in found.get("append", (None, {}))[1].get("scenarios", []):
            t, pgs = s.get("timetrail", {}), s.get("postgres", {})
            L.append(f"| embedded {s.get('label')} | {fmt(t.get('events_per_second'))} | {fmt(pgs.get('events_per_second'))} | "
                     f"{ratio(s.get('ratio_events_per_second'))} | {fmt(t.get('latency', {}).get('p99_us'))} |")
            if (s.get("ratio_events_per_second") or 1) < 1:
                losses.append(f"- Embedded appends, {s.get('label')}: {ratio(s['ratio_events_per_second'])} of PostgreSQL.")
        for s in found.get("http", (None, {}))[1].get("appends", []):
            t, pgs = s.get("timetrail_http", {}), s.get("postgres", {})
            L.append(f"| HTTP {s.get('label')} | {fmt(t.get('events_per_second'))} | {fmt(pgs.get('events_per_second'))} | "
                     f"{ratio(s.get('ratio_events_per_second'))} | {fmt(t.get('latency', {}).get('p99_us'))} |")
            if (s.get("ratio_events_per_second") or 1) < 1:
                losses.append(f"- HTTP appends, {s.get('label')}: {ratio(s['ratio_events_per_second'])} of PostgreSQL.")
        L += ["", rounds_note(found, ("append", "http"))]
    if "http_wrk" in found:
        mode, d = found["http_wrk"]
        L += ["", f"## HTTP as users measure it: wrk vs pgbench -M prepared ({mode})", "",
              "| workload | connections | timetrail /s | p99 ms | PostgreSQL /s | p99 ms | ratio |",
              "|---|---|---|---|---|---|---|"]
        for key, r in d.get("results", {}).items():
            kind, conns = key.rsplit("_", 1)
            t, pgs = r["timetrail"], r["postgres"]
            L.append(f"| {kind} | {conns} | {fmt(t['per_second'])} | {t['p99_ms']:.2f} | "
                     f"{fmt(pgs['per_second'])} | {pgs['p99_ms']:.2f} | {ratio(r['ratio'])} |")
            if r["ratio"] < 1:
                losses.append(f"- HTTP {kind} (wrk), {conns} connections: {ratio(r['ratio'])} of PostgreSQL.")
        L += ["", rounds_note(found, ("http_wrk",))]
    if "asof" in found:
        mode, d = found["asof"]
        L += ["", f"## As-of point queries ({mode})", "", rounds_note(found, ("asof",)), "",
              "| versions of the entity | timetrail p50 / p99 (us) | PostgreSQL p50 / p99 (us) | p50 ratio (PostgreSQL / timetrail) | MariaDB p50 / p99 (us) | p50 ratio (MariaDB / timetrail) |",
              "|---|---|---|---|---|---|"]
        maria = {r["versions"]: r for r in found.get("mariadb_asof", (None, {}))[1].get("latency", [])}
        for r in d.get("latency", []):
            t = r.get("timetrail", {}).get("latency", {}); q = r.get("postgres", {}).get("latency", {})
            rr = (q.get("p50_us") / t["p50_us"]) if t.get("p50_us") and q.get("p50_us") else None
            mq = maria.get(r["versions"], {}).get("latency", {})
            mr = (mq.get("p50_us") / t["p50_us"]) if t.get("p50_us") and mq.get("p50_us") else None
            for peer, x in (("PostgreSQL", rr), ("MariaDB", mr)):
                if x is not None and x < 1:
                    losses.append(f"- As-of p50 latency at {r['versions']:,} versions: {ratio(x)} of {peer}'s speed.")
            L.append(f"| {fmt(r['versions'])} | {fmt(t.get('p50_us'), 1)} / {fmt(t.get('p99_us'), 1)} | "
                     f"{fmt(q.get('p50_us'), 1)} / {fmt(q.get('p99_us'), 1)} | {ratio(rr)} | "
                     f"{fmt(mq.get('p50_us'), 1)} / {fmt(mq.get('p99_us'), 1)} | {ratio(mr)} |")
        if "mariadb_asof" in found:
            mmode, md = found["mariadb_asof"]
            L += ["", f"MariaDB column: `bench/mariadb_asof.py` ({mmode}, {md.get('started_at')}), "
                  f"{md.get('mariadb', {}).get('server_version')}, a table `{md.get('mariadb', {}).get('table')}`, "
                  f"queried with `FOR SYSTEM_TIME AS OF` through {md.get('mariadb', {}).get('client')}; "
                  "its latencies include that Python client's own overhead (some tens of microseconds), while the "
                  "timetrail and PostgreSQL columns come from the C++ asof_bench in a separate run. "
                  "Sizes absent from a run are shown as -. Every MariaDB answer was checked: "
                  + ", ".join(f"{r['versions']:,} versions: {r.get('wrong_answers')} wrong" for r in md.get("latency", [])) + "."]
        th = d.get("throughput", {})
        if th:
            L += ["", f"Throughput over {fmt(th.get('events'))} versions of {fmt(th.get('entities'))} entities, "
                  f"{th.get('clients')} clients: timetrail {fmt(th.get('timetrail', {}).get('events_per_second'))} queries/s "
                  f"({ratio(th.get('ratio_queries_per_second'))} PostgreSQL), over HTTP "
                  f"{fmt(th.get('timetrail_http', {}).get('events_per_second'))} queries/s "
                  f"({ratio(th.get('ratio_http_queries_per_second'))})."]
            mtp = found.get("mariadb_asof", (None, {}))[1].get("throughput")
            if mtp and th.get("timetrail", {}).get("events_per_second"):
                mr = th["timetrail"]["events_per_second"] / mtp["queries_per_second"]
                L += ["", f"MariaDB, the same shape ({fmt(mtp['events'])} versions of {fmt(mtp['entities'])} entities, "
                      f"{mtp['clients']} client processes, `FOR SYSTEM_TIME AS OF`, Python client): "
                      f"{fmt(mtp['queries_per_second'])} queries/s, p50 {fmt(mtp['latency']['p50_us'], 1)} us, "
                      f"{mtp['wrong_answers']} wrong answers; timetrail embedded answers {ratio(mr)} as many."]
                if mr < 1:
                    losses.append(f"- As-of query throughput: {ratio(mr)} of MariaDB's.")
            for key, what in (("ratio_queries_per_second", "embedded"), ("ratio_http_queries_per_second", "HTTP")):
                if th.get(key) is not None and th[key] < 1:
                    losses.append(f"- As-of query throughput, {what}: {ratio(th[key])} of PostgreSQL.")
    if "capture" in found:
        mode, d = found["capture"]
        tp = d.get("throughput", {}); tps = d.get("tps", {}); lag = d.get("lag", {})
        L += ["", f"## Change capture ({mode}, from capture_bench)", "",
              f"- pgbench TPS medians: no audit {fmt(tps.get('median_no_audit'))}, trigger audit {fmt(tps.get('median_trigger'))},"
              f" pg_recvlogical draining {fmt(tps.get('median_pg_recvlogical'))},"
              f" timetrail capture {fmt(tps.get('median_capture'))}.",
              f"- Drain of a backlog: timetrail {fmt(tp.get('timetrail_changes_per_second'))} changes/s"
              f" ({fmt(tp.get('timetrail_cpu_us_per_change'))} µs CPU per change) against pg_recvlogical"
              f" {fmt(tp.get('pg_recvlogical_changes_per_second'))} ({ratio(tp.get('ratio'))}).",
              f"- Lag per change at {lag.get('rate_tps')} TPS: p50 {lag.get('p50_ms')} ms, p99 {lag.get('p99_ms')} ms."]
        if tp.get("ratio") is not None and tp["ratio"] < 1:
            losses.append(f"- Change capture drain rate: {ratio(tp['ratio'])} of pg_recvlogical.")
    if "context" in found:
        mode, d = found["context"]
        v = d.get("variants", {})
        def row(name):
            x = v.get(name, {})
            return (f"{fmt(x.get('tps_durable'))} TPS durable, {fmt(x.get('tps_cpu_bound'))} CPU-bound"
                    f" ({fmt(x.get('us_per_tx_cpu_bound'))} µs), {fmt(x.get('wal_bytes_per_tx'))} WAL bytes")
        L += ["", f"## Who/why context on the source ({mode}, from context_bench)", "",
              f"- Single-statement UPDATE, unprepared: {row('unprepared')}.",
              f"- The same with the context as a trailing comment and the statement trigger: {row('comment')}.",
              f"- Explicit BEGIN, timetrail.set_context, UPDATE, COMMIT: {row('explicit')}."]
    if "project" in found:
        mode, d = found["project"]
        L += ["", f"## Projection into PostgreSQL ({mode}, from project_bench)", "",
              f"- `timetrail project` filled the changes table at {fmt(d.get('timetrail_events_per_second'))} events/s"
              f" ({fmt(d.get('timetrail_cpu_us_per_event'), 1)} µs of its CPU per event); PostgreSQL's COPY of the same rows"
              f" {fmt(d.get('copy_events_per_second'))} events/s ({ratio(d.get('ratio'))})."]
        if d.get("timetrail_events_per_second", 0) < 50000:
            losses.append(f"- Projection into PostgreSQL: {fmt(d.get('timetrail_events_per_second'))} events/s, goal 50,000.")
    if "nodes" in found:
        mode, d = found["nodes"]
        r = d.get("results", {})

        def rate(key):
            x = r.get(key, {})
            return f"{fmt(x.get('per_second'))}/s ({ratio(x.get('vs_postgresql'))} of PostgreSQL direct)"
        L += ["", f"## Nodes on one PostgreSQL store ({mode}, from nodes_wrk)", "",
              f"- Appends over HTTP: 1 node {rate('appends_1_nodes')}, 2 nodes {rate('appends_2_nodes')}, "
              f"3 nodes {rate('appends_3_nodes')}; the embedded RocksDB default {rate('appends_rocksdb')}.",
              f"- As-of reads over HTTP: 1 node {rate('asof_1_nodes')}, 2 nodes {rate('asof_2_nodes')}, "
              f"3 nodes {rate('asof_3_nodes')}; the embedded default {rate('asof_rocksdb')}."]
        if not d.get("goals", {}).get("appends_on_postgresql_at_least_0_8x_direct", True):
            losses.append("- Appends through timetrail on PostgreSQL below 0.8x a direct events table.")
    if "temporal" in found:
        mode, d = found["temporal"]
        h = d.get("history", {})
        c = d.get("config", {})
        L += ["", f"## Property history, diff, activity, scaling and resources ({mode}, from temporal_bench)", "",
              f"Medians of {c.get('rounds')} round(s); PostgreSQL holds the same events with timetrail's positions, "
              "revisions and commit times, and every answer was compared between the two.", "",
              f"One entity with {fmt(h.get('versions'))} versions: history of `{h.get('property')}` "
              f"({fmt(h.get('intervals'))} intervals), diff between revisions {h.get('diff_from_revision')} and "
              f"{h.get('diff_to_revision')} ({h.get('diff_patch_operations')} operations): the states and the patch, and "
              f"with the {fmt(h.get('diff_events_between'))} events between, which timetrail's Diff lists on request.", "",
              "| query | timetrail p50 / p99 (ms) | PostgreSQL p50 / p99 (ms) | ratio (PostgreSQL p50 / timetrail p50) |",
              "|---|---|---|---|"]
        for key, label in (("history", "property history"), ("diff", "diff: states and patch (PostgreSQL: changed keys)"),
                           ("diff_with_versions", "diff + events between (PostgreSQL: changed keys + versions between)")):
            t, q = h.get(key, {}).get("timetrail", {}), h.get(key, {}).get("postgres", {})
            if not t:
                continue
            r = q["p50_us"] / t["p50_us"] if t.get("p50_us") else None
            L.append(f"| {label} | {t['p50_us'] / 1000:.3f} / {t['p99_us'] / 1000:.3f} | "
                     f"{q['p50_us'] / 1000:.3f} / {q['p99_us'] / 1000:.3f} | {ratio(r)} |")
            if r is not None and r < 1:
                losses.append(f"- {label.capitalize()} of one entity with {fmt(h.get('versions'))} versions: "
                              f"{ratio(r)} of PostgreSQL's speed (p50).")
        sql = d.get("sql", {})
        L += ["", "The PostgreSQL side, as a PostgreSQL user would write it:", "", "```sql"]
        for key in ("events_table", "indexes", "as_of", "activity", "history", "diff", "between"):
            v = sql.get(key)
            if v is None:
                continue
            for line in (v if isinstance(v, list) else [v]):
                L.append(line + ";")
        L += ["```", "", "| events in the store | as-of p50 / p99 (us) tt | PG | activity p50 (us) tt / PG (events per answer) |"
              " appends/s, 1 writer tt / PG | 16 writers tt / PG | bytes/event tt / PG (PG + WAL) |",
              "|---|---|---|---|---|---|---|"]
        for p in d.get("scaling", []):
            a, ac, dk = p["asof"], p["activity"], p["disk"]
            apps = {x["writers"]: x for x in p.get("appends", [])}
            def app(w):
                x = apps.get(w)
                return "-" if not x else f"{fmt(x['timetrail']['events_per_second'])} / {fmt(x['postgres']['events_per_second'])}"
            L.append(f"| {fmt(p['size'])} | {fmt(a['timetrail']['p50_us'], 1)} / {fmt(a['timetrail']['p99_us'], 1)} | "
                     f"{fmt(a['postgres']['p50_us'], 1)} / {fmt(a['postgres']['p99_us'], 1)} | "
                     f"{fmt(ac['timetrail']['p50_us'], 1)} / {fmt(ac['postgres']['p50_us'], 1)} "
                     f"({fmt(ac.get('mean_events_per_answer'), 0)}) | {app(1)} | {app(16)} | "
                     f"{fmt(dk['timetrail_bytes_per_event'])} / {fmt(dk['postgres_bytes_per_event'])} "
                     f"({fmt(dk['postgres_bytes_per_event_with_wal'])}) |")
        if d.get("scaling"):
            big = d["scaling"][-1]
            for key, label in (("asof", "As-of point queries"), ("activity", "Activity by actor")):
                r = big[key]["postgres"]["p50_us"] / big[key]["timetrail"]["p50_us"]
                if r < 1:
                    losses.append(f"- {label} at {fmt(big['size'])} events: {ratio(r)} of PostgreSQL's speed (p50).")
            for x in big.get("appends", []):
                r = x["timetrail"]["events_per_second"] / x["postgres"]["events_per_second"]
                if r < 1:
                    losses.append(f"- Appends at {fmt(big['size'])} events, {x['writers']} writer(s): {ratio(r)} of PostgreSQL.")
            ld = big["load"]
            r = (ld["events"] / (ld["timetrail_seconds"] + ld["timetrail_settle_seconds"])) / ld["postgres_events_per_second"]
            if r < 1:
                losses.append(f"- Bulk load to {fmt(big['size'])} events (batched transactions against COPY + index builds): "
                              f"{ratio(r)} of PostgreSQL's events/s.")
            r = big["disk"]["timetrail_bytes_per_event"] / big["disk"]["postgres_bytes_per_event"]
            if r > 1:
                losses.append(f"- Bytes on disk per event at {fmt(big['size'])} events: {ratio(r)} PostgreSQL's.")
            L += ["", "Loads (events added since the previous size; timetrail: batched transactions + waiting for RocksDB's "
                  "compactions; PostgreSQL: COPY with indexes dropped, then index builds and VACUUM ANALYZE):", ""]
            L += ["| events in the store | timetrail s (events/s) | PostgreSQL s (events/s) |", "|---|---|---|"]
            for p in d["scaling"]:
                ld = p["load"]
                L.append(f"| {fmt(p['size'])} | {ld['timetrail_seconds'] + ld['timetrail_settle_seconds']:.1f} "
                         f"({fmt(ld['timetrail_events_per_second'])}) | {ld['postgres_seconds']:.1f} "
                         f"({fmt(ld['postgres_events_per_second'])}) |")
        res = d.get("resources")
        if res:
            t, q = res["timetrail"], res["postgres"]
            L += ["", f"Memory at {fmt(res['events'])} events under {res['readers']} as-of readers and {res['writers']} "
                  f"writer for {res['seconds']:.0f} s: `timetrail serve` VmHWM {t['vm_hwm_kib'] / 1024:.0f} MiB "
                  f"(peak PSS {t['peak_pss_kib'] / 1024:.0f} MiB); PostgreSQL's {q['processes']} processes "
                  f"(postmaster and children, sampled every 100 ms): peak sum of PSS {q['peak_pss_sum_kib'] / 1024:.0f} MiB, "
                  f"peak sum of RSS {q['peak_rss_sum_kib'] / 1024:.0f} MiB (RSS counts shared buffers once per process)."]
    if "import" in found:
        mode, d = found["import"]
        c, tt, pgs, r = d.get("config", {}), d.get("timetrail", {}), d.get("postgresql", {}), d.get("ratios", {})
        base = pgs.get("copy_then_indexes", {}).get("events_per_second")
        L += ["", f"## NDJSON import against PostgreSQL's COPY ({mode}, from import_bench)", "",
              f"`timetrail import FILE --data NEWDIR` of {fmt(c.get('lines'))} lines over {fmt(c.get('streams'))} streams "
              "(one `$put` per line with an id, no `tx` field), against PostgreSQL loading the same events into an events "
              "table (`bench/import_bench.py`); medians of "
              f"{c.get('rounds')} round(s), each into a fresh data directory or table. timetrail's time includes its check "
              "pass (every line parsed before anything is written); PostgreSQL's CPU is its whole cluster's plus psql's.", "",
              "| load | wall s | events/s | CPU µs/event | bytes/event | of PostgreSQL COPY + indexes |",
              "|---|---|---|---|---|---|"]
        rows = (("timetrail import (bulk)", tt.get("bulk")), ("timetrail import --no-bulk", tt.get("no_bulk")),
                ("PostgreSQL COPY, then PK, UNIQUE (stream, revision), UNIQUE (id), ANALYZE", pgs.get("copy_then_indexes")),
                ("PostgreSQL COPY into the table with those indexes", pgs.get("copy_indexed")),
                ("PostgreSQL COPY, those indexes, ANALYZE, then (stream, recorded_at) and (actor, recorded_at)",
                 pgs.get("copy_then_5_indexes")))
        for label, x in rows:
            if not x:
                continue
            rr = x["events_per_second"] / base if base else None
            L.append(f"| {label} | {x['seconds']:.2f} | {fmt(x['events_per_second'])} | {x['cpu_us_per_event']:.1f} | "
                     f"{x['bytes_per_event']:.0f} | {ratio(rr)} |")
        L += ["", "Goals (issue #14): " + "; ".join(
            f"{g['goal']}: {g.get('measured_text', '-')} ({'met' if g.get('met') else 'not met'})"
            for g in d.get("goals", [])) + "."]
        for key, what in (("bulk_vs_copy_then_indexes", "bulk"), ("no_bulk_vs_copy_then_indexes", "--no-bulk")):
            if r.get(key) is not None and r[key] < 1:
                losses.append(f"- NDJSON import ({what}) of {fmt(c.get('lines'))} lines: {ratio(r[key])} of PostgreSQL's "
                              "COPY plus index builds (events/s).")
    made = plots(found, outdir)
    L += ["", "## Plots", ""]
    if made is None:
        L.append("No plots: python3-matplotlib is not installed (scripts/install-deps.sh installs it).")
    else:
        for title, f in made:
            L += [f"### {title}", "", f"![{title}]({f})", ""]
    L += ["", "## Where timetrail loses", ""] + (losses or ["- Nowhere in the workloads measured so far."])
    biggest = max((p["size"] for p in found.get("temporal", (None, {}))[1].get("scaling", [])), default=None)
    if biggest is not None and biggest < 10_000_000:
        L += ["", "## Not measured yet", "",
              f"- The scaling and activity workloads up to 10^7 events: the newest temporal_bench run stops at "
              f"{fmt(biggest)} events (bench/README.md says why); no figures are claimed beyond that size."]
    if "temporal" not in found:
        L += ["", "## Not measured yet", "",
              "The suite does not yet cover these workloads of the benchmark plan; no figures are claimed for them:",
              "- Property history and diff of one entity with 10,000 versions.",
              "- Activity by actor over a 10,000,000-event log.",
              "- Scaling of as-of latency and append throughput from 10^4 to 10^7 events (the as-of table above",
              "  varies the versions of one entity, not the size of the store).",
              "- Peak server memory (RSS) and bytes on disk per event against PostgreSQL."]
    with open(args.out, "w") as f:
        f.write("\n".join(L) + "\n")
    print(f"report: wrote {args.out}" + ("" if made is None else f" and {len(made)} plots"), file=sys.stderr)


if __name__ == "__main__":
    main()
