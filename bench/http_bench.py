"""HTTP benchmark: atedash under gunicorn (as shipped) at 10k, 100k and 1M actors, driven by wrk.

    ATEDASH_CLUSTER_PORT=7100 .venv/bin/python bench/http_bench.py [--sizes 10000,100000,1000000]
    make bench-http

For each size N it FLUSHES the cluster it is pointed at (never point it at a store you care about),
seeds N actors (bench/storage_bench.py's seeder: pipelined, one stream per primary) and N/5 workers
(200k at 1M; the first 5000 are the ateom pods that RUNNING actors name), marks 1 actor in 1000 with
the template "rare-template", then starts gunicorn with atedash/gunicorn.conf.py (2 workers x
threads, as shipped), creates an operator with `manage.py operators add` in a temporary users file
and logs in through the login form to get the session cookie.

For every page it measures, in the same run:

- one client, sequential requests on a keep-alive connection: median and p99 of the response time,
  and the median of the Server-Timing header the app adds (atedash/core/timing.py): `app` is the whole
  Django stack, `store` the time inside storage calls; Django's own share is app - store;
- 16 connections (wrk, one thread, keep-alive, 10 s): median, p99 and requests/s, the mean Server-Timing
  under that load, and the CPU time per request of the gunicorn workers, the Redis primaries and wrk
  (from /proc: steadier than throughput when other processes share the machine);
- the storage floor: the equivalent storage call(s) timed in this process (e.g. scan_actors(limit=50)
  for the actors' first page), and the ratio of the one-client median to it.

Then it walks every page of the actor list (or --walk-pages of them) through the Next links with one
client and reports the RSS of the gunicorn workers before and after. The table is printed at the end
(and written as JSON with --json).
"""

from __future__ import annotations

import argparse
import html
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from storage_bench import actor_record, default_url, write_per_shard  # noqa: E402
from storage_bench import seed as seed_actors

from atedash.records import cursors  # noqa: E402
from storage import Persistence, connect  # noqa: E402
from storage.ateapi_pb2 import Worker  # noqa: E402
from storage.codec import ACTOR_CODEC, WORKER_CODEC  # noqa: E402

PY = sys.executable
RARE_TEMPLATE = "rare-template"  # on actor i when i % 1000 == 500
NO_TEMPLATE = "no-such-template"
DETAIL_ACTOR = "actor-0000001"  # RUNNING on ateom pod team-1/ateom-00001, which is a worker pointing back


# ============================================================================ seeding


def worker_records(n_workers: int, n_actors: int):
    """Workers in 20 namespaces x 10 pools. The first 5000 are the ateom pods that RUNNING actors
    name (actor_record: pod ateom-<i % 5000> in namespace team-<i % 20>), each assigned to the first
    RUNNING actor on it; of the rest, half are assigned, half free."""
    for k in range(n_workers):
        ns, pool = f"team-{k % 20}", f"pool-{(k // 20) % 10}"
        if k < 5000:
            pod = f"ateom-{k:05d}"
            actor = next((i for i in range(k, n_actors, 5000) if i % 4 == 1 and i % 3), None)
        else:
            pod = f"w-{k:07d}"
            actor = (k * 7) % n_actors if k % 2 == 0 else None
        w = Worker(
            worker_namespace=ns,
            worker_pool=pool,
            worker_pod=pod,
            ip=f"10.{k >> 16 & 255}.{k >> 8 & 255}.{k & 255}",
            version=1 + k % 3,
        )
        if actor is not None:
            w.actor_id, w.actor_namespace, w.actor_template = (
                f"actor-{actor:07d}",
                f"team-{actor % 20}",
                f"template-{actor % 50}",
            )
        yield f"worker:{ns}:{pool}:{pod}", WORKER_CODEC.encode_json(w)


def rare_records(n_actors: int):
    for i in range(500, n_actors, 1000):
        key, value = actor_record(i)
        actor = ACTOR_CODEC.decode(value)[0]
        actor.actor_template_name = RARE_TEMPLATE
        yield key, ACTOR_CODEC.encode_json(actor)


def seed(store: Persistence, n_actors: int, n_workers: int) -> float:
    t0 = time.perf_counter()
    store.debug_clear_all()
    seed_actors(store, n_actors)
    write_per_shard(store, rare_records(n_actors))
    write_per_shard(store, worker_records(n_workers, n_actors))
    return time.perf_counter() - t0


# ============================================================================ the server


class Server:
    """gunicorn with atedash/gunicorn.conf.py, in a temporary directory (users file, static, logs)."""

    def __init__(
        self, redis_url: str, port: int, tmp: Path, *, root: Path = ROOT, role: str = "viewer", name: str = "bench"
    ):
        # Servers on one store need operators of their own names: `operators add --replace` ends the
        # sessions of the name it adds, fleet-wide.
        self.port, self.tmp, self.root, self.role, self.name = port, tmp, root, role, name
        # The checkout's own interpreter (another checkout may pin other packages), else this one.
        own = root / ".venv" / "bin" / "python"
        self.python = str(own) if own.exists() else PY
        self.env = dict(os.environ)
        self.env.update(
            ATEDASH_REDIS_URL=redis_url,
            ATEDASH_SECRET_KEY=secrets.token_urlsafe(50),
            ATEDASH_USERS_FILE=str(tmp / "operators.json"),
            ATEDASH_STATIC_ROOT=str(tmp / "static"),
            ATEDASH_ALLOWED_HOSTS="127.0.0.1,localhost",
            ATEDASH_ENVIRONMENT="bench",
            DJANGO_SETTINGS_MODULE="atedash.settings",
            # As deploy/ runs it: the request histogram shared by the workers (prometheus multiprocess).
            PROMETHEUS_MULTIPROC_DIR=str(tmp / "prometheus"),
        )
        for name in ("ATEDASH_DEBUG", "PYTHONPATH"):
            self.env.pop(name, None)
        self.password = secrets.token_urlsafe(16)
        self.proc = None

    def prepare(self) -> None:
        manage = [self.python, str(self.root / "manage.py")]
        if not (self.tmp / "static").exists():
            subprocess.run(manage + ["collectstatic", "--noinput", "-v", "0"], cwd=self.root, env=self.env, check=True)
        subprocess.run(
            manage + ["operators", "add", self.name, "--role", self.role, "--password-stdin", "--replace"],
            cwd=self.root,
            env=self.env,
            check=True,
            input=self.password + "\n",
            text=True,
            capture_output=True,
        )

    def start(self) -> None:
        shutil.rmtree(self.tmp / "prometheus", ignore_errors=True)
        (self.tmp / "prometheus").mkdir()
        self.log = open(self.tmp / "gunicorn.log", "ab")
        self.proc = subprocess.Popen(
            [
                str(Path(self.python).with_name("gunicorn")),
                *("-c", str(self.root / "atedash" / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{self.port}"),
            ],
            cwd=self.root,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                status, _, _ = Client(self.port).get("/healthz")
                if status == 200 and len(self.worker_pids()) >= 2:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: see {self.tmp / 'gunicorn.log'}")
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not come up")

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def worker_rss_mib(self) -> list[float]:
        sizes = []
        for pid in self.worker_pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        sizes.append(int(line.split()[1]) / 1024)
            except OSError:
                pass
        return sizes

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()


class Client:
    """One keep-alive HTTP connection with a cookie."""

    def __init__(self, port: int, cookie: str = ""):
        self.port, self.cookie = port, cookie
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, path: str, headers=None):
        h = {"Cookie": self.cookie} if self.cookie else {}
        h.update(headers or {})
        self.conn.request("GET", path, headers=h)
        response = self.conn.getresponse()
        body = response.read()
        return response.status, response.headers, body

    def post(self, path: str, form: dict, headers: dict):
        h = {"Content-Type": "application/x-www-form-urlencoded", **headers}
        self.conn.request("POST", path, body=urllib.parse.urlencode(form), headers=h)
        response = self.conn.getresponse()
        return response.status, response.headers, response.read()


def login(port: int, password: str, name: str = "bench") -> str:
    """The Cookie header of a logged-in session (through the login form, CSRF included)."""
    client = Client(port)
    status, headers, body = client.get("/login/")
    cookies = _cookies(headers)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1).decode()
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    status, headers, _ = client.post(
        "/login/",
        {"csrfmiddlewaretoken": token, "username": name, "password": password, "next": "/"},
        {"Cookie": cookie, "Referer": f"http://127.0.0.1:{port}/login/"},
    )
    if status != 302:
        raise RuntimeError(f"login failed: HTTP {status}")
    cookies.update(_cookies(headers))
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def _cookies(headers) -> dict:
    out = {}
    for header in headers.get_all("Set-Cookie") or []:
        name, _, rest = header.partition("=")
        out[name.strip()] = rest.split(";", 1)[0]
    return out


def server_timing(headers) -> tuple[float, float]:
    parts = dict(re.findall(r"(\w+);dur=([0-9.]+)", headers.get("Server-Timing", "")))
    return float(parts.get("app", "nan")), float(parts.get("store", "nan"))


# ============================================================================ measuring


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def one_client(port: int, cookie: str, path: str, requests: int, expect: bytes | None) -> dict:
    client = Client(port, cookie)
    status, _, body = client.get(path)  # warm-up (and a check that the page is what we think)
    if status != 200 or (expect is not None and expect not in body):
        raise RuntimeError(f"{path}: HTTP {status}, expected {expect!r} in the page")
    times, app, store = [], [], []
    for _ in range(requests):
        t0 = time.perf_counter()
        status, headers, body = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        a, s = server_timing(headers)
        app.append(a)
        store.append(s)
    return {
        "median_ms": statistics.median(times),
        "p99_ms": percentile(times, 0.99),
        "max_ms": max(times),
        "app_ms": statistics.median(app),
        "store_ms": statistics.median(store),
        "django_ms": statistics.median(a - s for a, s in zip(app, store)),
        "bytes": len(body),
        "scan_info": _scan_info(body),
    }


def _scan_info(body: bytes) -> str | None:
    m = re.search(rb'id="scan-info">(.*?)</span>', body, re.S)
    if not m:
        return None
    return " ".join(re.sub(r"<[^>]+>", " ", html.unescape(m.group(1).decode())).split())


WRK_LUA = """
-- Collects the Server-Timing header of every response (app and store durations, in ms).
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) app_sum = 0; store_sum = 0; n = 0; app_max = 0 end
function response(status, headers, body)
  local st = headers["Server-Timing"]
  if st then
    local a = tonumber(string.match(st, "app;dur=([0-9.]+)"))
    local s = tonumber(string.match(st, "store;dur=([0-9.]+)"))
    if a then app_sum = app_sum + a; n = n + 1; if a > app_max then app_max = a end end
    if s then store_sum = store_sum + s end
  end
end
function done(summary, latency, requests)
  local a, s, c, m = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("app_sum"); s = s + t:get("store_sum"); c = c + t:get("n")
    if t:get("app_max") > m then m = t:get("app_max") end
  end
  io.write(string.format("SERVERTIMING %f %f %d %f\\n", a, s, c, m))
  io.write(string.format("NON2XX %d\\n", summary.errors.status))
  io.write(string.format("LAT %f %f %f\\n", latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def cpu_seconds(pids) -> float:
    """utime + stime of processes (those that are gone count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def run_wrk(port: int, cookie: str, path: str, seconds: int, connections: int, lua: Path, cpu_of=None) -> dict:
    cpu_of = cpu_of or {}
    before = {name: cpu_seconds(pids) for name, pids in cpu_of.items()}
    children = os.times()
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(lua),
        "-H",
        f"Cookie: {cookie}",
        f"http://127.0.0.1:{port}{path}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    after = os.times()
    cpu = {name: cpu_seconds(pids) - before[name] for name, pids in cpu_of.items()}
    cpu["wrk"] = (after.children_user + after.children_system) - (children.children_user + children.children_system)
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    a, s, c, m = (float(x) for x in re.search(r"SERVERTIMING (\S+) (\S+) (\S+) (\S+)", out).groups())
    non2xx = int(re.search(r"NON2XX (\d+)", out).group(1))
    p50, p99, lmax = (float(x) / 1000 for x in re.search(r"LAT (\S+) (\S+) (\S+)", out).groups())
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "cpu_ms_per_request": {name: seconds * 1000 / max(1, total) for name, seconds in cpu.items()},
        "rps": rps,
        "requests": total,
        "median_ms": p50,
        "p99_ms": p99,
        "max_ms": lmax,
        "app_mean_ms": a / c if c else float("nan"),
        "store_mean_ms": s / c if c else float("nan"),
        "app_max_ms": m,
        "non2xx": non2xx,
        "socket_errors": errors.group(1) if errors else "",
    }


def floor_of(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


# ============================================================================ one size


def pages_for(store: Persistence, budget: dict, n_actors: int, secret_key: str) -> list[dict]:
    """The pages measured: path, the text that proves it is the right page, and its storage floor."""
    # A later page: the cursor after 10 pages of 50 (in the URL signed as the server signs its links).
    cursor = None
    for _ in range(10):
        cursor = store.scan_actors(cursor=cursor, limit=50).next_cursor
    signed_cursor = cursors.sign("actors", cursor, key=secret_key)
    rare_expected = n_actors // 1000

    def detail_floor():
        raw = store.get_raw("actor:" + DETAIL_ACTOR)
        store.get_lock("lock:actor:" + DETAIL_ACTOR)
        store.get_worker("team-1", "pool-0", "ateom-00001")
        return raw

    return [
        {
            "page": "actors, first page",
            "path": "/actors/",
            "expect": b'id="actors-table"',
            "requests": 200,
            "floor": lambda: store.scan_actors(limit=50, **budget),
            "floor_call": "scan_actors(limit=50)",
        },
        {
            "page": "actors, page 11 (cursor)",
            "path": "/actors/?" + urllib.parse.urlencode({"cursor": signed_cursor}),
            "expect": b'id="actors-table"',
            "requests": 200,
            "floor": lambda: store.scan_actors(cursor=cursor, limit=50, **budget),
            "floor_call": "scan_actors(cursor, limit=50)",
        },
        {
            "page": "workers, first page",
            "path": "/workers/",
            "expect": b'id="workers-table"',
            "requests": 200,
            "floor": lambda: store.scan_workers(limit=50, **budget),
            "floor_call": "scan_workers(limit=50)",
        },
        {
            "page": "actor detail",
            "path": f"/actors/{DETAIL_ACTOR}/",
            "expect": b'class="ok" id="worker-points-back"',
            "requests": 200,
            "floor": detail_floor,
            "floor_call": "get_raw + get_lock + get_worker",
        },
        {
            "page": "overview (counts cached)",
            "path": "/",
            "expect": b'id="stats-age"',
            "requests": 100,
            "floor": lambda: store.cluster_overview(),
            "floor_call": "cluster_overview()",
        },
        {
            "page": f"actors, rare filter (1/1000: {rare_expected} in store)",
            "path": f"/actors/?template={RARE_TEMPLATE}",
            "expect": b'id="actors-table"',
            "requests": 10,
            "floor": lambda: store.scan_actors(limit=50, template_name=RARE_TEMPLATE, **budget),
            "floor_call": "scan_actors(template_name=rare, **budget)",
        },
        {
            "page": "actors, never-matching filter",
            "path": f"/actors/?template={NO_TEMPLATE}",
            "expect": b'id="actors-table"',
            "requests": 10,
            "floor": lambda: store.scan_actors(limit=50, template_name=NO_TEMPLATE, **budget),
            "floor_call": "scan_actors(template_name=none, **budget)",
        },
    ]


def wait_for_stats(port: int, cookie: str, timeout: float = 600) -> None:
    """Until every gunicorn worker has overview counts (each process computes its own)."""
    client = Client(port, cookie)
    deadline = time.time() + timeout
    streak = 0
    while time.time() < deadline:
        client.get("/overview/counts/?wait=1", {"HX-Request": "true"})
        _, _, body = client.get("/")
        streak = streak + 1 if b'id="stats-age"' in body else 0
        if streak >= 10:
            return
        # A fresh connection may land on the other worker process.
        client = Client(port, cookie)
    raise RuntimeError("overview counts never became available")


def walk_all(port: int, cookie: str, max_pages: int | None) -> dict:
    """Follows the Next links of the actor list with one client."""
    client = Client(port, cookie)
    path, pages, rows, t0 = "/actors/", 0, 0, time.perf_counter()
    while path and (max_pages is None or pages < max_pages):
        status, _, body = client.get(path)
        if status != 200:
            raise RuntimeError(f"{path}: HTTP {status}")
        pages += 1
        rows += body.count(b"<tr data-actor-id=")
        m = re.search(rb'<a href="([^"]*)"[^>]*id="next-page"', body)
        path = "/actors/" + html.unescape(m.group(1).decode()) if m else None
    return {"pages": pages, "rows": rows, "seconds": time.perf_counter() - t0, "complete": path is None}


def bench_size(args, store: Persistence, n: int, tmp: Path, lua: Path) -> dict:
    n_workers = n // 5
    seconds = seed(store, n, n_workers)
    print(f"\n== N = {n:,} actors, {n_workers:,} workers (seeded in {seconds:.1f} s)", flush=True)
    server = Server(args.url, args.port, tmp)
    server.prepare()
    server.start()
    results = []
    try:
        cookie = login(args.port, server.password)
        budget = {
            "max_scan": int(server.env.get("ATEDASH_SCAN_BUDGET") or _setting("ATEDASH_SCAN_BUDGET", server.env)),
            "max_seconds": float(
                server.env.get("ATEDASH_SCAN_SECONDS") or _setting("ATEDASH_SCAN_SECONDS", server.env)
            ),
        }
        t0 = time.perf_counter()
        wait_for_stats(args.port, cookie)
        print(f"overview counts available in both workers after {time.perf_counter() - t0:.1f} s", flush=True)
        for spec in pages_for(store, budget, n, server.env["ATEDASH_SECRET_KEY"]):
            floor = floor_of(spec["floor"], 20 if spec["requests"] > 10 else 5)
            single = one_client(args.port, cookie, spec["path"], spec["requests"], spec["expect"])
            cpu_of = {"gunicorn": server.worker_pids(), "redis": redis_pids(store)}
            loaded = run_wrk(args.port, cookie, spec["path"], args.seconds, args.connections, lua, cpu_of)
            row = {
                "page": spec["page"],
                "n": n,
                "path": spec["path"],
                "floor_ms": floor,
                "floor_call": spec["floor_call"],
                "one": single,
                "wrk": loaded,
                "ratio": single["median_ms"] / floor,
            }
            results.append(row)
            print(_row_text(row), flush=True)
            cpu = loaded["cpu_ms_per_request"]
            print(
                f"    under wrk: CPU per request gunicorn {cpu['gunicorn']:.2f} ms, redis {cpu['redis']:.2f} ms, "
                f"wrk {cpu['wrk']:.2f} ms; server time mean {loaded['app_mean_ms']:.1f} ms "
                f"(store {loaded['store_mean_ms']:.1f}), max {loaded['app_max_ms']:.0f} ms",
                flush=True,
            )
            if single["scan_info"] and "filter" in spec["page"]:
                print(f"    page says: {single['scan_info']}", flush=True)
        rss_before = server.worker_rss_mib()
        walk = walk_all(args.port, cookie, args.walk_pages) if n >= args.walk_from else None
        rss_after = server.worker_rss_mib()
        if walk:
            print(
                f"walked {walk['pages']:,} actor pages ({walk['rows']:,} rows, {'all' if walk['complete'] else 'a sample'})"
                f" in {walk['seconds']:.0f} s",
                flush=True,
            )
        print(
            f"gunicorn worker RSS: {', '.join(f'{r:.0f}' for r in rss_before)} MiB before the walk, "
            f"{', '.join(f'{r:.0f}' for r in rss_after)} MiB after",
            flush=True,
        )
    finally:
        server.stop()
    return {
        "n": n,
        "workers": n_workers,
        "seed_s": seconds,
        "pages": results,
        "rss_before_mib": rss_before,
        "rss_after_mib": rss_after,
        "walk": walk,
    }


def redis_pids(store: Persistence) -> list[int]:
    return [int(s.client.info("server")["process_id"]) for s in store.topology.shards()]


def _setting(name, env):
    """A setting's value as the dashboard under test reads it (its environment: settings refuse a weak
    secret key and the like)."""
    code = f"import django;django.setup();from django.conf import settings;print(settings.{name})"
    done = subprocess.run([PY, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


HEADER = (
    f"{'page':<44} {'N':>9} | {'1 client: median':>16} {'p99':>7} {'app':>6} {'store':>6} {'django':>6} | "
    f"{'16 conn: median':>15} {'p99':>7} {'req/s':>7} | {'floor':>7} {'ratio':>6}"
)


def _row_text(row) -> str:
    one, wrk = row["one"], row["wrk"]
    flag = f"  (non-2xx {wrk['non2xx']})" if wrk["non2xx"] else ""
    return (
        f"{row['page']:<44} {row['n']:>9,} | {one['median_ms']:>13.1f} ms {one['p99_ms']:>7.1f} {one['app_ms']:>6.1f} "
        f"{one['store_ms']:>6.1f} {one['django_ms']:>6.1f} | {wrk['median_ms']:>12.1f} ms {wrk['p99_ms']:>7.1f} "
        f"{wrk['rps']:>7.0f} | {row['floor_ms']:>7.2f} {row['ratio']:>5.1f}x{flag}"
    )


def markdown_table(results) -> str:
    lines = [
        "| page | N | 1 client: median / p99 (ms) | server: app / store / Django (ms) | 16 conn: median / p99 (ms) "
        "| req/s | CPU per request: gunicorn / redis (ms) | storage floor (ms) | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for row in r["pages"]:
            one, wrk = row["one"], row["wrk"]
            cpu = wrk["cpu_ms_per_request"]
            lines.append(
                f"| {row['page']} | {row['n']:,} | {one['median_ms']:.1f} / {one['p99_ms']:.1f} "
                f"| {one['app_ms']:.1f} / {one['store_ms']:.1f} / {one['django_ms']:.1f} "
                f"| {wrk['median_ms']:.0f} / {wrk['p99_ms']:.0f} | {wrk['rps']:.0f} "
                f"| {cpu['gunicorn']:.2f} / {cpu['redis']:.2f} | {row['floor_ms']:.2f} | {row['ratio']:.1f}x |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=default_url(), help="cluster URL (default from ATEDASH_CLUSTER_PORT)")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated actor counts")
    parser.add_argument("--port", type=int, default=8097, help="port for gunicorn")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per page")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--walk-pages", type=int, default=None, help="pages of the RSS walk (default: all)")
    parser.add_argument("--walk-from", type=int, default=1_000_000, help="walk the actor list from this N on")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="leave the last store seeded")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is required: scripts/ensure-system wrk")
    store = Persistence(connect(args.url))
    load = os.getloadavg()
    print(
        f"HTTP bench on {store.address} ({len(store.topology.shards())} primaries), Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        flush=True,
    )
    print(HEADER)
    results = []
    with tempfile.TemporaryDirectory(prefix="atedash-http-bench-") as tmpdir:
        tmp = Path(tmpdir)
        lua = tmp / "timing.lua"
        lua.write_text(WRK_LUA)
        for n in args.sizes.split(","):
            results.append(bench_size(args, store, int(n), tmp, lua))
    if not args.keep:
        store.debug_clear_all()
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("\n" + HEADER)
    for r in results:
        for row in r["pages"]:
            print(_row_text(row))
    for r in results:
        walk = r["walk"]
        if walk:
            print(
                f"N={r['n']:,}: gunicorn worker RSS {', '.join(f'{x:.0f}' for x in r['rss_before_mib'])} MiB before, "
                f"{', '.join(f'{x:.0f}' for x in r['rss_after_mib'])} MiB after walking {walk['pages']:,} pages"
            )
    print("\n" + markdown_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
