"""One fleet, one truth: two gunicorn servers (2 workers each) on one store answer the same.

Walks, counts and their failures are read from the store, so whichever process answers shows the
same state; a process killed mid-walk or mid-count shows as interrupted on the others, and a new one
starts. Everything polls (generous deadlines), nothing sleeps to synchronise.
"""

import http.client
import json
import os
import re
import signal
import time
import urllib.parse

import pytest

from storage.ateapi_pb2 import Actor
from storage.codec import ACTOR_CODEC
from tests.dashboard.conftest import PASSWORDS
from tests.security.test_shipped_config import kube, kube_env

# Each test starts two gunicorn servers: not in `make check`'s fast loop.
pytestmark = pytest.mark.process

S = Actor.Status
WALK_LEASE = "atedash:fleet:{walks}:lease"
STATS_LEASE = "atedash:fleet:{stats}:lease"
CHECK_LEASE = "atedash:fleet:{check}:lease"
# The servers of the tests that kill a lease's holder take 3 s leases (6 s for a walk and 15 s for a
# count or a check unset): a dead holder's lease lapses after that, then shows as interrupted; "a
# few seconds" with room for a loaded machine's slow pages.
LEASE_S = 3
SHORT_LEASES = {"ATEDASH_FLEET_LEASE_SECONDS": str(LEASE_S)}
FEW_SECONDS = LEASE_S + 30


def seed(store, actors):
    pipe = store.client.pipeline(transaction=False)
    for i in range(actors):
        actor = Actor(
            actor_id=f"f{i:06d}",
            version=1,
            actor_template_namespace="team",
            actor_template_name="t",
            status=[S.STATUS_RUNNING, S.STATUS_SUSPENDED, S.STATUS_RESUMING][i % 3],
        )
        pipe.set(f"actor:{actor.actor_id}", ACTOR_CODEC.encode_json(actor))
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def poll(what, check, timeout=120, every=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(every)  # a poll interval, not a synchronisation
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def logged_in(server, role):
    browser = server.browser()
    assert browser.login(role) == 302
    return browser


def read(browser, path):
    """GET on a new connection, as a browser after its keep-alive lapsed: the kernel hands each one
    to either worker process of the server (one keep-alive connection stays with one process)."""
    if browser.conn is not None:
        browser.conn.close()
        browser.conn = None
    return browser.request("GET", path)


def check_report(browser):
    """(summary, maker) of the check's report as the server shows it now, or None."""
    html = read(browser, "/ops/check/")[1]
    summary = re.search(r"Checked .*? keys scanned\)", html, re.S)
    maker = re.search(r'id="check-maker">by <code>([^<]+)</code>', html)
    return summary and maker and (summary.group(0), maker.group(1))


def section(html, ident):
    """The element with this id, up to its closing tag's line (enough to compare states)."""
    match = re.search(rf'id="{ident}".*?</(p|table|nav)>', html, re.S)
    return match.group(0) if match else None


def walk_state(html):
    """What a walk page says, without the per-request CSRF tokens."""
    parts = [section(html, i) for i in ("walk-summary", "matches-table", "walk-pager", "walk-truncated")]
    return tuple(parts)


def holder_pid(store, key):
    """The pid of the process holding a lease ("<token> <host:pid> <note>")."""
    raw = store.client.get(key)
    if raw is None:
        return None
    holder = raw.decode().split(" ")[1]
    return int(holder.rpartition(":")[2])


def report(capsys, line):
    with capsys.disabled():
        print(f"\n[fleet] {line}")


def test_a_walk_started_on_one_server_reads_the_same_on_the_other(fleet, store, capsys):
    seed(store, 3000)
    a, b = fleet()
    on_a, on_b = logged_in(a, "viewer"), logged_in(b, "viewer")
    assert on_a.post("/actors/all/", {"status": "RUNNING"})[0] == 302
    # Every read from the other server (either of its workers) knows the walk at once.
    for _ in range(20):
        status, html = read(on_b, "/actors/all/?status=RUNNING")
        assert status == 200 and 'id="walk-none"' not in html, html[-2000:]
    poll("the walk to finish", lambda: 'id="walk-summary"' in on_b.request("GET", "/actors/all/?status=RUNNING")[1])
    states = []
    for _ in range(20):
        status, html = read(on_b, "/actors/all/?status=RUNNING")
        assert status == 200
        states.append(walk_state(html))
    assert states[0][0] is not None and "1,000 matches" in states[0][0], states[0]
    assert all(state == states[0] for state in states), "the 20 reads differ"
    assert walk_state(on_a.request("GET", "/actors/all/?status=RUNNING")[1]) == states[0]
    # The same filters asked on the other server: the same walk, not a second one.
    assert on_b.post("/actors/all/", {"status": "RUNNING"})[0] == 302
    assert store.client.llen("atedash:fleet:{walks}:recent") == 1
    # An admin on the other server previews a bulk action over every match of the walk.
    walk_id = store.client.lindex("atedash:fleet:{walks}:recent", 0).decode()
    form = {"kind": "actors", "action": "release-locks", "scope": "all", "walk": walk_id}
    status, html = logged_in(b, "admin").post("/bulk/", form)
    assert status == 200 and 'id="bulk-confirm-count">1,000 records (all matches of the walk)' in html, html[-2000:]
    assert not a.tracebacks() and not b.tracebacks()
    summary = re.sub(r"<[^>]+>|\s+", " ", states[0][0]).strip()
    report(capsys, f"walk started on server A; 20 reads from server B, all identical: {summary}")


def test_a_recount_on_one_server_shows_on_the_other_once_for_the_fleet(fleet, store, capsys):
    seed(store, 300)
    a, b = fleet(ATEDASH_REFRESH_INTERVAL="1")
    on_a, on_b = logged_in(a, "editor"), logged_in(b, "viewer")

    def counted(browser):
        html = read(browser, "/")[1]
        at = re.search(r'id="stats-counted-at" datetime="([^"]+)"', html)
        total = re.search(r"Actors by status \((\d+)\)", html)
        maker = re.search(r"by <code>([^<]+)</code>\)", html)
        return at and total and (at.group(1), int(total.group(1)), maker.group(1) if maker else None)

    poll("the first count", lambda: counted(on_a))
    fence = int(store.client.get("atedash:fleet:{stats}:fence"))
    seed_more = Actor(actor_id="late", actor_template_namespace="team", actor_template_name="t")
    store.client.set("actor:late", ACTOR_CODEC.encode_json(seed_more))
    assert on_a.post("/overview/counts/")[0] == 302
    shown_b = poll("the recount on the other server", lambda: (c := counted(on_b)) and c[1] == 301 and c)
    for _ in range(10):
        assert counted(on_a) == shown_b and counted(on_b) == shown_b
    # One count for the recount, whichever processes answered the 20 pages above.
    assert int(store.client.get("atedash:fleet:{stats}:fence")) == fence + 1
    assert not a.tracebacks() and not b.tracebacks()
    report(capsys, f"recount on A; A and B show {shown_b[1]} actors counted at {shown_b[0]} by {shown_b[2]}; 1 count")


def test_a_walk_whose_process_is_killed_shows_interrupted_and_starts_again(fleet, store, capsys):
    seed(store, 30_000)
    a, b = fleet(ATEDASH_STORE_STEP_KEYS="1", **SHORT_LEASES)  # a slow walk: one key per step
    on_a, on_b = logged_in(a, "viewer"), logged_in(b, "viewer")
    assert on_a.post("/actors/all/", {"status": "SUSPENDED"})[0] == 302
    pid = poll("the walk's lease", lambda: holder_pid(store, WALK_LEASE))
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    url = "/actors/all/?status=SUSPENDED"
    html = poll(
        "the walk shown as interrupted",
        lambda: (h := on_b.request("GET", url)[1]) and 'id="walk-interrupted"' in h and h,
        60,
    )
    shown_after = time.monotonic() - killed
    assert 'id="walk-restart"' in html
    assert shown_after < FEW_SECONDS, f"shown as interrupted {shown_after:.1f} s after the kill"
    report(capsys, f"walk's process {pid} SIGKILLed; B shows it interrupted {shown_after:.1f} s later")
    assert 'id="walk-interrupted"' in on_a.request("GET", url)[1]
    # Started again from the other server: a new walk runs to its end.
    assert on_b.post("/actors/all/", {"status": "SUSPENDED", "fresh": "1"})[0] == 302
    assert holder_pid(store, WALK_LEASE) != pid
    done = poll("the new walk", lambda: (h := on_a.request("GET", url)[1]) and 'id="walk-summary"' in h and h, 300, 0.5)
    assert "10,000 matches" in done


def test_a_count_whose_process_is_killed_shows_interrupted_and_starts_again(fleet, store, capsys):
    seed(store, 20_000)
    a, b = fleet(ATEDASH_STORE_STEP_KEYS="1", ATEDASH_REFRESH_INTERVAL="1", **SHORT_LEASES)
    on_a, on_b = logged_in(a, "editor"), logged_in(b, "editor")
    on_a.request("GET", "/")  # starts the fleet's first count
    pid = poll("the count's lease", lambda: holder_pid(store, STATS_LEASE))
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    poll(
        "the count shown as interrupted",
        lambda: 'id="stats-interrupted"' in on_b.request("GET", "/")[1],
        FEW_SECONDS + 60,
    )
    shown_after = time.monotonic() - killed
    assert shown_after < FEW_SECONDS, f"shown as interrupted {shown_after:.1f} s after the kill"
    report(capsys, f"count's process {pid} SIGKILLed; B shows it interrupted {shown_after:.1f} s later")
    # The next page that finds the counts due starts a new count in a live process.
    poll(
        "a new count",
        lambda: (
            (p := holder_pid(store, STATS_LEASE)) and p != pid or store.client.exists("atedash:fleet:{stats}:result")
        ),
        60,
    )
    html = poll(
        "the new count's result",
        lambda: (h := on_b.request("GET", "/")[1]) and 'id="stats-counted-at"' in h and h,
        300,
        0.5,
    )
    assert "Actors by status (20000)" in html and 'id="stats-interrupted"' not in html


def test_a_walk_is_joined_and_cancelled_from_the_other_server(fleet, store):
    seed(store, 15_000)
    a, b = fleet(ATEDASH_STORE_STEP_KEYS="1")  # a slow walk: one key per step
    on_a, on_b = logged_in(a, "viewer"), logged_in(b, "editor")
    assert on_a.post("/actors/all/", {})[0] == 302
    html = poll(
        "the walk's progress on the other server",
        lambda: (h := on_b.request("GET", "/actors/all/")[1]) and 'id="walk-cancel"' in h and h,
    )
    job_id = re.search(r'action="/matches/([0-9a-f]{16})/cancel/"', html).group(1)
    # A second operator asking the same filters on the other server joins the running walk.
    lease = store.client.get(WALK_LEASE)
    assert on_b.post("/actors/all/", {})[0] == 302 and on_a.post("/actors/all/", {})[0] == 302
    assert store.client.get(WALK_LEASE) == lease and store.client.llen("atedash:fleet:{walks}:recent") == 1
    assert on_b.post(f"/matches/{job_id}/cancel/", {"next": "/actors/all/"})[0] == 302
    done = poll(
        "the cancelled walk",
        lambda: (h := on_a.request("GET", "/actors/all/")[1]) and 'id="walk-summary"' in h and h,
        60,
    )
    assert 'id="walk-cancelled"' in done
    assert store.client.get(WALK_LEASE) is None  # the walking process let go of the fleet's walk


def test_a_check_whose_process_is_killed_shows_interrupted_and_starts_again(fleet, store, capsys):
    seed(store, 10_000)
    # A slow check (a key a page) on short leases.
    a, b = fleet(ATEDASH_STORE_STEP_KEYS="1", ATEDASH_REFRESH_INTERVAL="1", **SHORT_LEASES)
    on_a, on_b = logged_in(a, "editor"), logged_in(b, "viewer")
    assert on_a.post("/ops/check/")[0] == 302  # "Run the check now"
    pid = poll("the check's lease", lambda: holder_pid(store, CHECK_LEASE))
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    html = poll(
        "the check shown as interrupted",
        lambda: (h := read(on_b, "/ops/check/")[1]) and 'id="check-interrupted"' in h and h,
        FEW_SECONDS + 60,
    )
    shown_after = time.monotonic() - killed
    assert f":{pid}</code>" in html, "the notice names the killed process"
    assert shown_after < FEW_SECONDS, f"shown as interrupted {shown_after:.1f} s after the kill"
    report(capsys, f"check's process {pid} SIGKILLed; B shows it interrupted {shown_after:.1f} s later")
    # The viewer's page found no report: a new check runs in a live process, and its report is the
    # same on both servers.
    done = poll(
        "the new check's report",
        lambda: (h := read(on_b, "/ops/check/")[1]) and 'id="check-summary"' in h and h,
        300,
        0.5,
    )
    assert 'id="check-interrupted"' not in done
    summary = re.search(r"Checked .*? keys scanned\)", done, re.S).group(0)
    maker = re.search(r'id="check-maker">by <code>([^<]+)</code>', done).group(1)
    assert not maker.endswith(f":{pid}") and "10000 actors" in summary
    # A and B read one after the other show the same report. A first: the editor's page starts a
    # check (1 s refresh interval) and waits for it, so B, read after, has nothing newer to show.
    # Polled: another check may still end between the two reads (another maker, the same counts).
    poll("the same report on A and B", lambda: (shown := check_report(on_a)) and shown == check_report(on_b), 60)
    assert not b.tracebacks()


# --- the Kubernetes manifests' probes and scrape, on two servers -----------------------------------

POD = "10.42.0.17:8000"  # Prometheus and the kubelet name a pod by its IP
INGRESS = {"Host": "atedash.example.internal", "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}


def manifest_env(redis_url):
    """The pods' environment (ConfigMap, a generated Secret, the Deployment's env) on this store;
    127.0.0.1 stands for the Ingress controller (the one proxy the settings trust)."""
    env = kube_env(generated=True)
    for name in ("PORT", "ATEDASH_USERS_FILE", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name)  # the test server's own
    env.update(ATEDASH_REDIS_URL=redis_url, GUNICORN_FORWARDED_ALLOW_IPS="127.0.0.1")
    env.update(ATEDASH_TRUSTED_PROXIES="127.0.0.1/32")
    return env


def probe(server, name):
    """The Deployment's probe `name` (livenessProbe, readinessProbe) as the kubelet sends it."""
    container = kube("deployment.yaml")[0]["spec"]["template"]["spec"]["containers"][0]
    get = container[name]["httpGet"]
    assert get["port"] == "http" and container["ports"][0]["name"] == "http"
    browser = server.browser(**{h["name"]: h["value"] for h in get.get("httpHeaders", [])})
    return browser.request("GET", get["path"])


def scrape(server, token):
    """The ServiceMonitor's scrape of one pod: its path and scheme, its bearer token, the pod's IP."""
    (endpoint,) = kube("servicemonitor.yaml")[0]["spec"]["endpoints"]
    assert endpoint["scheme"] == "http" and endpoint["bearerTokenSecret"]["key"] == "ATEDASH_METRICS_TOKEN"
    browser = server.browser(Host=POD, Authorization=f"Bearer {token}")
    return browser.request("GET", endpoint["path"])


def gauges(text, prefix):
    return sorted(line for line in text.splitlines() if line.startswith(prefix))


def sign_in_through_the_ingress(server, name):
    """The login form over HTTPS through the Ingress: (status, page) of the POST."""
    operator = server.browser(**INGRESS)
    form = {"username": name, "password": PASSWORDS[name], "csrfmiddlewaretoken": operator.csrf()}
    headers = {
        **INGRESS,
        "Cookie": "; ".join(f"{k}={v}" for k, v in operator.cookies.items()),
        "Content-Type": "application/x-www-form-urlencoded",
        "Referer": f"https://{INGRESS['Host']}/login/",
    }
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("POST", "/login/", body=urllib.parse.urlencode(form), headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def test_two_servers_as_the_manifests_run_them_answer_probes_and_scrapes(fleet, store, redis_url, capsys):
    seed(store, 300)
    env = manifest_env(redis_url)
    a, b = fleet(**env)
    token = env["ATEDASH_METRICS_TOKEN"]
    for server in (a, b):
        assert probe(server, "livenessProbe")[0] == 200
        status, body = probe(server, "readinessProbe")
        assert status == 200 and json.loads(body) == {"ready": True}
        # The manifests' HTTPS settings hold: an operator's plain-HTTP request is sent to HTTPS.
        assert server.browser(Host="atedash.example.internal").request("GET", "/login/")[0] == 301
        # Without the token the same scrape gets no metrics.
        assert server.browser(Host=POD).request("GET", "/metrics")[0] == 302

    # Both pods report the fleet's one count (the first scrape starts it).
    def both():
        texts = [scrape(server, token)[1] for server in (a, b)]
        return all("atedash_store_stats_available 1.0" in text for text in texts) and texts

    scraped = poll("counts in both pods' scrapes", both)
    for text in scraped:
        assert "atedash_store_up 1.0" in text
    assert gauges(scraped[0], "atedash_actors{") == gauges(scraped[1], "atedash_actors{") != []
    assert 'atedash_actors{status="STATUS_RUNNING"} 100.0' in scraped[0]
    assert not a.tracebacks() and not b.tracebacks()


def test_two_servers_as_the_manifests_run_them_stay_ready_in_a_store_outage(fleet, capsys):
    env = manifest_env("redis://127.0.0.1:1")  # nothing listens there
    a, b = fleet(**env)
    token = env["ATEDASH_METRICS_TOKEN"]
    for server in (a, b):
        status, body = probe(server, "readinessProbe")
        assert status == 200 and json.loads(body) == {"ready": True}  # the pod stays in the Service
        status, text = scrape(server, token)
        assert status == 200 and "atedash_store_up 0.0" in text
        # Through the Ingress, an operator signing in gets atedash's page naming the outage.
        status, page = sign_in_through_the_ingress(server, "viewer")
        assert status == 503 and "The store is unreachable" in page, page[-1500:]
    report(capsys, "store down: both servers ready (/readyz 200), atedash_store_up 0, the 503 page names it")
