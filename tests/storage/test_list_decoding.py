"""A list page's records: the canonical form's one-parse path answers as decoding and judging do."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from storage.ateapi_pb2 import Actor
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


CODECS = {"actor": (ACTOR_SCHEMA, ACTORS.codec), "worker": (WORKER_SCHEMA, WORKERS.codec)}
# Values of the field's type as the server writes them, and near misses (another type, another form).
PLAIN_TEXT = st.text(alphabet=st.sampled_from('az09-._/é"\\\n'), min_size=1, max_size=8)
STRING = {True: PLAIN_TEXT, False: st.one_of(TEXT, st.integers(0, 9), st.none())}
INT64 = {
    True: st.one_of(st.integers(-(10**17), 10**17), st.integers(-(10**17), 10**17).map(str)),
    False: st.sampled_from(["01", "-0", "+1", 10**19, "1e3", 2.5, " 1"]),
}
SEPARATORS = st.sampled_from([(",", ":"), (", ", ":"), (", ", ": "), (",\n", ":")])
IDENTITY = st.text(alphabet=st.sampled_from("az09-._é"), min_size=1, max_size=8)


@st.composite
def near_canonical(draw, kind: str) -> tuple[bytes, str]:
    """(key, text): members mostly in field-number order (as the server and atedash write them),
    under either name, with values of the field's type and near misses of it."""
    schema, _ = CODECS[kind]
    members = []
    for i, field in enumerate(schema.fields):
        if not draw(st.integers(0, 5 if i < len(schema.identity) else 1)):
            continue
        name = draw(st.sampled_from([field.json_name, field.name]))
        typed = draw(st.integers(0, 9)) > 0
        if field.kind == "string":
            value = draw(IDENTITY if typed and i < len(schema.identity) else STRING[typed])
        elif field.kind == "int64":
            value = draw(INT64[typed])
        else:
            names = st.sampled_from(sorted(field.enum_names))
            value = draw(st.one_of(names, st.integers(0, 4)) if typed else st.sampled_from([-1, 99, "NOPE", "2"]))
        members.append((name, value))
    if draw(st.integers(0, 9)) == 0:
        members = draw(st.permutations(members))
    sep, colon = draw(SEPARATORS) if draw(st.integers(0, 9)) == 0 else (",", ":")
    ascii_only = draw(st.booleans())
    text = "{" + sep.join(json.dumps(k) + colon + json.dumps(v, ensure_ascii=ascii_only) for k, v in members) + "}"
    values = {k: v for k, v in members}
    ident = [str(values.get(f.json_name, values.get(f.name, "x"))) for f in schema.fields[: len(schema.identity)]]
    key_id = draw(st.one_of(st.none(), st.none(), TEXT))
    if key_id is not None:
        ident[-1] = key_id
    return (schema.prefix.decode() + ":".join(ident)).encode("utf-8", "surrogateescape"), text


@settings(max_examples=examples(1500, dev=150), deadline=None)
@given(data=st.data(), kind=st.sampled_from(["actor", "worker"]))
def test_the_canonical_values_are_what_the_codec_reads_and_only_where_the_server_reads(data, kind):
    """Where canonical_values gives the fields, canonical_readable says the server reads the value
    and the codec's fast path reads the same message; elsewhere it gives None."""
    schema, codec = CODECS[kind]
    key, text = data.draw(near_canonical(kind))
    fields = schema.canonical_values(key, text)
    if fields is None:
        return
    assert schema.canonical_readable(key, text), (key, text)
    fast = codec.decode_json_fast(text)
    try:
        ours = codec.message_class(**fields)
    except Exception:  # noqa: BLE001 - then the fast path refuses it too
        ours = None
    assert ours == fast, (text, fields)
    if ours is not None:
        assert ours.SerializeToString(deterministic=True) == fast.SerializeToString(deterministic=True)


def test_the_canonical_values_take_the_records_a_list_page_meets():
    actor = '{"actorId":"a-1","version":"2","actorTemplateNamespace":"t","status":"STATUS_RUNNING","ateomPodIp":"10.1"}'
    fields = ACTOR_SCHEMA.canonical_values(b"actor:a-1", actor)
    assert fields == {
        "actor_id": "a-1",
        "version": 2,
        "actor_template_namespace": "t",
        "status": 2,
        "ateom_pod_ip": "10.1",
    }
    assert ACTOR_SCHEMA.canonical_values(b"actor:a-2", actor) is None  # names another key
    worker = '{"workerNamespace":"n","workerPool":"p","workerPod":"w","actorId":"a-1","version":"3"}'
    assert WORKER_SCHEMA.canonical_values(b"worker:n:p:w", worker) == {
        "worker_namespace": "n",
        "worker_pool": "p",
        "worker_pod": "w",
        "actor_id": "a-1",
        "version": 3,
    }
    assert WORKER_SCHEMA.canonical_values(b"worker:n:p:w", '{"workerPool":"p","workerPod":"w"}') is None
    assert ACTOR_SCHEMA.canonical_values(b"actor:a", '{"actorId":"a","status":99}') is None  # unknown number
    # What atedash writes (and Go's Marshal, the same form) takes this path, every field set.
    full = Actor(
        actor_id="a-1",
        version=7,
        actor_template_namespace="ns",
        actor_template_name="t",
        status=Actor.STATUS_RUNNING,
        ateom_pod_namespace="ns",
        ateom_pod_name='pod \u00e9"x"',
        ateom_pod_ip="10.0.0.1",
        last_snapshot="gs://s/a-1/6",
        in_progress_snapshot="gs://s/a-1/7",
    )
    text = ACTORS.codec.encode_json(full).decode()
    assert Actor(**ACTOR_SCHEMA.canonical_values(b"actor:a-1", text)) == full
