"""A save is confirmed to the operator only once a replica has it (ATEDASH_REPLICA_ACK_SECONDS).

Redis replicates asynchronously: without this, a primary that dies right after acknowledging an edit
could take the edit with it, although the operator was told "saved". With it, the replica that would
be promoted already has every confirmed edit; when no replica answers in time, the save stands and a
warning is logged.
"""

import logging
import os
import signal
import time

import pytest

from atedash.core.app import current_app
from storage.keys import key_slot
from tests.cluster_faults import cluster_view, node_client, poll

pytestmark = pytest.mark.slow


def replica_port_of(local_cluster, key):
    primary = local_cluster.port_serving(key_slot(key))
    primary_id = local_cluster.node_id(primary)
    for address, node in cluster_view(local_cluster.witness()).items():
        if node.get("master_id") == primary_id and "slave" in node["flags"]:
            return int(address.rsplit(":", 1)[1])
    raise AssertionError(f"no replica of 127.0.0.1:{primary}")


def read_on_replica(port, key):
    pipe = node_client(port).pipeline(transaction=False)
    pipe.execute_command("READONLY")
    pipe.get(key)
    return pipe.execute()[1]


def dashboard_knows_the_replica(port, key):
    """The dashboard's own cluster client lists `port` among the key's nodes. A replica restarted by an
    earlier test can stay flagged failed in some node's view for a while, and CLUSTER SLOTS leaves
    failed nodes out: a client that asked that node would not wait for any replica at all."""
    client = current_app().store.persistence().client

    def listed():
        client.nodes_manager.initialize()
        nodes = client.nodes_manager.slots_cache.get(key_slot(key)) or []
        return any(node.port == port for node in nodes[1:])

    poll(listed, f"the dashboard's client to list the replica 127.0.0.1:{port} of {key}")


def save(editor, store, actor_id, snapshot):
    version = store.get_actor(actor_id).version
    response = editor.post(
        f"/actors/{actor_id}/edit/",
        {
            "version": version,
            "actor_id": actor_id,
            "actor_template_namespace": "team-a",
            "actor_template_name": "web",
            "status": "SUSPENDED",
            "last_snapshot": snapshot,
        },
    )
    assert response.status_code == 302, response.content[:500]
    return version + 1


def test_every_confirmed_save_is_already_on_the_replica(local_cluster, editor, make_actor, store):
    make_actor("acked")
    replica = replica_port_of(local_cluster, "actor:acked")
    for n in range(30):
        version = save(editor, store, "acked", f"snap-{n}")
        # Read on the replica right after the confirmation: it has this very version.
        raw = read_on_replica(replica, "actor:acked")
        assert f'"version":"{version}"'.encode() in raw.replace(b" ", b""), (n, raw)
        assert f"snap-{n}".encode() in raw


class Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_a_dead_replica_does_not_slow_saves(local_cluster, editor, make_actor, store):
    make_actor("orphan")
    version = save(editor, store, "orphan", "warm-up")  # the dashboard's client knows the replica
    replica = replica_port_of(local_cluster, "actor:orphan")
    local_cluster.kill(replica)
    started = time.monotonic()
    for n in range(5):
        version = save(editor, store, "orphan", f"alone-{n}")
    assert time.monotonic() - started < 3  # refused connections: no waiting for a replica that is gone
    assert store.get_actor("orphan").version == version


def test_a_frozen_replica_delays_the_confirmation_but_not_the_save(local_cluster, settings, editor, make_actor, store):

    settings.ATEDASH_REPLICA_ACK_SECONDS = 0.5
    make_actor("lonely")
    replica = replica_port_of(local_cluster, "actor:lonely")
    dashboard_knows_the_replica(replica, "actor:lonely")
    pid = local_cluster.pid(replica)
    os.kill(pid, signal.SIGSTOP)
    try:
        warnings = Warnings()
        logging.getLogger("storage.replication").addHandler(warnings)
        started = time.monotonic()
        version = save(editor, store, "lonely", "while-the-replica-sleeps")
        waited = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
        logging.getLogger("storage.replication").removeHandler(warnings)
    # One short probe of the frozen replica, not the client's socket timeouts and retries. No lower
    # bound: how soon a probe of a stopped process fails is the kernel's business (seen: 0.016 s).
    assert waited < 3, waited
    assert store.get_actor("lonely").version == version
    assert any("no replica" in m and "actor:lonely" in m for m in warnings.messages), warnings.messages
    # Once awake, the replica catches up.
    poll(lambda: b"while-the-replica-sleeps" in (read_on_replica(replica, "actor:lonely") or b""), "the replica", 30)
