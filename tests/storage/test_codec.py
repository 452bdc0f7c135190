"""The codec alone: Go's JSON form, the fast decoder against json_format, binary, unknown fields."""

from __future__ import annotations

import json
import re

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from storage.ateapi_pb2 import Actor, Worker
from storage.codec import ACTOR_CODEC, BINARY, JSON, WORKER_CODEC, RecordDecodeError, preview
from storage.server_readable import go_decode
from tests.hypothesis_profiles import examples

GO_ACTOR = (
    b'{"actorId":"a1","version":"3","actorTemplateNamespace":"ns","actorTemplateName":"t","status":"STATUS_RUNNING"}'
)


def exact(codec, raw):
    """The reference: protobuf's own JSON parser, unknown keys ignored."""
    try:
        return json_format.Parse(raw, codec.message_class(), ignore_unknown_fields=True)
    except Exception as e:  # noqa: BLE001 - any failure means "rejected"
        return type(e)


def fast_or_exact(codec, raw):
    try:
        return codec.decode_json(raw)
    except RecordDecodeError as e:
        return type(e)


def test_go_written_record_decodes_and_reencodes_byte_for_byte():
    actor, encoding = ACTOR_CODEC.decode(GO_ACTOR)
    assert encoding == JSON
    assert actor == Actor(
        actor_id="a1", version=3, actor_template_namespace="ns", actor_template_name="t", status=Actor.STATUS_RUNNING
    )
    assert ACTOR_CODEC.encode_json(actor) == GO_ACTOR


def test_encoding_is_go_protojson_field_order_defaults_omitted():
    worker = Worker(worker_namespace="n", worker_pool="p", worker_pod="w", ip="10.0.0.1", version=12)
    assert WORKER_CODEC.encode_json(worker) == (
        b'{"workerNamespace":"n","workerPool":"p","workerPod":"w","ip":"10.0.0.1","version":"12"}'
    )
    assert ACTOR_CODEC.encode_json(Actor()) == b"{}"
    # Non-ASCII stays UTF-8, as Go writes it; control characters are escaped.
    assert ACTOR_CODEC.encode_json(Actor(actor_id="é\n")) == '{"actorId":"é\\n"}'.encode()


def test_unknown_enum_number_is_written_as_a_number():
    assert ACTOR_CODEC.encode_json(Actor(status=9)) == b'{"status":9}'


@pytest.mark.parametrize(
    "raw",
    [
        b'{"actor_id":"a1","version":3,"status":2}',  # proto names, int64 as number, enum by number
        b' \n{ "actorId" : "a1" ,\t"version" : "3", "status" : "STATUS_RUNNING" }\r\n',
        b'{"actorId":"a1","version":"3","status":"STATUS_RUNNING","ateomPodIp":null}',
        b'{"actorId":"a1","version":3.0,"status":"2"}',
        b'{"actorId":"a1","version":"3","status":"STATUS_RUNNING","futureField":{"x":[1,2]}}',
    ],
)
def test_every_valid_protobuf_json_spelling_is_read(raw):
    actor, encoding = ACTOR_CODEC.decode(raw)
    assert encoding == JSON
    assert (actor.actor_id, actor.version, actor.status) == ("a1", 3, Actor.STATUS_RUNNING)
    assert actor == exact(ACTOR_CODEC, raw)


def test_binary_is_detected_and_decoded():
    actor = Actor(actor_id="a1", version=3, status=Actor.STATUS_SUSPENDED)
    decoded, encoding = ACTOR_CODEC.decode(actor.SerializeToString())
    assert (decoded, encoding) == (actor, BINARY)


def test_binary_whose_first_field_is_123_bytes_long_is_not_mistaken_for_json():
    actor = Actor(actor_id="x" * 123, version=1)  # serializes as b"\n{" + ...
    raw = actor.SerializeToString()
    assert raw[:2] == b"\n{"
    assert ACTOR_CODEC.decode(raw) == (actor, BINARY)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"actorId":"a1"',  # truncated JSON
        b'{"actorId":"a1","actorId":"a2"}',  # duplicate key
        b'{"actorId":5}',
        b'{"version":"3x"}',
        b'{"version":true}',
        b'{"status":"STATUS_NOPE","actorId":1}',
        b"[1,2]",
        b"\xff\xfe\xfd",  # not JSON, not protobuf
        b'{"actorId":"\\ud800"}',  # unpaired surrogate
        b'{"version":"99999999999999999999"}',  # out of int64 range
    ],
)
def test_invalid_values_are_rejected(raw):
    with pytest.raises(RecordDecodeError):
        ACTOR_CODEC.decode(raw)


@pytest.mark.parametrize(
    "raw, version, status",
    [
        # Issue 22: as the Go server reads them (its store lists them so), never through a float.
        (b'{"version":1234567890123456789e0}', 1234567890123456789, 0),
        (b'{"version":9.223372036854775807e18}', 2**63 - 1, 0),
        (b'{"version":"9223372036854775807e0"}', 2**63 - 1, 0),
        (b'{"version":1e}', 1, 0),
        (b'{"status":2e}', 0, 2),
        (b'{"version":-0.0e5,"status":4.0}', 0, 4),
        (b'{"version":12345678901234567890e-1}', 1234567890123456789, 0),
        # Lenient readings of what Go refuses (an enum given as true) keep numbers exact too.
        (b'{"status":true,"version":1234567890123456789e0}', 1234567890123456789, 1),
        (b'{"status":true,"version":"19563527532066358E0"}', 19563527532066358, 1),
        (b'{"foo":1.5,"version":"7","bar":null}', 7, 0),  # unknown scalars: the fast path
    ],
)
def test_numbers_are_read_as_the_go_server_reads_them(raw, version, status):
    actor = ACTOR_CODEC.decode(raw)[0]
    assert (actor.version, actor.status) == (version, status)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"version":2.0000000000000001}',  # not an integer for Go (a float would make it 2)
        b'{"status":true,"version":2.0000000000000001}',
        b'{"status":true,"version":"+1e5"}',  # Go reads no integer there; float() would
        b'{"version":9.223372036854775808e18}',
        b'{"version":1e19}',
        b'{"status":2147483648e0}',
    ],
)
def test_numbers_go_reads_no_integer_in_are_refused(raw):
    with pytest.raises(RecordDecodeError):
        ACTOR_CODEC.decode(raw)


def test_unknown_json_keys_are_kept_verbatim_on_update():
    stored = b'{"actorId":"a1","version":"3","futureFloat":1.50,"future":{"b": [1, 2.0e3]},"status":"STATUS_RUNNING"}'
    updated = Actor(actor_id="a1", version=4, status=Actor.STATUS_SUSPENDED)  # a fresh message
    out = ACTOR_CODEC.encode_update(updated, stored, JSON)
    assert out == (
        b'{"actorId":"a1","version":"4","status":"STATUS_SUSPENDED","futureFloat":1.50,"future":{"b": [1, 2.0e3]}}'
    )


def test_unknown_members_python_cannot_read_are_kept_verbatim_on_update():
    stored = b'{"actorId":"a1","future":1e,"version":2e ,"more":[1E]}'  # Go's tokenizer takes `1e}`
    assert ACTOR_CODEC.decode(stored)[0].version == 2
    out = ACTOR_CODEC.encode_update(Actor(actor_id="a1", version=3), stored, JSON)
    assert out == b'{"actorId":"a1","version":"3","future":1e,"more":[1E]}'


def test_unknown_binary_fields_are_kept_on_update_also_for_a_fresh_message():
    unknown = b"\x98\x06\x07" + b"\xa2\x06\x03abc"  # field 99 varint 7, field 100 bytes "abc"
    stored = Actor(actor_id="a1", version=3).SerializeToString() + unknown
    fresh = Actor(actor_id="a1", version=4, status=Actor.STATUS_RUNNING)
    out = ACTOR_CODEC.encode_update(fresh, stored, BINARY)
    assert out == fresh.SerializeToString() + unknown
    assert ACTOR_CODEC.decode(out)[0] == Actor.FromString(out)


def test_caller_unknown_fields_do_not_replace_the_stored_ones():
    stored = Actor(actor_id="a1", version=3).SerializeToString() + b"\x98\x06\x07"
    caller = Actor.FromString(Actor(actor_id="a1", version=4).SerializeToString() + b"\x98\x06\x08")
    out = ACTOR_CODEC.encode_update(caller, stored, BINARY)
    assert out.endswith(b"\x98\x06\x07") and b"\x98\x06\x08" not in out


def test_preview_is_printable_and_short():
    text = preview(bytes(range(256)) * 4)
    assert len(text) <= 200 and text.isprintable()


# ------------------------------------------------------------------ property tests


def _keys(message_class):
    return [k for f in message_class.DESCRIPTOR.fields for k in (f.name, f.json_name)]


_ENUM_NAMES = list(Actor.Status.keys())

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(_ENUM_NAMES + ["STATUS_NOPE", "", "2", "-1", "007", "3.0", "1e3", " 5", "0x10", "１２"]),
    st.integers(min_value=-2, max_value=6).map(str),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


def _well_typed_value(message_class, key):
    descriptor = message_class.DESCRIPTOR
    field = descriptor.fields_by_name.get(key) or next((f for f in descriptor.fields if f.json_name == key), None)
    if field is None:
        return json_values
    if field.name == "version":
        int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
        return st.one_of(int64, int64.map(str))
    if field.name == "status":
        return st.one_of(st.sampled_from(_ENUM_NAMES), st.integers(min_value=0, max_value=4))
    return st.text()


@st.composite
def json_records(draw, message_class=Actor):
    """Objects as JSON text: half well formed (the fast path's domain), half odd (the fallback's)."""
    fields = list(message_class.DESCRIPTOR.fields)
    if draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(fields), unique_by=lambda f: f.number))
        members = [
            (draw(st.sampled_from([f.name, f.json_name])), draw(_well_typed_value(message_class, f.name)))
            for f in chosen
        ]
    else:
        member_keys = st.one_of(
            st.sampled_from(_keys(message_class)),
            st.sampled_from(["actorID", "Version", "extra", "[ext]", "status ", "ip "]),
            st.text(max_size=6),
        )
        members = []
        for _ in range(draw(st.integers(min_value=0, max_value=8))):
            key = draw(member_keys)
            odd_value = draw(st.booleans())
            members.append((key, draw(json_values if odd_value else _well_typed_value(message_class, key))))
    sep = draw(st.sampled_from([(",", ":"), (", ", ": "), (",\n  ", " : ")]))
    ascii_only = draw(st.booleans())
    body = sep[0].join(json.dumps(k) + sep[1] + json.dumps(v, ensure_ascii=ascii_only) for k, v in members)
    return ("{" + body + "}").encode("utf-8", "surrogatepass")


def go_reading(codec, raw):
    """The Go server's reading of ``raw`` with unknown keys skipped (None when it refuses it)."""
    error, values = go_decode(codec.message_class.DESCRIPTOR.name.lower(), raw, discard_unknown=True)
    return None if error else codec.message_class(**values)


def assert_same_as_json_format(codec, raw):
    """The fast path gives what the exact path gives; that is Go's reading where Go reads the
    value, else json_format's (lenient) reading, which must not have gone through a float."""
    ours = fast_or_exact(codec, raw)
    try:
        slow = codec.decode_json_exact(raw)
    except RecordDecodeError as e:
        slow = type(e)
    assert ours == slow, f"fast path {ours} != exact path {slow} for {raw!r}"
    go = go_reading(codec, raw)
    reference = exact(codec, raw)
    if go is not None:
        assert ours == go, f"Go reads {raw!r} as {go}, atedash as {ours}"
    elif isinstance(reference, type):
        assert ours is RecordDecodeError, f"json_format rejects {raw!r} ({reference}), fast path gave {ours}"
    elif _FLOAT_MEMBER.search(raw) is None:
        assert ours == reference
        assert ours.SerializeToString(deterministic=True) == reference.SerializeToString(deterministic=True)


_FLOAT_MEMBER = re.compile(rb"[0-9][.eE]")


@settings(max_examples=examples(1500, dev=100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_records())
@example(b'{"actorId":"a","actor_id":"b"}')
@example(b'{"version":"-0"}')
@example(b'{"status":null,"status":"STATUS_RUNNING"}')
@example(b'{"actorId":"\\udc80"}')
@example(b'{"version":9223372036854775808}')
@example(b'{"version":"9223372036854775807","status":4}')
def test_fast_decoder_gives_exactly_what_json_format_gives(raw):
    assert_same_as_json_format(ACTOR_CODEC, raw)


@settings(max_examples=examples(500, dev=50), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_records(Worker))
def test_fast_worker_decoder_gives_exactly_what_json_format_gives(raw):
    assert_same_as_json_format(WORKER_CODEC, raw)


actors = st.builds(
    Actor,
    actor_id=st.text(min_size=1),
    version=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    actor_template_namespace=st.text(),
    actor_template_name=st.text(),
    status=st.integers(min_value=0, max_value=6),
    ateom_pod_namespace=st.text(),
    ateom_pod_name=st.text(),
    ateom_pod_ip=st.text(),
    last_snapshot=st.text(),
    in_progress_snapshot=st.text(),
)


@settings(max_examples=examples(500, dev=50), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actors)
def test_encode_then_decode_round_trips_and_matches_protobuf_json(actor):
    raw = ACTOR_CODEC.encode_json(actor)
    assert ACTOR_CODEC.decode(raw) == (actor, JSON)
    # What we write is what protobuf's own printer writes (field order and spelling).
    assert json.loads(raw) == json_format.MessageToDict(actor)
    assert list(json.loads(raw)) == list(json_format.MessageToDict(actor))
