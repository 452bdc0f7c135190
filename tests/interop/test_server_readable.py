"""storage.server_readable against the Go server's own protojson.Unmarshal (`ateref - check-*`).

The full run (100,000 values per kind) is `python tests/interop/differential.py`; here a smaller
sample of the same generator, plus the classes the issue names, each with Go's verdict spelled out.
"""

from __future__ import annotations

import pytest
from differential import (
    BRACKET_NAMES,
    BRACKETS,
    GO_MESSAGES,
    KINDS,
    NUMBERS,
    UNICODE,
    compare,
    compare_decoded,
    generate,
    generate_issue22,
    go_decoded,
    go_verdicts,
)

from storage.ateapi_pb2 import Actor
from storage.codec import ACTOR_CODEC
from storage.server_readable import GO_REGISTRY, exact_value_error, fast_accepts, go_decode, value_error

SAMPLE = 5000

# (value, does the Go server read it?) for actors: the classes of issue 11, and their neighbours.
ACTOR_CASES = [
    (b'{"actorId":"a","version":"3","status":"STATUS_RUNNING"}', True),
    (b'{"actorId":"a","foo":1}', False),  # unknown key
    (b'{"actorId":"a","foo":null}', False),  # ... whatever its value
    (b'{"actorId":"a","actor_id":"a"}', False),  # one field under both names
    (b'{"actor_id":"a","version":"1"}', True),  # the proto name alone is fine
    (b'{"status":"STATUS_PAUSED"}', False),  # not a name of the enum
    (b'{"status":"2"}', False),  # a number in a string is not a name
    (b'{"status":"status_running"}', False),
    (b'{"status":""}', False),
    (b'{"status":2.5}', False),
    (b'{"status":true}', False),
    (b'{"status":2}', True),  # integer numbers are accepted for enums...
    (b'{"status":99}', True),  # ... even ones the enum does not name (proto3 enums are open)
    (b'{"status":2.0}', True),
    (b'{"status":2147483648}', False),  # but only int32
    (b'{"version":"01"}', False),
    (b'{"version":"+5"}', False),
    (b'{"version":"1_000"}', False),
    (b'{"version":" 5"}', False),
    ('{"version":"\uff15"}'.encode(), False),  # full-width digit
    (b'{"version":1e-400}', False),
    (b'{"version":9.223372036854775807e18}', True),  # Go reads it (an integer, exactly)
    (b'{"version":9.007199254740993e15}', True),
    (b'{"version":"1e5"}', True),
    (b'{"version":1e}', True),  # Go's tokenizer: an exponent without digits before a delimiter
    (b'{"version":"1e"}', False),
    (b'{"version":1e+}', False),
    (b'{"version":"9223372036854775808"}', False),
    (b'{"actorId":null,"actor_id":"a"}', False),  # null counts as given
    (b'{"actorId":null}', True),
    (b'{"actorId":"a","actorId":"a"}', False),  # duplicate key
    (b'{"actorId":"\\ud800"}', False),  # lone surrogate escape
    (b'{"actorId":"\\ud83d\\ude00"}', True),
    (b'{"actorId":"\xff"}', False),  # invalid UTF-8
    (b'{"actorId":"\xed\xa0\x80"}', False),  # an encoded surrogate
    (b'{"actorId":{"nested":1}}', False),
    (b'{"actorId":["a"]}', False),
    (b'{"version":NaN}', False),
    (b'{"actorId":"a"}{}', False),
    (b"\xef\xbb\xbf{}", False),  # BOM
    (b" {} ", True),
    (Actor(actor_id="a", version=1).SerializeToString(), False),  # binary protobuf
    (b"", False),
]


def test_the_issue_classes_as_go_judges_them(ateref_bin):
    values = [v for v, _ in ACTOR_CASES]
    go = go_verdicts(ateref_bin, "actor", values)
    wrong = []
    for (value, readable), go_error in zip(ACTOR_CASES, go):
        ours = value_error("actor", value)
        if (go_error is None) != readable or (ours is None) != readable or ours != go_error:
            wrong.append((value, readable, go_error, ours))
    assert not wrong, "\n".join(f"{v!r}: expected {r}, go {g!r}, ours {o!r}" for v, r, g, o in wrong)


@pytest.mark.parametrize("kind", KINDS)
def test_differential_sample_zero_disagreements(ateref_bin, kind):
    values = generate(kind, SAMPLE, seed=11)
    result = compare(ateref_bin, kind, values)
    counts = result["counts"]
    shown = "\n".join(
        f"{bad}: {value!r}\n  go: {go}\n  py: {ours}" for bad, value, go, ours in result["disagreements"][:10]
    )
    assert counts["disagreements"] == 0, f"{counts['disagreements']} of {SAMPLE} disagree:\n{shown}"
    # The sample means something: both verdicts, every tier, and the fast tiers used.
    assert counts["go_ok"] > SAMPLE // 5 and counts["go_err"] > SAMPLE // 5, counts
    assert counts["fast_canonical"] > SAMPLE // 20 and counts["fast_pairs"] > SAMPLE // 100, counts


@pytest.mark.parametrize("kind", KINDS)
def test_reasons_are_go_s_words(ateref_bin, kind):
    values = generate(kind, SAMPLE, seed=12)
    diffs = compare(ateref_bin, kind, values)["message_diffs"]
    assert not diffs, "\n".join(f"{v!r}\n  go: {g}\n  py: {p}" for v, g, p in diffs[:10])


def test_fast_tiers_never_accept_what_go_rejects_among_near_misses(ateref_bin):
    """Canonical records with one byte changed: the regex and json.loads paths must not be fooled."""
    base = (
        b'{"actorId":"a-1","version":"12","actorTemplateNamespace":"ns","actorTemplateName":"t",'
        b'"status":"STATUS_RUNNING","ateomPodIp":"10.0.0.1"}'
    )
    values = []
    for i in range(len(base)):
        for b in b'{}[],:"\\ 0-e.+nu\x00\xff\x7f':
            values.append(base[:i] + bytes([b]) + base[i + 1 :])
            values.append(base[:i] + bytes([b]) + base[i:])
    go = go_verdicts(ateref_bin, "actor", values)
    for value, go_error in zip(values, go):
        fast = fast_accepts("actor", value)
        assert not (fast and go_error), (value, fast, go_error)
        assert (exact_value_error("actor", value) is None) == (go_error is None), (value, go_error)


# ------------------------------------------------------------------ issue 22

# Per kind: most of them numbers, the rest "[name]" keys and Unicode in quoted error text.
ISSUE22_SAMPLE = {"actor": 14000, "worker": 7000}


@pytest.mark.parametrize("kind", KINDS)
def test_numbers_brackets_and_unicode_as_the_go_store_reads_them(ateref_bin, store, cluster_port, kind):
    """Issue 22's classes: Go's verdict, Go's error text and, for every value Go reads, the values
    the Go store decodes (written at their keys, listed by `ateref list-*`) equal atedash's."""
    labelled = generate_issue22(kind, ISSUE22_SAMPLE[kind], seed=22)
    result = compare(ateref_bin, kind, labelled)
    counts = result["counts"]
    shown = "\n".join(f"{b}: {v!r}\n  go: {g}\n  py: {o}" for b, v, g, o in result["disagreements"][:10])
    assert counts["disagreements"] == 0, shown
    texts = "\n".join(f"{v!r}\n  go: {g}\n  py: {p}" for v, g, p in result["message_diffs"][:10])
    assert counts["message_differs"] == 0, texts
    verdicts = go_verdicts(ateref_bin, kind, [v for _, v in labelled])
    go = go_decoded(ateref_bin, f"127.0.0.1:{cluster_port}", store.client, kind, labelled, verdicts)
    decoded = compare_decoded(kind, labelled, verdicts, go)
    diffs = "\n".join(f"{v!r}\n  go: {g}\n  atedash: {o}\n  port: {p}" for v, g, o, p in decoded["differences"][:10])
    assert decoded["counts"]["differences"] == 0, diffs
    # The sample means something: every class, both verdicts, many values decoded.
    classes = {label for label, _ in labelled}
    assert classes == {NUMBERS, BRACKETS, UNICODE}
    numbers = [(label, ok) for (label, ok), n in result["by_class"].items() for _ in range(n) if label == NUMBERS]
    assert sum(ok for _, ok in numbers) > len(numbers) // 4 and sum(not ok for _, ok in numbers) > len(numbers) // 4
    assert decoded["counts"]["compared"] > ISSUE22_SAMPLE[kind] // 4


ISSUE22_ACTORS = [
    # (value, Go's version, Go's status) for values Go reads
    (b'{"actorId":"a","version":1234567890123456789e0}', 1234567890123456789, 0),
    (b'{"actorId":"a","version":9.223372036854775807e18}', 2**63 - 1, 0),
    (b'{"actorId":"a","version":-9.223372036854775808e18}', -(2**63), 0),
    (b'{"actorId":"a","version":1e}', 1, 0),
    (b'{"actorId":"a","status":2e}', 0, 2),
    (b'{"actorId":"a","status":2e ,"version":3E\n}', 3, 2),
    (b'{"actorId":"a","version":"1e5"}', 100000, 0),
    (b'{"actorId":"a","version":-0.0e7}', 0, 0),
    (b'{"actorId":"a","version":12345678901234567890e-1}', 1234567890123456789, 0),
    (b'{"actorId":"a","status":4.0e0,"version":0e99999999999}', 0, 4),
]


@pytest.mark.parametrize("value, version, status", ISSUE22_ACTORS)
def test_the_issue_s_numbers_read_as_go_reads_them(ateref, store, value, version, status):
    store.client.set("actor:a", value)
    line = ateref.one("get-actor", "a")
    assert line.startswith("OK "), line
    go = ACTOR_CODEC.decode_json_exact(line[3:].encode())
    assert (go.version, go.status) == (version, status)
    assert store.get_actor("a") == go == ACTOR_CODEC.decode(value)[0]
    assert go_decode("actor", value) == (
        None,
        {k: v for k, v in {"actor_id": "a", "version": version, "status": status}.items() if v},
    )


@pytest.mark.parametrize(
    "value",
    [
        b'{"version":2.0000000000000001}',
        b'{"version":9.223372036854775808e18}',
        b'{"version":1e19}',
        b'{"version":"1e"}',
        b'{"version":1e2147483648}',
        b'{"status":2147483648e0}',
        b'{"status":2.5e0}',
    ],
)
def test_numbers_go_refuses_are_refused_with_its_words(ateref_bin, value):
    (go_error,) = go_verdicts(ateref_bin, "actor", [value])
    assert go_error is not None and value_error("actor", value) == go_error


def test_every_name_of_the_servers_registry_fails_to_resolve_as_in_go(ateref_bin):
    assert sorted(GO_REGISTRY) == sorted([f"ateapi.{m}" for m in GO_MESSAGES] + ["ateapi.Actor.Status"])
    assert len(GO_MESSAGES) == 22
    values = [f'{{"[{name}]":1}}'.encode() for name in BRACKET_NAMES]
    values += [f'{{"actorId":"a",\n "[{name}]":null}}'.encode() for name in BRACKET_NAMES]
    for kind in KINDS:
        go = go_verdicts(ateref_bin, kind, values)
        ours = [value_error(kind, v) for v in values]
        assert ours == go
    assert value_error("actor", b'{"[ateapi.Actor]":1}') == (
        'proto: (line 1:2): unable to resolve "[ateapi.Actor]": found wrong type: got message, want extension'
    )


def test_go_s_quoting_of_unicode_code_point_by_code_point(ateref_bin):
    """strconv.Quote in Go's error text (`invalid escape code "\\u…"`): every code point Go and
    Python 3.11 print apart, and every 64th other one, against the Go binary itself."""
    from storage.server_readable import go_is_print

    points = [
        o
        for o in range(0x80, 0x110000)
        if not 0xD800 <= o <= 0xDFFF and (o % 64 == 0 or chr(o).isprintable() != go_is_print(o))
    ]
    values = []
    for o in points:
        c = chr(o).encode()
        values.append(b'{"actorId":"\\u' + c + b"zzz"[: 4 - len(c)] + b'"}')
    go = go_verdicts(ateref_bin, "actor", values)
    wrong = [(v, g, value_error("actor", v)) for v, g in zip(values, go) if g != value_error("actor", v)]
    assert not wrong, wrong[:5]
    assert len(values) > 30_000
