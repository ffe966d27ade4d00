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

BENCHMARKS = ["append", "http", "asof", "mariadb_asof", "capture"]


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


def goals_rows(name, data):
    rows = []
    goals = data.get("goals", [])
    if isinstance(goals, dict):  # capture writes {goal: met}
        for goal, met in goals.items():
            text = goal.replace("0_8x", "0.8x").replace("10pct", "10%").replace("_", " ")
            rows.append((name, text, "-", met))
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
    else:
        L.append("| as-of queries at least 5x MariaDB | not measured | - |")
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
    if "asof" in found:
        mode, d = found["asof"]
        L += ["", f"## As-of point queries ({mode})", "",
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
            for key, what in (("ratio_queries_per_second", "embedded"), ("ratio_http_queries_per_second", "HTTP")):
                if th.get(key) is not None and th[key] < 1:
                    losses.append(f"- As-of query throughput, {what}: {ratio(th[key])} of PostgreSQL.")
    if "capture" in found:
        mode, d = found["capture"]
        tp = d.get("throughput", {}); tps = d.get("tps", {}); lag = d.get("lag", {})
        L += ["", f"## Change capture ({mode}, from capture_bench)", "",
              f"- pgbench TPS medians: no audit {fmt(tps.get('median_no_audit'))}, trigger audit {fmt(tps.get('median_trigger'))},"
              f" timetrail capture {fmt(tps.get('median_capture'))}.",
              f"- Drain of a backlog: timetrail {fmt(tp.get('timetrail_changes_per_second'))} changes/s against pg_recvlogical"
              f" {fmt(tp.get('pg_recvlogical_changes_per_second'))} ({ratio(tp.get('ratio'))}).",
              f"- Lag per change at {lag.get('rate_tps')} TPS: p50 {lag.get('p50_ms')} ms, p99 {lag.get('p99_ms')} ms."]
        if tp.get("ratio") is not None and tp["ratio"] < 1:
            losses.append(f"- Change capture drain rate: {ratio(tp['ratio'])} of pg_recvlogical.")
    made = plots(found, outdir)
    L += ["", "## Plots", ""]
    if made is None:
        L.append("No plots: python3-matplotlib is not installed (scripts/install-deps.sh installs it).")
    else:
        for title, f in made:
            L += [f"### {title}", "", f"![{title}]({f})", ""]
    L += ["", "## Where timetrail loses", ""] + (losses or ["- Nowhere in the workloads measured so far."])
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
