"""scripts/cluster never hangs (issue 22, item 8): a port taken by something that never answers, a
`redis-cli --cluster create` that hangs once (retried on reset nodes) or always, and a node that
stops answering: the script ends within a bound, non-zero with what the nodes reported and how to
recover, or ok after its retry.

Each test runs its own cluster on ports 7550-7599 (never the test cluster's) in a temporary dir, and
stops what it started."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.process  # each test runs redis-server nodes of its own
REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "cluster"
# Short timeouts so that the bounds are quick to reach; the bound asserted is wide above them. A test
# whose timeouts only ever expire on what it breaks (a hung join, a frozen node) shortens them more.
TIMEOUTS = {
    "ATEDASH_CLUSTER_CLI_TIMEOUT": "2",
    "ATEDASH_CLUSTER_WAIT_TIMEOUT": "10",
    "ATEDASH_CLUSTER_CREATE_TIMEOUT": "5",
}
BOUND = 120  # seconds: the script's own timeouts add up to well under this


def port_free(port):
    """Nothing listens on it (connections of a stopped cluster in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Cluster:
    def __init__(self, base, directory, **env):
        self.base = base
        self.dir = directory
        assert all(port_free(p) and port_free(p + 10000) for p in range(base, base + 6)), f"ports {base}+ in use"
        self.env = dict(os.environ, ATEDASH_CLUSTER_PORT=str(base), ATEDASH_CLUSTER_DIR=str(directory), **TIMEOUTS)
        self.env.update(env)

    def run(self, command):
        started = time.monotonic()
        result = subprocess.run(
            [str(SCRIPT), command], env=self.env, capture_output=True, text=True, timeout=BOUND + 30
        )
        return result, time.monotonic() - started

    def stop(self):
        # Nodes a test stopped with SIGSTOP get going again to take the TERM (stop kills them otherwise).
        for pidfile in self.dir.glob("*/redis.pid"):
            try:
                os.kill(int(pidfile.read_text()), signal.SIGCONT)
            except (OSError, ValueError):
                pass
        if self.dir.exists():
            subprocess.run([str(SCRIPT), "stop"], env=self.env, capture_output=True, timeout=60)
        assert not self.dir.exists()


@pytest.fixture
def cluster(tmp_path):
    made = []

    def make(base, **env):
        made.append(Cluster(base, tmp_path / f"cluster-{base}", **env))
        return made[-1]

    yield make
    for c in made:
        c.stop()


def wrapper(tmp_path, name, body):
    path = tmp_path / "bin" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)
    return str(path)


def assert_diagnosed(result, *ports):
    err = result.stderr
    assert "what the nodes report" in err and "to recover" in err and "scripts/cluster stop" in err, err
    for port in ports:
        assert f"127.0.0.1:{port}:" in err, err


def test_a_port_taken_by_something_that_never_answers(cluster):
    c = cluster(7550, ATEDASH_CLUSTER_CLI_TIMEOUT="1")  # only the silent port waits it out
    silent = socket.socket()
    silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    silent.bind(("127.0.0.1", 7553))
    silent.listen(8)  # accepts connections, never answers
    try:
        result, took = c.run("start")
    finally:
        silent.close()
    assert result.returncode != 0 and took < BOUND, (took, result.stderr)
    assert "port 7553 is taken by a process this script did not start" in result.stderr
    assert_diagnosed(result, *range(7550, 7556))
    # Nothing was started on the free ports.
    assert not list(c.dir.glob("*/redis.pid"))


def test_a_join_that_hangs_once_is_retried_on_reset_nodes(cluster, tmp_path):
    marker = tmp_path / "hung-once"
    cli = wrapper(
        tmp_path,
        "redis-cli",
        f'if [[ " $* " == *" --cluster create "* ]] && [ ! -e {marker} ]; then touch {marker}; exec sleep 1000; fi\n'
        'exec redis-cli "$@"\n',
    )
    c = cluster(7560, REDIS_CLI=cli)
    result, took = c.run("start")
    assert result.returncode == 0 and took < BOUND, (took, result.stderr)
    assert marker.exists() and "trying once more" in result.stderr
    assert "cluster ok: redis://127.0.0.1:7560" in result.stdout
    status, _ = c.run("status")
    assert status.returncode == 0 and "cluster_state:ok" in status.stdout


def test_a_join_that_always_hangs_fails_with_a_diagnosis(cluster, tmp_path):
    cli = wrapper(
        tmp_path,
        "redis-cli",
        'if [[ " $* " == *" --cluster create "* ]]; then exec sleep 1000; fi\nexec redis-cli "$@"\n',
    )
    c = cluster(7570, REDIS_CLI=cli, ATEDASH_CLUSTER_CREATE_TIMEOUT="2")  # no join ever runs
    result, took = c.run("start")
    assert result.returncode != 0 and took < BOUND, (took, result.stderr)
    assert "the cluster did not form after a retry on reset nodes" in result.stderr
    assert "took more than 2 s" in result.stderr
    assert_diagnosed(result, *range(7570, 7576))
    assert "cluster_state:fail" in result.stderr and "last lines of" in result.stderr


def test_a_node_that_stops_answering(cluster, tmp_path):
    """redis-server starts, then the node on 7584 is frozen (SIGSTOP): it never answers PING."""
    server = wrapper(
        tmp_path,
        "redis-server",
        'redis-server "$@" || exit\n'
        'if [ "$2" = 7584 ]; then\n'
        '  for _ in $(seq 1 50); do [ -s "${10}" ] && break; sleep 0.1; done\n'  # ${10}: --pidfile's value
        '  kill -STOP "$(cat "${10}")"\n'
        "fi\n",
    )
    # The live nodes answer at once; only the frozen one waits these out.
    short = {"WAIT_TIMEOUT": "3", "CLI_TIMEOUT": "1", "STOP_TIMEOUT": "1"}
    c = cluster(7580, REDIS_SERVER=server, **{f"ATEDASH_CLUSTER_{k}": v for k, v in short.items()})
    result, took = c.run("start")
    assert result.returncode != 0 and took < BOUND, (took, result.stderr)
    assert "the node on port 7584 did not answer PING within 3 s" in result.stderr
    assert_diagnosed(result, 7584)
    assert "no answer to CLUSTER INFO within 1 s" in result.stderr
    # stop ends even the frozen node.
    stop, took = c.run("stop")
    assert stop.returncode == 0 and took < 30 and not c.dir.exists(), stop.stderr
    assert "did not stop within 1 s: killing it" in stop.stderr
    assert port_free(7584)
