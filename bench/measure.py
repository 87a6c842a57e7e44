"""Measurements for soak.sh and scaling.sh: wrk (post.lua) against running gateways, with the
CPU and memory of each gateway's process tree read from /proc as bench.py reads them.

    measure.py soak --target NAME=URL,KEYS_FILE,PID [--mode chat_stream] [--conns 32]
                    [--duration 600] [--sample-s 10] [--warmup-s 60] --csv FILE
        wrk for --duration seconds, as consecutive 60-s runs (one per minute: RPS per minute),
        while the gateway tree's RSS (VmRSS summed over the tree), CPU, thread and open-file
        counts are sampled every --sample-s seconds into the CSV; then the summary: RSS at the
        end of the warm-up and at the end, min / max after the warm-up, the change in %, and
        whether every sample after the warm-up is within ± 10 % of the first one. With --db
        and --vacuum-s, the database is VACUUM ANALYZEd that often meanwhile (soak.sh does it
        when the server runs without autovacuum).

    measure.py ab --case NAME --a NAME=URL,KEYS_FILE,PID[,DB] --b ... [--rounds 3]
                  [--duration 10] [--warmup 5] [--mode chat] [--conns 32] --json-out FILE
        Two gateways, measured alternately (A, B, A, B, ...) after an unrecorded warm-up of
        each; per run: RPS, p50, p99, the gateway tree's CPU ms per request, and the CPU ms per
        request of the PostgreSQL backends serving DB (with those that exited meanwhile: the
        postmaster's reaped children) and of redis-server (not pinned, not in the gateway's
        figure). Before each run the side's database is ANALYZEd (--analyze 1: planner
        statistics as autovacuum would keep them; it may be off on a bench server). Appends
        the medians to the JSON file (a list).

    measure.py table FILE           the table of `ab` results, with the ratios B/A

wrk runs pinned to --load-cpus (0), one thread, requests spread over the keys of KEYS_FILE
(post.lua); the bodies are bench.py's (model mock-gpt).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics as st
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench import Target, body, cpu_secs, preflight, tree  # noqa: E402


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- /proc
def status_kb(pid: int, field_name: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pids: list[int]) -> int:
    return sum(status_kb(p, "VmRSS") for p in pids)


def threads(pids: list[int]) -> int:
    return sum(status_kb(p, "Threads") for p in pids)


def open_fds(pids: list[int]) -> int:
    n = 0
    for p in pids:
        with contextlib.suppress(OSError):
            n += len(os.listdir(f"/proc/{p}/fd"))
    return n


def server_pids(comm: str, needle: str = "") -> list[int]:
    """Processes named `comm` (PostgreSQL backends: with `needle`, the database name, in their
    command line)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/comm") as f:
                if f.read().strip() != comm:
                    continue
            if needle:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if f" {needle} ".encode() not in f.read().replace(b"\0", b" ") + b" ":
                        continue
        except OSError:
            continue
        out.append(int(d))
    return out


def postmaster() -> int | None:
    """The PostgreSQL server process (a `postgres` whose parent is not one)."""
    pids = set(server_pids("postgres"))
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) not in pids:
                    return p
        except (OSError, ValueError, IndexError):
            pass
    return None


def reaped_secs(pid: int | None) -> float:
    """CPU seconds of the process's children that have exited (cutime + cstime): for the
    postmaster, the backends that closed (a connection pool's overflow connections)."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            x = f.read().rsplit(")", 1)[1].split()
        return (int(x[13]) + int(x[14])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """CPU seconds per process (a process gone between two readings drops out of both)."""
    return {p: cpu_secs([p]) for p in pids}


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(after[p] - before.get(p, 0.0) for p in after)


def pg_run(db: str, statement: str) -> None:
    """Run a statement in a bench database (through BENCH_PG_URL's server and user)."""
    import asyncio
    from urllib.parse import urlsplit, urlunsplit

    import asyncpg

    u = urlsplit(os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))

    async def run() -> None:
        conn = await asyncpg.connect(urlunsplit((u.scheme, u.netloc, f"/{db}", u.query, "")))
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def analyze(db: str) -> None:
    """ANALYZE a side's database (this machine's PostgreSQL may run without autovacuum:
    planner statistics as old as the seeding would make a growing table look empty)."""
    pg_run(db, "ANALYZE")


# ---------------------------------------------------------------- wrk
@dataclass
class Gateway:
    name: str
    url: str
    keys_file: str
    pid: int
    db: str = ""
    target: Target = field(init=False)

    @classmethod
    def parse(cls, spec: str) -> Gateway:
        name, _, rest = spec.partition("=")
        parts = rest.split(",")
        url, keys, pid = parts[0].rstrip("/"), parts[1], int(parts[2])
        return cls(name, url, keys, pid, parts[3] if len(parts) > 3 else "")

    def __post_init__(self) -> None:
        first = Path(self.keys_file).read_text().split()[0]
        self.target = Target(f"{self.name}={self.url},{first},{self.pid}")


def body_file(mode: str) -> str:
    path = Path(tempfile.gettempdir()) / "gwbench" / f"body_{mode}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body(mode, "mock-gpt"))
    return str(path)


def wrk(gw: Gateway, mode: str, conns: int, secs: int, a: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ, BODY_FILE=body_file(mode), KEYS_FILE=gw.keys_file, API_KEY="")
    env["WRK_LABEL"] = f"{gw.name}/{mode}/c{conns}"
    cmd = ["taskset", "-c", a.load_cpus, "wrk", "-t", "1", "-c", str(conns), "-d", f"{secs}s",
           "--timeout", "10s", "-s", str(HERE / "post.lua"), gw.target.url(mode)]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            res: dict[str, Any] = json.loads(line[8:])
            res["errors"] = sum(res[k] for k in res if k.startswith("err_"))
            return res
    raise RuntimeError(f"wrk failed: {out.stdout[-500:]} {out.stderr[-500:]}")


def check(gw: Gateway, mode: str) -> None:
    bad = preflight(gw.target, mode, body_file(mode))
    if bad:
        sys.exit(f"[preflight] {gw.name} failed: {bad}")


# ---------------------------------------------------------------- soak
def soak(a: argparse.Namespace) -> None:
    gw = Gateway.parse(a.target)
    check(gw, a.mode)
    rows: list[dict[str, Any]] = []
    stop = threading.Event()
    t0 = time.monotonic()

    def sample() -> None:
        last_t, last_cpu = None, None
        k = 0
        while True:
            now = time.monotonic()
            pids = tree([gw.pid])
            cpu = cpu_secs(pids)
            row = {
                "t_s": round(now - t0, 1),
                "rss_kb": rss_kb(pids),
                "procs": len(pids),
                "threads": threads(pids),
                "fds": open_fds(pids),
                "cpu_s": round(cpu, 2),
                "cpu_util": round((cpu - last_cpu) / (now - last_t), 3) if last_t else "",
            }
            rows.append(row)
            last_t, last_cpu = now, cpu
            k += 1
            if stop.wait(max(0.0, t0 + k * a.sample_s - time.monotonic())):
                break

    def vacuum() -> None:  # what autovacuum would do, when the server runs without it
        while not stop.wait(a.vacuum_s):
            started = time.monotonic()
            pg_run(a.db, "VACUUM ANALYZE")
            vacuums.append(time.monotonic() - started)

    vacuums: list[float] = []
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if a.vacuum_s and a.db:
        threading.Thread(target=vacuum, daemon=True).start()
    minutes: list[dict[str, Any]] = []
    left = a.duration
    while left > 0:
        secs = min(60, left)
        r = wrk(gw, a.mode, a.conns, secs, a)
        minutes.append(r)
        left -= secs
        log(
            f"[soak] minute {len(minutes)}: {r['rps']:,.0f} rps p50 {r['p50_ms']:.2f} ms "
            f"p99 {r['p99_ms']:.2f} ms errors {r['errors']}; RSS {rows[-1]['rss_kb'] / 1024:.1f} MB"
        )
    stop.set()
    sampler.join()
    pids = tree([gw.pid])  # one last sample, at the end of the load
    rows.append(
        {
            "t_s": round(time.monotonic() - t0, 1),
            "rss_kb": rss_kb(pids),
            "procs": len(pids),
            "threads": threads(pids),
            "fds": open_fds(pids),
            "cpu_s": round(cpu_secs(pids), 2),
            "cpu_util": "",
        }
    )
    with open(a.csv, "w") as f:
        f.write(",".join(rows[0]) + "\n")
        for row in rows:
            f.write(",".join(str(v) for v in row.values()) + "\n")
    print(soak_summary(rows, minutes, a))
    if vacuums:
        print(
            f"\nVACUUM ANALYZE of {a.db} every {a.vacuum_s:g} s meanwhile (as autovacuum "
            f"would): {len(vacuums)} times, {max(vacuums) * 1000:.0f} ms at most."
        )


def soak_summary(rows: list[dict[str, Any]], minutes: list[dict[str, Any]], a: Any) -> str:
    after = [r for r in rows if r["t_s"] >= a.warmup_s - 1] or rows[-1:]
    base, end = after[0], rows[-1]
    mb = [r["rss_kb"] / 1024 for r in after]
    b = base["rss_kb"] / 1024
    lo, hi = (min(mb) - b) / b * 100, (max(mb) - b) / b * 100
    flat = max(abs(lo), abs(hi)) <= 10
    reqs = sum(m["requests"] for m in minutes)
    errors = sum(m["errors"] for m in minutes)
    cpu = rows[-1]["cpu_s"] - rows[0]["cpu_s"]
    per_min = ", ".join(f"{m['rps']:,.0f}" + ("" if m["secs"] > 55 else f" ({m['secs']:.0f} s)")
                        for m in minutes)  # fmt: skip
    return "\n".join(
        [
            f"\n### Soak: {a.mode}, {a.conns} connections, {a.duration} s "
            f"(samples every {a.sample_s:g} s: {a.csv})\n",
            "| figure | value |",
            "|---|---|",
            f"| RSS at {base['t_s']:.0f} s (after the warm-up) | {b:.1f} MB |",
            f"| RSS at the end ({end['t_s']:.0f} s) | {end['rss_kb'] / 1024:.1f} MB |",
            f"| change, end vs warm-up | {(end['rss_kb'] / 1024 - b) / b * 100:+.1f} % |",
            f"| RSS min / max after the warm-up | {min(mb):.1f} / {max(mb):.1f} MB "
            f"({lo:+.1f} % / {hi:+.1f} %) |",
            f"| flat within ± 10 % | {'✓' if flat else '✗'} |",
            f"| processes, threads, open fds at the end | {end['procs']}, {end['threads']}, "
            f"{end['fds']} |",
            f"| RPS per minute | {per_min} |",
            f"| requests, errors | {reqs:,}, {errors} |",
            f"| CPU ms per request (whole soak) | {cpu * 1000 / max(1, reqs):.3f} |",
        ]
    )


# ---------------------------------------------------------------- A/B
def measure(gw: Gateway, a: argparse.Namespace, secs: int) -> dict[str, Any]:
    if gw.db and a.analyze:
        analyze(gw.db)
    pids = tree([gw.pid])
    pm = postmaster() if gw.db else None
    pg = server_pids("postgres", gw.db) if gw.db else []
    rd = server_pids("redis-server")
    c0, p0, r0, q0 = cpu_secs(pids), cpu_by_pid(pg), cpu_by_pid(rd), reaped_secs(pm)
    res = wrk(gw, a.mode, a.conns, secs, a)
    c1 = cpu_secs(pids)
    p1 = cpu_by_pid(server_pids("postgres", gw.db) if gw.db else [])
    r1 = cpu_by_pid(rd)
    q1 = reaped_secs(pm)
    n = max(1, res["requests"])
    res["cpu_ms"] = (c1 - c0) * 1000 / n
    res["pg_ms"] = (cpu_delta(p0, p1) + q1 - q0) * 1000 / n if gw.db else math.nan
    res["redis_ms"] = cpu_delta(r0, r1) * 1000 / n
    res["rss_mb"] = rss_kb(tree([gw.pid])) / 1024
    return res


def ab(a: argparse.Namespace) -> None:
    gws = {"A": Gateway.parse(a.a), "B": Gateway.parse(a.b)}
    for gw in gws.values():
        check(gw, a.mode)
    for gw in gws.values():
        log(f"[{a.case}] warm-up {gw.name} {a.warmup} s")
        wrk(gw, a.mode, a.conns, a.warmup, a)
    runs: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    for rnd in range(a.rounds):
        for side, gw in gws.items():
            r = measure(gw, a, a.duration)
            runs[side].append(r)
            log(
                f"[{a.case} r{rnd + 1}/{a.rounds}] {side} {gw.name:>12}: {r['rps']:8,.0f} rps "
                f"p50 {r['p50_ms']:6.2f} ms  cpu {r['cpu_ms']:.3f} ms/req  pg {r['pg_ms']:.3f}"
                f"  redis {r['redis_ms']:.3f}  errors {r['errors']}"
            )
    out = {"case": a.case, "mode": a.mode, "conns": a.conns, "rounds": a.rounds}
    for side, gw in gws.items():
        rs = runs[side]
        out[side] = {"name": gw.name, "runs": rs}
        for k in ("rps", "p50_ms", "p99_ms", "cpu_ms", "pg_ms", "redis_ms", "rss_mb"):
            xs = [r[k] for r in rs if r[k] == r[k]]
            out[side][k] = st.median(xs) if xs else math.nan
        out[side]["errors"] = sum(r["errors"] for r in rs)
    path = Path(a.json_out)
    done = json.loads(path.read_text()) if path.exists() else []
    path.write_text(json.dumps([*done, out], indent=1))


def fmt(x: float, nd: int) -> str:
    return "—" if x != x else f"{x:,.{nd}f}"


def ratio(b: float, a: float) -> str:
    return "—" if not a or a != a or b != b else f"{b / a:.2f}×"


def table(a: argparse.Namespace) -> None:
    results = json.loads(Path(a.file).read_text())
    head = ["case", "A", "B", "RPS A", "RPS B", "B/A", "CPU ms/req A", "CPU ms/req B", "B/A",
            "PG ms/req A", "PG ms/req B", "B/A", "Redis ms/req A", "B", "errors"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        x, y = r["A"], r["B"]
        cells = [
            r["case"], x["name"], y["name"],
            fmt(x["rps"], 0), fmt(y["rps"], 0), ratio(y["rps"], x["rps"]),
            fmt(x["cpu_ms"], 3), fmt(y["cpu_ms"], 3), ratio(y["cpu_ms"], x["cpu_ms"]),
            fmt(x["pg_ms"], 3), fmt(y["pg_ms"], 3), ratio(y["pg_ms"], x["pg_ms"]),
            fmt(x["redis_ms"], 3), fmt(y["redis_ms"], 3), str(x["errors"] + y["errors"]),
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    r0 = results[0] if results else {"mode": "?", "conns": "?", "rounds": "?"}
    lines.append(
        f"\n{r0['mode']}, {r0['conns']} connections, medians of {r0['rounds']} runs per side, "
        "A and B alternated, each database ANALYZEd before each run. CPU ms/req: the "
        "gateway's process tree (pinned to its core); PG: the PostgreSQL backends of its "
        "database (and any that exited); Redis: redis-server (both unpinned, not in the "
        "gateway's figure)."
    )
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--load-cpus", default=os.environ.get("LOAD_CPUS", "0"))
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("soak")
    s.add_argument("--target", required=True, help="NAME=URL,KEYS_FILE,PID")
    s.add_argument("--mode", default="chat_stream")
    s.add_argument("--conns", type=int, default=32)
    s.add_argument("--duration", type=int, default=600)
    s.add_argument("--sample-s", type=float, default=10)
    s.add_argument("--warmup-s", type=float, default=60)
    s.add_argument("--csv", required=True)
    s.add_argument("--db", default="", help="the gateway's database (for --vacuum-s)")
    s.add_argument(
        "--vacuum-s", type=float, default=0, help="VACUUM ANALYZE the database this often (0: no)"
    )
    b = sub.add_parser("ab")
    b.add_argument("--case", required=True)
    b.add_argument("--a", required=True, help="NAME=URL,KEYS_FILE,PID[,DB]")
    b.add_argument("--b", required=True, help="NAME=URL,KEYS_FILE,PID[,DB]")
    b.add_argument("--mode", default="chat")
    b.add_argument("--conns", type=int, default=32)
    b.add_argument("--rounds", type=int, default=3)
    b.add_argument("--duration", type=int, default=10)
    b.add_argument("--warmup", type=int, default=5)
    b.add_argument(
        "--analyze", type=int, default=1, help="ANALYZE each side's database before each run"
    )
    b.add_argument("--json-out", required=True)
    t = sub.add_parser("table")
    t.add_argument("file")
    a = ap.parse_args()
    {"soak": soak, "ab": ab, "table": table}[a.what](a)


if __name__ == "__main__":
    main()
