"""One fleet, one truth (issue 19): what the fleet's whole-store work costs the store.

Part 1, the primaries stay quiet: a PING to every primary and every replica every 5 ms (from a
process of its own: the client-side count holds this one's GIL), through --rounds rounds of
alternated windows: idle, the count as it was (storage.cluster.store_stats: every record decoded in
the client, on the replicas), the count on the nodes (storage.counting: the read-only Lua step, on
the replicas, as shipped: storage.counting.PARALLEL_STEPS shards at once, then every shard at once),
the same on the primaries (a cluster without replicas) at --step-keys and at 250 keys per step, a
filtered walk on the replicas, and (first round) the consistency check on the replicas. Per window:
wall time, this process's CPU, the busiest primary's and replica's CPU (INFO cpu, user + sys: unlike
latency it does not follow the machine's load), PING p50/p99/max per role and the primaries' p99
against the idle window before it, and the CPU of the machine's other processes (cores: on a shared
machine the PING figures follow it); the Lua step's calls and time per call (INFO commandstats,
others' scripts included on a shared store). With --no-seed it reads the store as it is (e.g. the
shared 1M cluster) and writes nothing to it but the script cache.

With --paces STEP:PARALLEL:REST ..., part 1 is instead the replicas' count at each pace
(storage.counting.Pace: keys per step, shards at once, rest after a step as a multiple of its time),
each after an idle window, the order turned round by round, a disturbed pair run again up to
--retry-noisy times; then per pace the PING p99 of its quiet rounds against their idle windows:

    .venv/bin/python bench/fleet_bench.py --url redis://127.0.0.1:8000 --no-seed --skip-fleet \
        --rounds 4 --idle-seconds 2 --retry-noisy 6 --paces 1000:0:0 1000:2:0 250:0:0 1000:1:0

Part 2, once per fleet: 2 gunicorn servers x 2 workers as shipped on the store for --minutes, used
as operators and Prometheus would: per server two viewers open the overview, one the consistency
page (each following the page's HTMX poll while a count or a check runs), an editor clicks "Recount
now" now and then, and Prometheus scrapes /metrics at the shipped ServiceMonitor's interval. Then
how many counts and checks the store served: the fleet's fence counters, the leases seen (and which
process held them) and the INFO commandstats deltas of every node (SCAN, scripts, GET). The goal is
one per interval for the fleet, not one per process. Part 2 writes no ate record (only the fleet's
atedash: keys), so it may run on a store others use (--no-seed --skip-probe).

It FLUSHES the cluster it is pointed at unless --no-seed:

    ATEDASH_CLUSTER_PORT=7900 .venv/bin/python bench/fleet_bench.py --actors 100000 --workers 20000
    .venv/bin/python bench/fleet_bench.py --url redis://127.0.0.1:8000 --no-seed --skip-probe --minutes 10
"""

from __future__ import annotations

import argparse
import html
import http.client
import json
import multiprocessing
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from http_bench import Server, seed  # noqa: E402
from storage_bench import default_url  # noqa: E402

from storage import Persistence, connect  # noqa: E402
from storage.matches import FullWalk, actor_walk  # noqa: E402


def nodes(store: Persistence):
    client = store.client
    primaries = [(n.name, client.get_redis_connection(n)) for n in client.get_primaries()]
    replicas = [(n.name, client.get_redis_connection(n)) for n in client.get_replicas()]
    return primaries, replicas


def cpu(conn) -> float:
    info = conn.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _probe(addresses: list[tuple[str, str]], stop, conn) -> None:
    """A process of its own (the counts' decoding holds this one's GIL): a PING to every node every
    5 ms, (monotonic time, role, ms) sent back when told to stop."""
    import redis

    samples: list[tuple[float, str, float]] = []
    lock = threading.Lock()

    def run(role: str, address: str) -> None:
        host, port = address.rsplit(":", 1)
        client = redis.Redis(host=host, port=int(port))
        client.ping()
        mine = []
        while not stop.wait(0.005):
            t0 = time.perf_counter()
            client.ping()
            mine.append((time.monotonic(), role, (time.perf_counter() - t0) * 1000))
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=run, args=pair, daemon=True) for pair in addresses]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    conn.send(samples)


class Probe:
    """The PING probe in its own process, for the whole of part 1; samples picked by time window."""

    def __init__(self, store: Persistence):
        primaries, replicas = nodes(store)
        addresses = [("primary", n) for n, _ in primaries] + [("replica", n) for n, _ in replicas]
        self._stop = multiprocessing.Event()
        self._recv, send = multiprocessing.Pipe(duplex=False)
        self._process = multiprocessing.Process(target=_probe, args=(addresses, self._stop, send), daemon=True)
        self.samples: list[tuple[float, str, float]] = []

    def __enter__(self):
        self._process.start()
        time.sleep(0.5)  # connected before the first window
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def __exit__(self, *exc):
        self._stop.set()
        self.samples = self._recv.recv()
        self._process.join()

    def window(self, start: float, end: float, role: str) -> list[float]:
        return [ms for t, r, ms in self.samples if r == role and start <= t <= end]


def figures(values: list[float]) -> str:
    if not values:
        return "-"
    values = sorted(values)
    return f"{statistics.median(values):.2f} / {p99(values):.2f} / {values[-1]:.2f}"


def p99(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * 0.99))] if values else float("nan")


def commandstat(conns, command: str) -> tuple[int, int]:
    """(calls, µs) of a command summed over nodes (others' calls included: the store is shared)."""
    calls = usec = 0
    for c in conns:
        stat = c.info("commandstats").get(f"cmdstat_{command}", {})
        calls += int(stat.get("calls", 0))
        usec += int(stat.get("usec", 0))
    return calls, usec


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (every core, /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int | None) -> float:
    """CPU seconds (user + sys) of a process, 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Phases:
    """Each phase: its wall time, this process's CPU, every node's CPU (INFO cpu), its time window,
    and the CPU of the machine's other processes meanwhile (cores on average: a shared machine's
    noise, which the PING figures follow)."""

    def __init__(self, store: Persistence, probe_pid: int | None = None):
        self.store = store
        self.primaries, self.replicas = nodes(store)
        self.rows: list[dict] = []
        self.probe_pid = probe_pid

    def run(self, name: str, work) -> None:
        conns = self.primaries + self.replicas
        before = {n: cpu(c) for n, c in conns}
        steps0 = commandstat([c for _, c in conns], "evalsha")
        busy0, probe0 = machine_busy(), process_cpu(self.probe_pid)
        c0, start = time.process_time(), time.monotonic()
        outcome = work()
        end, client_cpu = time.monotonic(), time.process_time() - c0
        busy1, probe1 = machine_busy(), process_cpu(self.probe_pid)
        steps1 = commandstat([c for _, c in conns], "evalsha")
        after = {n: cpu(c) for n, c in conns}
        nodes_cpu = sum(after[n] - before[n] for n, _ in conns)
        others = (busy1 - busy0) - nodes_cpu - client_cpu - (probe1 - probe0)
        row = {
            "phase": name,
            "wall": end - start,
            "start": start,
            "end": end,
            "client_cpu": client_cpu,
            "primary_cpu": max(after[n] - before[n] for n, _ in self.primaries),
            "replica_cpu": max((after[n] - before[n] for n, _ in self.replicas), default=0.0),
            "evalsha": (steps1[0] - steps0[0], steps1[1] - steps0[1]),
            "others": max(0.0, others) / max(end - start, 1e-9),
            "outcome": outcome,
        }
        self.rows.append(row)
        print(f"  {name}: {row['wall']:.2f} s, {outcome} (others' CPU {row['others']:.2f} cores)", flush=True)

    def table(self, probe: Probe) -> None:
        print(
            "\n| phase | wall | client CPU | busiest primary CPU / replica CPU | primaries' PING p50 / p99 / max (ms) "
            "| p99 above the idle window before | replicas' PING p50 / p99 / max | others' CPU | result |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        idle_p99 = float("nan")
        for row in self.rows:
            prim = probe.window(row["start"], row["end"], "primary")
            repl = probe.window(row["start"], row["end"], "replica")
            if row["phase"].startswith("idle"):
                idle_p99 = p99(prim)
                above = "-"
            else:
                above = f"{p99(prim) - idle_p99:+.2f}"
            print(
                f"| {row['phase']} | {row['wall']:.2f} s | {row['client_cpu']:.2f} s | {row['primary_cpu']:.2f} / "
                f"{row['replica_cpu']:.2f} s ({100 * row['primary_cpu'] / row['wall']:.0f}% / "
                f"{100 * row['replica_cpu'] / row['wall']:.0f}% of a core) | {figures(prim)} | {above} | {figures(repl)} | {row['others']:.2f} | {row['outcome']} |",
                flush=True,
            )
        steps = [r for r in self.rows if r["evalsha"][0] and "Lua" in r["phase"]]
        for r in steps:
            calls, usec = r["evalsha"]
            print(f"{r['phase']}: {calls} script calls on the nodes, {usec / max(1, calls) / 1000:.2f} ms per call")


def part1(store: Persistence, rounds: int, check: bool, idle_s: float, step_keys: int) -> None:
    from storage import cluster, counting
    from storage.check import run_check

    for node in store.client.get_primaries():
        store.client.get_redis_connection(node).execute_command("WAIT", 1, 10_000)
    replicas = store.on_replicas()
    rare = actor_walk(template_namespace="team-needle")
    phases = Phases(store)

    def idle():
        time.sleep(idle_s)
        return ""

    def counted(stats) -> str:
        return f"{sum(stats.actors_by_status.values()):,} actors, {stats.keys_scanned:,} keys"

    with Probe(store) as probe:
        phases.probe_pid = probe.pid
        for r in range(rounds):
            print(f"round {r + 1}", flush=True)
            phases.run("idle", idle)
            phases.run(
                "count, client-side decode, replicas (today)", lambda: counted(cluster.store_stats(replicas.topology))
            )
            phases.run("idle", idle)
            phases.run(
                f"count, Lua step {step_keys}, replicas, {counting.PARALLEL_STEPS} shards at once (now)",
                lambda: counted(counting.store_stats(replicas.topology, step_keys)),
            )
            phases.run("idle", idle)
            phases.run(
                f"count, Lua step {step_keys}, replicas, every shard at once (before)",
                lambda: counted(counting.store_stats(replicas.topology, step_keys, pace=counting.Pace(parallel=0))),
            )
            phases.run("idle", idle)
            for step in (step_keys, 250):
                phases.run(
                    f"count, Lua step {step}, primaries (no replica)",
                    lambda step=step: counted(counting.store_stats(store.topology, step)),
                )
                phases.run("idle", idle)
            phases.run("walk 1 in 1M, replicas", lambda: f"{FullWalk(replicas.topology, rare).run().matched} match")
            if check and r == 0:
                phases.run("idle", idle)
                phases.run(
                    "consistency check, replicas",
                    lambda: f"{len(run_check(replicas).findings)} findings",
                )
    phases.table(probe)


def parse_pace(text: str):
    """STEP:PARALLEL:REST (e.g. 1000:2:0.5) as (step keys, storage.counting.Pace)."""
    from storage.counting import Pace

    step, parallel, rest = text.split(":")
    return int(step), Pace(parallel=int(parallel), rest=float(rest))


def part1_paces(store: Persistence, rounds: int, idle_s: float, paces: list[str], retry_noisy: int = 0) -> None:
    """The count on the replicas at each pace, each after an idle window, the order turned round by
    round: which pace keeps the primaries' PING p99 within 2 ms of idle, and what it costs in time.
    A pair the machine's other processes disturbed is run again, up to ``retry_noisy`` times."""
    from storage import counting

    replicas = store.on_replicas()
    phases = Phases(store)

    def idle():
        time.sleep(idle_s)
        return ""

    with Probe(store) as probe:
        phases.probe_pid = probe.pid
        for r in range(rounds):
            print(f"round {r + 1}", flush=True)
            turned = paces[r % len(paces) :] + paces[: r % len(paces)]
            for text in turned:
                step, pace = parse_pace(text)
                for _attempt in range(1 + retry_noisy):
                    phases.run("idle", idle)
                    phases.run(
                        f"count {text} (step:parallel:rest)",
                        lambda step=step, pace=pace: (
                            f"{counting.store_stats(replicas.topology, step, pace=pace).keys_scanned:,} keys"
                        ),
                    )
                    if max(phases.rows[-1]["others"], phases.rows[-2]["others"]) <= QUIET_CORES:
                        break
    phases.table(probe)
    summarize_paces(phases, probe)


QUIET_CORES = 0.2  # the machine's other processes' CPU under which a window counts as quiet


def summarize_paces(phases: Phases, probe: Probe) -> None:
    """Per pace, each round against the idle window before it (* marks a pair in which the machine's
    other processes used more than QUIET_CORES), then the quiet pairs only: their PING samples pooled
    against those of their idle windows pooled, and the median count wall."""
    rounds_of: dict[str, list[tuple[float, float, bool]]] = {}
    pooled: dict[str, list[float]] = {}
    idle_row: dict | None = None
    for row in phases.rows:
        if row["phase"] == "idle":
            idle_row = row
            continue
        if idle_row is None:
            continue
        idle = probe.window(idle_row["start"], idle_row["end"], "primary")
        prim = probe.window(row["start"], row["end"], "primary")
        quiet = max(idle_row["others"], row["others"]) <= QUIET_CORES
        rounds_of.setdefault(row["phase"], []).append((row["wall"], p99(prim) - p99(idle), quiet))
        if quiet:
            pooled.setdefault(row["phase"], []).extend(prim)
            pooled.setdefault("idle " + row["phase"], []).extend(idle)
    print(
        f"\n| pace | count wall per round | p99 above the idle window before, per round (* others' CPU > "
        f"{QUIET_CORES} cores) | quiet rounds | their count wall, median | their p99 above their idle windows' |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, got in rounds_of.items():
        walls = " · ".join(f"{w:.2f}" for w, _, _ in got)
        above = " · ".join(f"{a:+.2f}{'' if q else '*'}" for _, a, q in got)
        quiet_walls = [w for w, _, q in got if q]
        if quiet_walls:
            wall = f"{statistics.median(quiet_walls):.2f} s"
            gap = f"{p99(pooled[name]) - p99(pooled['idle ' + name]):+.2f} ms"
        else:
            wall = gap = "-"
        print(f"| {name} | {walls} s | {above} ms | {len(quiet_walls)} of {len(got)} | {wall} | {gap} |")


JOBS = ("stats", "check", "walks")
STEP_KEYS = 1000  # ATEDASH_STORE_STEP_KEYS as shipped: keys per SCAN step of a count or a check
POLL = re.compile(r'id="(?:stats|check-results)"[^>]*?hx-get="([^"]+)"[^>]*?hx-trigger="(load delay:1s|every 2s)"')
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def scrape_interval() -> float:
    """The interval of the shipped ServiceMonitor (deploy/kubernetes/servicemonitor.yaml)."""
    text = (ROOT / "deploy" / "kubernetes" / "servicemonitor.yaml").read_text()
    found = re.search(r"interval:\s*(\d+)s", text)
    return float(found.group(1)) if found else 30.0


class Browser:
    """An operator's browser on one server: a new connection per request (keep-alive lapses between
    an operator's clicks; the kernel spreads new connections over the worker processes)."""

    def __init__(self, port: int) -> None:
        self.port, self.cookies = port, {}

    def request(self, method: str, path: str, form=None, headers=None) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        h = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()), **(headers or {})}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            h.update({"Content-Type": "application/x-www-form-urlencoded", "Referer": f"http://127.0.0.1:{self.port}/"})
        try:
            conn.request(method, path, body=body, headers=h)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
        finally:
            conn.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, text

    def login(self, name: str, password: str) -> None:
        _, page = self.request("GET", "/login/")
        token = CSRF.search(page).group(1)
        form = {"csrfmiddlewaretoken": token, "username": name, "password": password, "next": "/"}
        status, _ = self.request("POST", "/login/", form)
        if status != 302:
            raise RuntimeError(f"login of {name} failed: HTTP {status}")


class FleetLoad:
    """Operators and Prometheus on the servers until ``end``: what each asked and how it went."""

    def __init__(self, end: float) -> None:
        self.end = end
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.recounts: list[tuple[float, int]] = []  # (time.time(), server)
        self.scraped: list[tuple[float, int, float, float]] = []  # (time, server, actors, stats age)

    def wait(self, seconds: float) -> bool:
        """Sleeps (the operator's pause between clicks); False once the run is over."""
        time.sleep(max(0.0, min(seconds, self.end - time.monotonic())))
        return time.monotonic() < self.end

    def call(self, browser: Browser, kind: str, method: str, path: str, form=None, headers=None) -> str:
        t0 = time.perf_counter()
        try:
            status, body = browser.request(method, path, form, headers)
        except OSError as exc:
            status, body = 0, str(exc)
        with self.lock:
            self.times.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)
            if status not in (200, 302):
                self.errors[kind] = self.errors.get(kind, 0) + 1
        return body if status in (200, 302) else ""

    def follow(self, browser: Browser, kind: str, body: str, until: float | None = None) -> None:
        """What HTMX does while a count or a check runs: poll the fragment until it stops asking
        (or ``until``, monotonic: the operator's next click)."""
        while (found := POLL.search(body)) and time.monotonic() < min(self.end, until or self.end):
            time.sleep(1.0 if found.group(2) == "load delay:1s" else 2.0)
            body = self.call(
                browser, kind + " poll", "GET", html.unescape(found.group(1)), headers={"HX-Request": "true"}
            )

    def viewer(self, browser: Browser, path: str, kind: str, every: float, offset: float) -> None:
        if not self.wait(offset):
            return
        while True:
            self.follow(browser, kind, self.call(browser, kind, "GET", path))
            if not self.wait(every):
                return

    def editor(self, browser: Browser, server: int, every: float, offset: float) -> None:
        """Opens the overview and clicks "Recount now" (its HTMX form) every ``every`` s, following the
        poll in between."""
        if not self.wait(offset):
            return
        while True:
            next_click = time.monotonic() + every
            page = self.call(browser, "overview", "GET", "/")
            token = CSRF.search(page)
            if token:
                with self.lock:
                    self.recounts.append((time.time(), server))
                form = {"csrfmiddlewaretoken": token.group(1)}
                body = self.call(browser, "recount", "POST", "/overview/stats/", form, {"HX-Request": "true"})
                self.follow(browser, "overview", body, next_click)
            if not self.wait(next_click - time.monotonic()):
                return

    def prometheus(self, port: int, server: int, token: str, every: float) -> None:
        browser = Browser(port)
        while True:
            body = self.call(browser, "metrics", "GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
            actors = sum(float(v) for v in re.findall(r"^atedash_actors\{[^}]*\} (\S+)$", body, re.M))
            age = re.search(r"^atedash_store_stats_age_seconds (\S+)$", body, re.M)
            with self.lock:
                self.scraped.append((time.time(), server, actors, float(age.group(1)) if age else -1.0))
            if not self.wait(every):
                return


class LeaseWatch:
    """Every lease of the fleet's jobs seen in the store (polled every 0.1 s): who held which token."""

    def __init__(self, store: Persistence) -> None:
        self.store = store
        self.seen: dict[str, dict[int, list]] = {job: {} for job in JOBS}  # token -> [holder, first, last]
        # (time, value) of each change of the markers that make a result due before its age does
        self.markers: dict[str, list[tuple[float, bytes | None]]] = {"check-epoch": [], "stats stale": []}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            now = time.time()
            for job in JOBS:
                raw = self.store.client.get(f"atedash:fleet:{{{job}}}:lease")
                if raw is None:
                    continue
                token, holder = (raw.decode("utf-8", "replace").split(" ") + ["", ""])[:2]
                entry = self.seen[job].setdefault(int(token) if token.isdigit() else -1, [holder, now, now])
                entry[2] = now
            for name, key in (("check-epoch", "atedash:check-epoch"), ("stats stale", "atedash:fleet:{stats}:stale")):
                value = self.store.client.get(key)
                if not self.markers[name] or self.markers[name][-1][1] != value:
                    self.markers[name].append((now, value))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def node_stats(store: Persistence) -> dict[str, tuple[str, dict[str, int], float, int]]:
    """Per node: (role, calls per command (INFO commandstats), CPU s (user + sys), keys)."""
    out = {}
    primaries, replicas = nodes(store)
    for role, group in (("primary", primaries), ("replica", replicas)):
        for name, conn in group:
            calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in conn.info("commandstats").items()}
            out[name] = (role, calls, cpu(conn), int(conn.dbsize()))
    return out


def fleet_fences(store: Persistence) -> list[int]:
    return [int(store.client.get(f"atedash:fleet:{{{job}}}:fence") or 0) for job in JOBS]


def part2(url: str, seconds: float, args: argparse.Namespace) -> None:
    """2 servers x 2 workers as shipped, used by operators and scraped by Prometheus for ``seconds``:
    how many counts and checks the store served (fence counters, leases, INFO commandstats)."""
    store = Persistence(connect(url))
    token = "bench-metrics-token-" + secrets.token_hex(16)
    key = "fleet-bench-" + secrets.token_urlsafe(50)
    tmp = Path(tempfile.mkdtemp(prefix="atedash-fleet-bench-"))
    overrides = {
        name: str(value)
        for name, value in (
            ("ATEDASH_STATS_MAX_AGE", args.stats_max_age),
            ("ATEDASH_CHECK_MAX_AGE", args.check_max_age),
        )
        if value is not None
    }
    servers, editors = [], []
    for i in range(2):
        (tmp / f"s{i}").mkdir()
        server = Server(url, args.http_port + i, tmp / f"s{i}")
        server.env.update(ATEDASH_SECRET_KEY=key, ATEDASH_METRICS_TOKEN=token, GUNICORN_WORKERS="2", **overrides)
        for name in ("GUNICORN_THREADS", "ATEDASH_REFRESH_INTERVAL", "ATEDASH_STORE_STEP_KEYS"):
            server.env.pop(name, None)  # as shipped
        server.prepare()
        editor_password = secrets.token_urlsafe(16)
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "operators", "add", "bench-editor", "--role", "editor"]
            + ["--password-stdin", "--replace"],
            cwd=ROOT,
            env=server.env,
            check=True,
            input=editor_password + "\n",
            text=True,
            capture_output=True,
        )
        editors.append(editor_password)
        servers.append(server)
    every = args.scrape_every or scrape_interval()
    pids: set[int] = set()
    try:
        for server in servers:
            server.start()
        signed_in = []  # per server: 2 viewers of the overview, 1 of the consistency page, 1 editor
        for i, server in enumerate(servers):
            browsers = [Browser(server.port) for _ in range(4)]
            for browser in browsers[:3]:
                browser.login("bench", server.password)
            browsers[3].login("bench-editor", editors[i])
            signed_in.append(browsers)
        # Counted from here: the sign-ins (PBKDF2, seconds on a loaded machine) ask for no count.
        fences_before = fleet_fences(store)
        before = node_stats(store)
        with LeaseWatch(store) as watch:
            t_start = time.time()
            load = FleetLoad(time.monotonic() + seconds)
            threads = []
            for i, server in enumerate(servers):
                pids.update(server.worker_pids())
                overview_a, overview_b, checker, editor = signed_in[i]
                for j, viewer in enumerate((overview_a, overview_b)):  # offset from each other
                    offset = (2 * i + j) * args.overview_every / 4
                    threads.append((load.viewer, (viewer, "/", "overview", args.overview_every, offset)))
                offset = i * args.check_page_every / 2
                threads.append((load.viewer, (checker, "/ops/check/", "check page", args.check_page_every, offset)))
                threads.append((load.editor, (editor, i, args.recount_every, (i + 0.5) * args.recount_every / 2)))
                threads.append((load.prometheus, (server.port, i, token, every)))
            running = [threading.Thread(target=fn, args=a, daemon=True) for fn, a in threads]
            for t in running:
                t.start()
            while any(t.is_alive() for t in running):
                for server in servers:  # a worker gunicorn replaced is still this fleet's
                    pids.update(server.worker_pids())
                time.sleep(1)
            t_end = time.time()
    finally:
        for s in servers:
            s.stop()
    after = node_stats(store)
    fences = [a - b for a, b in zip(fleet_fences(store), fences_before)]
    report_part2(store, seconds, args, every, load, watch, pids, fences, before, after, t_start, t_end)


def report_part2(store, seconds, args, every, load, watch, pids, fences, before, after, t_start, t_end) -> None:
    changed = [
        f"{n} {v} s" for n, v in (("stats max age", args.stats_max_age), ("check max age", args.check_max_age)) if v
    ]
    print(
        f"\n{seconds / 60:.0f} min, 2 servers x 2 workers as shipped (settings overridden: "
        f"{', '.join(changed) or 'none'}); per server: 2 viewers "
        f"open the overview every {args.overview_every:.0f} s, 1 viewer the consistency page every "
        f"{args.check_page_every:.0f} s (each following the page's HTMX poll while a count or check runs), "
        f'1 editor clicks "Recount now" every {args.recount_every:.0f} s, Prometheus scrapes /metrics every '
        f"{every:.0f} s",
        flush=True,
    )
    print("\n| request | n | errors | p50 ms | p90 ms | max ms |\n|---|---|---|---|---|---|")
    for kind, values in sorted(load.times.items()):
        values = sorted(values)
        p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
        print(
            f"| {kind} | {len(values)} | {load.errors.get(kind, 0)} | {statistics.median(values):.0f} | "
            f"{p90:.0f} | {values[-1]:.0f} |"
        )

    def ours(holder: str) -> bool:
        pid = holder.rpartition(":")[2]
        return pid.isdigit() and int(pid) in pids

    print(
        "\n| job | runs (fence counter) | leases seen: this fleet's processes / others | "
        "started for a Recount now (clicked since the last run started) | holders (this fleet) | runs' lease time, s |\n|---|---|---|---|---|---|"
    )
    for job, fence in zip(JOBS, fences):
        runs = sorted(watch.seen[job].items(), key=lambda kv: kv[1][1])
        mine = [r for r in runs if ours(r[1][0])]
        starts = [first for _, (_, first, _) in runs]
        recount = sum(  # a click since the previous run started: this run is that click's
            1
            for i, first in enumerate(starts)
            if any((starts[i - 1] if i else 0) < t <= first for t, _ in load.recounts)
        )
        holders = sorted({h.rpartition(":")[2] for _, (h, _, _) in mine})
        spans = ", ".join(f"{last - first:.0f}" for _, (_, first, last) in mine)
        print(
            f"| {job} | {fence} | {len(mine)} / {len(runs) - len(mine)} | "
            f"{recount if job == 'stats' else '-'} | {len(holders)} ({', '.join(holders)}) | {spans or '-'} |"
        )

    total_keys = sum(keys for role, _calls, _cpu, keys in after.values() if role == "primary")
    print(
        f"\nINFO commandstats deltas over the run ({total_keys:,} keys; a whole-store pass is about "
        f"keys / {STEP_KEYS} SCAN calls per shard, and one GET of every value on the replicas: a count or a check):\n"
        "\n| node | role | SCAN | EVALSHA (+_RO) | GET | MGET | values read per key (GET / keys) | CPU s |"
        "\n|---|---|---|---|---|---|---|---|"
    )
    for name in sorted(after):
        role, calls, cpu_after, keys = after[name]
        old = before.get(name, (role, {}, cpu_after, keys))[1]
        delta = {k: v - old.get(k, 0) for k, v in calls.items()}
        scripts = delta.get("evalsha", 0) + delta.get("evalsha_ro", 0) + delta.get("eval", 0) + delta.get("eval_ro", 0)
        passes = delta.get("get", 0) / keys if keys else 0.0
        print(
            f"| {name} | {role} | {delta.get('scan', 0):,} | {scripts:,} | {delta.get('get', 0):,} | "
            f"{delta.get('mget', 0):,} | {passes:.1f} | {cpu_after - before.get(name, after[name])[2]:.1f} |"
        )
    events = [(t, f"Recount now on server {server}") for t, server in load.recounts]
    for job in ("stats", "check"):
        for _token, (holder, first, last) in watch.seen[job].items():
            events.append((first, f"{'count' if job == 'stats' else 'check'} by {holder} ({last - first:.0f} s)"))
    for name, changes in watch.markers.items():
        events += [(t, f"{name} changed") for t, _value in changes[1:]]
    print("\nTimeline, s from the start: " + "; ".join(f"{t - t_start:.0f} {what}" for t, what in sorted(events)))
    stored = json.loads(store.client.get("atedash:fleet:{stats}:result") or b"{}")
    took = float(stored.get("stats", {}).get("duration_s", 0))
    max_age = args.stats_max_age or 30  # ATEDASH_STATS_MAX_AGE as shipped
    interval = max(max_age, 10 * took)  # atedash/background/counts.py: max(max age, RECOUNT_FACTOR x duration)
    check_age = args.check_max_age or 300  # ATEDASH_CHECK_MAX_AGE as shipped
    agree = {}
    for t, server, actors, _age in load.scraped:
        agree.setdefault(round(t // every), {})[server] = actors
    same = sum(1 for v in agree.values() if len(v) == 2 and len(set(v.values())) == 1)
    print(
        f"\nLast count: {took:.1f} s (by {stored.get('maker', '?')}), so due every {interval:.0f} s: "
        f"about {seconds / interval:.1f} due in the run, plus the Recounts ({len(load.recounts)} clicks); checks due "
        f"every {check_age} s: about {seconds / check_age:.1f}. One per interval for the fleet; 4x that if each "
        f"process counted on its own. Scrapes of both servers in the same interval reporting the same actor "
        f"total: {same} of {len(agree)}. Run {time.strftime('%H:%M:%S', time.gmtime(t_start))}-"
        f"{time.strftime('%H:%M:%S', time.gmtime(t_end))} UTC; fleet's processes: {sorted(pids)}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=default_url())
    ap.add_argument("--actors", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=20_000)
    ap.add_argument("--no-seed", action="store_true")
    ap.add_argument("--skip-probe", action="store_true")
    ap.add_argument("--skip-fleet", action="store_true")
    ap.add_argument("--skip-check", action="store_true")
    ap.add_argument("--rounds", type=int, default=3, help="idle / count / walk windows, alternated")
    ap.add_argument("--idle-seconds", type=float, default=3)
    ap.add_argument("--step-keys", type=int, default=1000, help="as ATEDASH_STORE_STEP_KEYS ships")
    ap.add_argument(
        "--paces",
        nargs="+",
        metavar="STEP:PARALLEL:REST",
        help="instead of part 1's phases: the replicas' count at each pace (storage.counting.Pace)",
    )
    ap.add_argument("--retry-noisy", type=int, default=0, help="with --paces: runs again of a disturbed pair")
    fleet = ap.add_argument_group("part 2, the fleet (settings as shipped unless given)")
    fleet.add_argument("--minutes", type=float, default=10, help="how long the fleet runs (default 10)")
    fleet.add_argument("--seconds", type=float, help="the same in seconds (overrides --minutes)")
    fleet.add_argument("--http-port", type=int, default=8791, help="the servers' ports: this and the next")
    fleet.add_argument("--stats-max-age", type=int, help="ATEDASH_STATS_MAX_AGE (shipped: 30)")
    fleet.add_argument("--check-max-age", type=int, help="ATEDASH_CHECK_MAX_AGE (shipped: 300)")
    fleet.add_argument("--overview-every", type=float, default=20, help="s between a viewer's overview loads")
    fleet.add_argument("--check-page-every", type=float, default=60, help="s between consistency page loads")
    fleet.add_argument("--recount-every", type=float, default=240, help='s between an editor\'s "Recount now"')
    fleet.add_argument("--scrape-every", type=float, help="s between scrapes (default: the ServiceMonitor's)")
    args = ap.parse_args()
    store = Persistence(connect(args.url))
    if not args.no_seed:
        took = seed(store, args.actors, args.workers)
        print(f"seeded {args.actors:,} actors + {args.workers:,} workers in {took:.1f} s", flush=True)
    if args.paces:
        part1_paces(store, args.rounds, args.idle_seconds, args.paces, args.retry_noisy)
    elif not args.skip_probe:
        part1(store, args.rounds, not args.skip_check, args.idle_seconds, args.step_keys)
    if not args.skip_fleet:
        part2(args.url, args.seconds if args.seconds is not None else args.minutes * 60, args)


if __name__ == "__main__":
    main()
