"""Fault injection on the local Redis Cluster that `scripts/cluster start` runs (shared by test suites).

The cluster's files live in `<cluster dir>/<port>/` (redis.pid, nodes.conf, redis.log), as
scripts/cluster writes them. Everything here waits by polling the cluster's own state with a
deadline, never by sleeping a guessed amount.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

DEADLINE_S = 60
NODES = 6


def poll(condition, what: str, timeout: float = DEADLINE_S, interval: float = 0.02):
    """Returns condition()'s first truthy value, re-checking every few milliseconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = condition()
        except (redis.exceptions.RedisError, OSError):
            value = None
        if value:
            return value
        time.sleep(interval)  # polling interval, not synchronisation
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def node_client(port: int) -> redis.Redis:
    # No retries: a probe must see the node as it is (and SHUTDOWN must not reconnect to retry).
    return redis.Redis(
        host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )


def _ask(port: int, *command):
    client = node_client(port)
    try:
        return client.execute_command(*command)
    finally:
        client.close()


def cluster_view(port: int) -> dict:
    """CLUSTER NODES as one node sees it: {"host:port": {node_id, flags, slots, connected, ...}}."""
    return _ask(port, "CLUSTER NODES")


def cluster_info(port: int) -> dict:
    return _ask(port, "CLUSTER INFO")


def redis_server() -> str:
    return os.environ.get("REDIS_SERVER", "redis-server")


def redis_cli() -> str:
    return os.environ.get("REDIS_CLI", "redis-cli")


def start_node_like_the_script(cluster_dir: Path, port: int) -> None:
    """The command of start_node in scripts/cluster, so the node rejoins with its nodes.conf."""
    nd = Path(cluster_dir) / str(port)
    subprocess.run(
        [
            redis_server(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "yes",
            "--dir",
            str(nd),
            "--pidfile",
            str(nd / "redis.pid"),
            "--logfile",
            str(nd / "redis.log"),
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(nd / "nodes.conf"),
            "--cluster-node-timeout",
            os.environ.get("ATEDASH_CLUSTER_NODE_TIMEOUT", "2000"),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def cluster_whole(port: int, nodes: int = NODES) -> bool:
    """All slots served, state ok, every node connected and not failing, every replica synced."""
    info = cluster_info(port)
    if info.get("cluster_state") != "ok" or int(info.get("cluster_slots_ok", 0)) != 16384:
        return False
    view = cluster_view(port)
    if len(view) != nodes or any("fail" in n["flags"] or not n["connected"] for n in view.values()):
        return False
    replicas = 0
    for address, node in view.items():
        if "slave" in node["flags"]:
            replicas += 1
            _, p = address.split(":")
            if node_client(int(p)).info("replication").get("master_link_status") != "up":
                return False
    return replicas == nodes // 2


class LocalCluster:
    """The test cluster's processes: kill, freeze, stop and restart nodes, move slots."""

    def __init__(self, base_port: int, cluster_dir: Path, nodes: int = NODES):
        self.base_port = base_port
        self.dir = Path(cluster_dir)
        self.ports = [base_port + i for i in range(nodes)]

    # ---------------------------------------------------------------- looking

    def pid(self, port: int) -> int:
        """The pid of our redis-server on `port` (from its pid file, checked: a stale pid file's
        number may belong to another process by now, pids wrap around)."""
        pid = int((self.dir / str(port) / "redis.pid").read_text())
        if not _is_redis_on(pid, port):
            raise ProcessLookupError(f"no redis-server of ours on port {port} (pid file says {pid})")
        return pid

    def alive(self, port: int) -> bool:
        try:
            return _pid_alive(self.pid(port))
        except (OSError, ValueError):
            return False

    def witness(self, avoid: tuple[int, ...] = ()) -> int:
        """A port of a live node that is not in `avoid`."""
        for port in self.ports:
            if port not in avoid and self.alive(port):
                return port
        raise AssertionError("no live cluster node")

    def whole(self) -> bool:
        """cluster_whole, and every node agrees that the cluster state is ok (after a restart the
        nodes' views converge one by one)."""
        return cluster_whole(self.witness()) and all(
            cluster_info(port).get("cluster_state") == "ok" for port in self.ports
        )

    def wait_whole(self, timeout: float = DEADLINE_S) -> None:
        poll(self.whole, "the cluster to be whole (all slots, state ok, 3 synced replicas)", timeout)

    def primaries(self) -> dict[str, dict]:
        """{"host:port": node} of the primaries that serve slots, as a live node sees them."""
        view = cluster_view(self.witness())
        return {a: n for a, n in view.items() if "master" in n["flags"] and "fail" not in n["flags"] and n["slots"]}

    def port_serving(self, slot: int) -> int:
        for address, node in self.primaries().items():
            if any(int(r[0]) <= slot <= int(r[-1]) for r in node["slots"]):
                return int(address.rsplit(":", 1)[1])
        raise AssertionError(f"no primary serves slot {slot}")

    def view_of(self, port: int) -> dict:
        """The node on `port` as another live node sees it (node_id, flags, slots, connected...)."""
        return cluster_view(self.witness(avoid=(port,)))[f"127.0.0.1:{port}"]

    def node_id(self, port: int) -> str:
        return _ask(port, "CLUSTER MYID").decode()

    def served_by_other_than(self, slot: int, node_id: str, witness: int) -> bool:
        """True once `witness` sees the cluster ok with `slot` served by a node other than `node_id`."""
        if cluster_info(witness)["cluster_state"] != "ok":
            return False
        for node in cluster_view(witness).values():
            serves = any(int(r[0]) <= slot <= int(r[-1]) for r in node["slots"])
            if serves and node["node_id"] != node_id and "fail" not in node["flags"]:
                return True
        return False

    def make_primary(self, port: int) -> None:
        """Promotes the node on `port` with a graceful CLUSTER FAILOVER when it is a replica."""
        if "master" in self.view_of(port)["flags"]:
            return
        _ask(port, "CLUSTER", "FAILOVER")
        poll(lambda: "master" in self.view_of(port)["flags"] and self.whole(), f"127.0.0.1:{port} to be a primary")

    # ---------------------------------------------------------------- faults

    def sync_replica(self, port: int, timeout_ms: int = 5000) -> None:
        """Waits until the primary on `port` has its writes on a replica (replication is asynchronous)."""
        assert _ask(port, "WAIT", 1, timeout_ms) >= 1, f"no replica of 127.0.0.1:{port} caught up"

    def kill(self, port: int) -> None:
        """SIGKILL the node: no shutdown, no goodbye to the others."""
        pid = self.pid(port)
        os.kill(pid, signal.SIGKILL)
        poll(lambda: not (_pid_alive(pid) and _is_redis_on(pid, port)), f"pid {pid} to die")

    def start(self, port: int) -> None:
        start_node_like_the_script(self.dir, port)
        poll(lambda: _ask(port, "PING"), f"127.0.0.1:{port} to answer")

    def freeze_all(self) -> None:
        """SIGSTOP every node: the store hangs (connections open, nothing answers)."""
        for port in self.ports:
            os.kill(self.pid(port), signal.SIGSTOP)

    def thaw_all(self) -> None:
        for port in self.ports:
            try:
                os.kill(self.pid(port), signal.SIGCONT)
            except (OSError, ValueError):
                pass  # not running (killed, or stopped by a test): nothing to thaw

    def stop_all(self) -> None:
        """SHUTDOWN SAVE every node (the data is kept in dump.rdb, the topology in nodes.conf)."""
        pids = {port: self.pid(port) for port in self.ports}
        for port in self.ports:
            try:
                _ask(port, "SHUTDOWN", "SAVE", "NOW")
            except redis.exceptions.ConnectionError:
                pass  # the server closes the connection as it exits
        for port, pid in pids.items():
            poll(
                lambda pid=pid, port=port: not (_pid_alive(pid) and _is_redis_on(pid, port)),
                f"127.0.0.1:{port} to exit",
            )

    def start_all(self) -> None:
        for port in self.ports:
            start_node_like_the_script(self.dir, port)
        for port in self.ports:
            poll(lambda port=port: _ask(port, "PING"), f"127.0.0.1:{port} to answer")

    def move_slots(self, source_port: int, target_port: int, slots: int, timeout: float = 120) -> subprocess.Popen:
        """Starts `redis-cli --cluster reshard` moving `slots` slots (with their keys) between primaries."""
        return subprocess.Popen(
            [
                redis_cli(),
                "--cluster",
                "reshard",
                f"127.0.0.1:{self.base_port}",
                "--cluster-from",
                self.node_id(source_port),
                "--cluster-to",
                self.node_id(target_port),
                "--cluster-slots",
                str(slots),
                "--cluster-yes",
                "--cluster-pipeline",
                "10",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def rebalance(self) -> None:
        """Spreads the slots evenly again (after a reshard), waiting until the cluster is whole."""
        result = subprocess.run(
            [redis_cli(), "--cluster", "rebalance", f"127.0.0.1:{self.base_port}", "--cluster-threshold", "1"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        self.wait_whole()


def _is_redis_on(pid: int, port: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = fh.read()
    except OSError:
        return False
    # A daemonized redis-server shows "redis-server 127.0.0.1:<port>" as its command line.
    return b"redis-server" in cmdline and f":{port}".encode() in cmdline


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A daemonized redis-server is not our child, so no zombie lingers; check the state anyway.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
