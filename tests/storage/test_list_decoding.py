"""A list page's records: the canonical form's one-parse path answers as decoding and judging do."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from storage.records import ACTORS, WORKERS
from storage.scanning import ACTOR_SCAN, WORKER_SCAN, _load_records
from storage.server_readable import ACTOR_SCHEMA, WORKER_SCHEMA
from tests.hypothesis_profiles import examples

# The same loaders without the one-parse path: decode_stored, then the server's judgment.
PLAIN = {"actor": _load_records(ACTORS, ACTOR_SCHEMA, False), "worker": _load_records(WORKERS, WORKER_SCHEMA, False)}
FUSED = {"actor": ACTOR_SCAN, "worker": WORKER_SCAN}

ACTOR_NAMES = ["actorId", "actor_id", "version", "actorTemplateNamespace", "actorTemplateName", "status", "ateomPodIp"]
WORKER_NAMES = ["workerNamespace", "workerPool", "workerPod", "ip", "actorId", "version", "worker_pod"]
TEXT = st.text(alphabet=st.sampled_from('ab:é"\\\n\x00 1'), max_size=6)
VALUE = st.one_of(
    TEXT, st.integers(-(2**64), 2**64), st.sampled_from(["STATUS_RUNNING", "STATUS_SUSPENDED", "1", "01", None, 2.5])
)


def _shape(result):
    """What a page makes of a loaded item: the record (as bytes), corrupt, or unreadable and why."""
    if result is None:
        return None
    name = type(result).__name__
    if name == "CorruptEntry":
        return ("corrupt", result.key, result.error)
    if name == "_Unreadable":
        return ("unreadable", result.key, result.record.SerializeToString(), result.why)
    return ("record", result.SerializeToString())


def _both(store, kind: str, key: bytes, raw: bytes):
    store.client.set(key, raw)
    node = store.client.get_redis_connection(store.client.get_node_from_key(key))
    return [_shape(load(node, [key])[0]) for load in (PLAIN[kind], FUSED[kind])]


@settings(
    max_examples=examples(400, dev=60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(["actor", "worker"]),
    members=st.lists(st.tuples(st.integers(0, 6), VALUE), max_size=6),
    spaced=st.booleans(),
    key_id=st.one_of(st.none(), TEXT),
)
@example(kind="actor", members=[(0, "a:b"), (2, "3")], spaced=False, key_id=None)
@example(kind="actor", members=[(0, "a\\u0062"), (5, "STATUS_RUNNING")], spaced=False, key_id=None)
@example(kind="worker", members=[(0, "n"), (1, "p"), (2, "w:x")], spaced=False, key_id=None)
def test_the_one_parse_path_gives_what_decoding_and_judging_give(store, kind, members, spaced, key_id):
    names = ACTOR_NAMES if kind == "actor" else WORKER_NAMES
    pairs = [(names[i], v) for i, v in members]
    raw = json.dumps(dict(pairs), ensure_ascii=False, separators=(", ", ": ") if spaced else (",", ":")).encode()
    if kind == "actor":
        ident = next((v for k, v in pairs if k in ("actorId", "actor_id") and isinstance(v, str)), "x")
        key = "actor:" + (ident if key_id is None else key_id)
    else:
        got = {k: v for k, v in pairs if isinstance(v, str)}
        parts = [got.get("workerNamespace", "n"), got.get("workerPool", "p"), got.get("workerPod", "w")]
        key = "worker:" + ":".join(parts if key_id is None else [*parts[:2], key_id])
    plain, fused = _both(store, kind, key.encode("utf-8", "surrogateescape"), raw)
    assert fused == plain


def test_hand_picked_values_answer_alike(store):
    cases = [
        ("actor", b"actor:a1", b'{"actorId":"a1","version":"3","status":"STATUS_RUNNING"}'),
        ("actor", b"actor:a1", b'{"actorId":"a2","version":"3"}'),  # names another key
        ("actor", b"actor:a:1", b'{"actorId":"a:1"}'),  # a colon: the server's key format
        ("actor", b"actor:a1", b'{"actorId":"a1","unknown":1}'),  # unknown to the server
        ("actor", b"actor:a1", b'{"actorId":"a1","actorId":"a1"}'),  # given twice
        ("actor", b"actor:a1", b'{"actorId":"a\\u0031"}'),  # an escape
        ("actor", b"actor:a1", b' {"actorId":"a1"}'),
        ("actor", b"actor:a1", b'{"actorId":"a1","version":1e0}'),
        ("actor", b"actor:\xff", b'{"actorId":"\xff"}'),
        ("worker", b"worker:n:p:w", b'{"workerNamespace":"n","workerPool":"p","workerPod":"w","version":"2"}'),
        ("worker", b"worker:n:p:w", b'{"workerPool":"p","workerNamespace":"n","workerPod":"w"}'),
    ]
    for kind, key, raw in cases:
        plain, fused = _both(store, kind, key, raw)
        assert fused == plain, (key, raw)
    # The first and the tenth take the one-parse path; the ones naming another key do not.
    assert ACTOR_SCHEMA.canonical_readable(cases[0][1], cases[0][2].decode())
    assert WORKER_SCHEMA.canonical_readable(cases[9][1], cases[9][2].decode())
    assert not ACTOR_SCHEMA.canonical_readable(cases[1][1], cases[1][2].decode())
    assert not ACTOR_SCHEMA.canonical_readable(cases[2][1], cases[2][2].decode())
