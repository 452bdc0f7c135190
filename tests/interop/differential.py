"""Differential test of storage.server_readable against the Go reference's protojson.Unmarshal.

    .venv/bin/python tests/interop/differential.py [--per-kind 100000] [--seed 1] [--ateref PATH]

Generates values (valid records in every spelling protojson accepts, and adversarial ones: every
class the Go server rejects and atedash's reader accepts, mutations of valid records, broken JSON,
binary protobuf, random bytes), asks `ateref - check-actors|check-workers` what Go's
protojson.Unmarshal says of each, and compares with

- the verdict of ``value_error`` (the fast tiers, then the exact decoder),
- the verdict of ``exact_value_error`` (the exact decoder alone, so it is checked on valid input too),
- the fast tiers: whatever they accept Go must accept,
- and, for information, the error text (Go's prefix has a U+00A0 where ours has a space).

Prints counts per kind and the first disagreements; exits 1 when any verdict disagrees.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO))

from storage.ateapi_pb2 import Actor, Worker
from storage.codec import ACTOR_CODEC, WORKER_CODEC
from storage.server_readable import ACTOR_SCHEMA, WORKER_SCHEMA, exact_value_error, fast_accepts, value_error

KINDS = ("actor", "worker")

# (proto name, json name, kind) per message, in field-number order.
FIELDS = {
    "actor": [
        (f.name, f.json_name, {9: "string", 3: "int64", 14: "enum"}[f.type])
        for f in sorted(Actor.DESCRIPTOR.fields, key=lambda f: f.number)
    ],
    "worker": [
        (f.name, f.json_name, {9: "string", 3: "int64", 14: "enum"}[f.type])
        for f in sorted(Worker.DESCRIPTOR.fields, key=lambda f: f.number)
    ],
}
ENUM_NAMES = [v.name for v in Actor.DESCRIPTOR.enum_types_by_name["Status"].values]
MESSAGES = {"actor": Actor, "worker": Worker}
CODECS = {"actor": ACTOR_CODEC, "worker": WORKER_CODEC}
SCHEMAS = {"actor": ACTOR_SCHEMA, "worker": WORKER_SCHEMA}

WS = [" ", "\t", "\n", "\r", "  ", "\r\n", " \n\t"]
# Whitespace JSON does not allow, and Unicode spaces Go's TrimSpace knows (and some it does not).
BAD_WS = ["\v", "\f", "\xa0", "\u2028", "\ufeff", "\x85", "\u3000", "\x1c", "\u180e", "\u200b"]

PLAIN_STRINGS = [
    "",
    "a",
    "actor-0001",
    "ns",
    "team-7",
    "10.0.0.1",
    "pod-abc",
    "tpl",
    "snap/2024-01-01T00:00:00Z",
    "with space",
    "colon:inside",
    "a:b:c",
    "ünïcödé",
    "日本語",
    "emoji 😀",
    "\u2028\u2029",
    "\x7f",
    "\ufffd",
    "\ufffe",
    "\uffff",
    'quote"inside',
    "back\\slash",
    "tab\there",
    "nul\x00x",
    "STATUS_RUNNING",
    "123",
    "-0",
    "null",
    "true",
    "{}",
    "[]",
    "x" * 300,
]

INT_SPELLINGS_OK = [
    "0",
    "1",
    "-1",
    "3",
    "42",
    "-0",
    "9223372036854775807",
    "-9223372036854775808",
    "1e5",
    "1E5",
    "1e+5",
    "100e-2",
    "1.0",
    "1.50e1",
    "0.5e1",
    "0e99999999999",
    "0.0",
    "-0.0",
    "9.223372036854775807e18",
    "9.007199254740993e15",
    "1e0000000000000000001",
    "0.0001e4",
    "12345678901234567890e-1",
    "922337203685477580.7e1",
    "1e18",
    "-9.223372036854775808e18",
    "0.000e-5",
]
INT_SPELLINGS_BAD = [
    "01",
    "+5",
    "1_000",
    " 5",
    "5 ",
    "\uff15",
    "0x10",
    "1e",
    "1e+",
    "1e-",
    "1.",
    ".5",
    "1.5",
    "1e-400",
    "9223372036854775808",
    "-9223372036854775809",
    "9.223372036854775808e18",
    "1e19",
    "1e20",
    "NaN",
    "Infinity",
    "-Infinity",
    "inf",
    "",
    "-",
    "--1",
    "1-",
    "1e1.5",
    "１",
    "٣",
    "0b1",
    "1,000",
    "1e2147483648",
    "0.00000000000000000000001e23",
    "1ee1",
    "1e+-1",
    "00",
    "-01",
    "5\x00",
    "5\u00a0",
]
ENUM_SPELLINGS_BAD = [
    '"STATUS_PAUSED"',
    '"2"',
    '"status_running"',
    '"Status_Running"',
    '""',
    '" STATUS_RUNNING"',
    '"STATUS_RUNNING "',
    "2.5",
    "true",
    "false",
    "1.5",
    "2147483648",
    "-2147483649",
    '"1"',
    '"STATUS_"',
    "[1]",
    "{}",
    '"\\u0000"',
    "1e10",
    "NaN",
]
ENUM_SPELLINGS_OK = [
    "0",
    "1",
    "2",
    "4",
    "99",
    "-1",
    "-2147483648",
    "2147483647",
    "2.0",
    "2e0",
    "20e-1",
    "0e5",
    "-0",
    "1e",
    "4.0e0",
]

# Raw string fragments (between the quotes) that Go rejects, or that Python and Go read differently.
STRING_FRAGMENTS_BAD = [
    b"\\ud800",
    b"\\udc00",
    b"\\ud800\\u0041",
    b"\\udc00\\ud800",
    b"\\ud800\\ud800",
    b"\\ud83d",
    b"\\x41",
    b"\\q",
    b"\\U0001F600",
    b"\\u12",
    b"\\u12G4",
    b"\\",
    b"\x01",
    b"\x1f",
    b"\n",
    b"\t",
    b"\xff",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xe2\x82",
    b"\xf4\x90\x80\x80",
    b"\x80",
    b"\xf0\x9f\x98",
    b"\\u+123",
    b"\\u-123",
]
STRING_FRAGMENTS_OK = [
    b"\\u0041",
    b"\\u00e9",
    b"\\ud83d\\ude00",
    b"\\uD83D\\uDE00",
    b"\\/",
    b"\\b\\f\\n\\r\\t",
    b'\\"',
    b"\\\\",
    b"\\u0000",
    b"\\ufffd",
    b"\\u2028",
    b"\xef\xbf\xbd",
    b"\xf0\x9f\x98\x80",
    b"\x7f",
    b"\\uFFFF",
    b"\\uABCD",
]


def js(s: str, rng: random.Random) -> str:
    """A JSON string literal for s, sometimes with gratuitous escapes."""
    out = ['"']
    for c in s:
        o = ord(c)
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif o < 0x20:
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}.get(c, f"\\u{o:04x}"))
        elif rng.random() < 0.04:
            if o >= 0x10000:
                v = o - 0x10000
                out.append(f"\\u{0xD800 + (v >> 10):04x}\\u{0xDC00 + (v & 0x3FF):04X}")
            else:
                out.append(f"\\u{o:04x}" if rng.random() < 0.5 else f"\\u{o:04X}")
        elif c == "/" and rng.random() < 0.3:
            out.append("\\/")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def random_string(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.5:
        return rng.choice(PLAIN_STRINGS[:12])
    if r < 0.8:
        return rng.choice(PLAIN_STRINGS)
    n = rng.randint(0, 12)
    alphabet = 'abcXYZ019-_:./ "\\\t\né日😀\x00\x7f\u2028'
    return "".join(rng.choice(alphabet) for _ in range(n))


def random_number_text(rng: random.Random) -> str:
    """A number spelling from Go's grammar and around it."""
    parts = []
    if rng.random() < 0.3:
        parts.append("-")
    if rng.random() < 0.05:
        parts.append(rng.choice(["+", "--", "0", ""]))
    r = rng.random()
    if r < 0.2:
        parts.append("0")
    else:
        parts.append(
            str(rng.randint(1, 9))
            + "".join(rng.choice("0123456789") for _ in range(rng.choice([0, 1, 2, 5, 17, 18, 19, 20, 22])))
        )
    if rng.random() < 0.3:
        parts.append(
            "." + "".join(rng.choice("0000123456789") for _ in range(rng.randint(0 if rng.random() < 0.05 else 1, 20)))
        )
    if rng.random() < 0.35:
        parts.append(
            rng.choice("eE")
            + rng.choice(["", "", "+", "-"])
            + "".join(rng.choice("0123456789") for _ in range(rng.choice([0, 1, 1, 1, 2, 2, 3, 11])))
        )
    return "".join(parts)


def int_value(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.35:
        v = str(rng.choice([0, 1, 2, 3, 7, 100, rng.randint(-(10**6), 10**6), rng.randint(-(2**63), 2**63 - 1)]))
        return f'"{v}"' if rng.random() < 0.7 else v
    if r < 0.55:
        v = rng.choice(INT_SPELLINGS_OK)
    elif r < 0.75:
        v = rng.choice(INT_SPELLINGS_BAD)
    else:
        v = random_number_text(rng)
    if rng.random() < 0.5:
        return js(v, rng)
    return v


def enum_value(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.5:
        return js(rng.choice(ENUM_NAMES), rng) if rng.random() < 0.9 else str(rng.randint(0, 4))
    if r < 0.65:
        return rng.choice(ENUM_SPELLINGS_OK)
    if r < 0.85:
        return rng.choice(ENUM_SPELLINGS_BAD)
    return random_number_text(rng)


def field_value(kind: str, rng: random.Random) -> str:
    if kind == "string":
        return js(random_string(rng), rng)
    if kind == "int64":
        return int_value(rng)
    return enum_value(rng)


def garbage_value(rng: random.Random) -> str:
    return rng.choice(
        [
            "null",
            "true",
            "false",
            "[]",
            "{}",
            "[1,2]",
            '{"a":1}',
            '[{"b":[null]}]',
            '"x"',
            "1",
            "-1.5e3",
            '{"actorId":"x"}',
            "[" * 50 + "]" * 50,
            '{"a":{"b":{"c":[1,{"d":null}]}}}',
            "nul",
            "tru",
            "NaN",
            "Infinity",
            "-Infinity",
            "'x'",
            "undefined",
            "0x1F",
            ".5",
            "+1",
            "[,]",
            "[1,]",
            '{"a"}',
        ]
    )


def ws(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.85:
        return ""
    if r < 0.996:
        return rng.choice(WS)
    return rng.choice(BAD_WS)


class Member:
    __slots__ = ("key", "value")

    def __init__(self, key: str, value: str):
        self.key = key
        self.value = value


def valid_members(kind: str, rng: random.Random) -> list[Member]:
    """A record that Go reads: some fields, any names, any accepted value spellings, maybe nulls."""
    members = []
    for name, json_name, fkind in FIELDS[kind]:
        if rng.random() < 0.35:
            continue
        key = json_name if rng.random() < 0.8 else name
        if rng.random() < 0.05:
            value = "null"
        elif fkind == "string":
            value = js(random_string(rng), rng)
        elif fkind == "int64":
            if rng.random() < 0.7:
                v = str(rng.choice([1, 2, 3, rng.randint(0, 10**6), rng.randint(-(2**63), 2**63 - 1)]))
            else:
                v = rng.choice(INT_SPELLINGS_OK)
            value = f'"{v}"' if rng.random() < 0.7 and "e" not in v.lower() else (v if rng.random() < 0.5 else f'"{v}"')
        else:
            value = js(rng.choice(ENUM_NAMES), rng) if rng.random() < 0.85 else rng.choice(ENUM_SPELLINGS_OK)
        members.append(Member(key, value))
    if rng.random() < 0.4:
        rng.shuffle(members)
    return members


def mutate(kind: str, members: list[Member], rng: random.Random) -> None:
    fields = FIELDS[kind]
    op = rng.randrange(14)
    if op == 0:  # unknown key
        members.insert(
            rng.randint(0, len(members)),
            Member(
                rng.choice(
                    [
                        "foo",
                        "actorid",
                        "ActorId",
                        "actor_ID",
                        "actorId ",
                        "[ateapi.x]",
                        "[]",
                        "",
                        "@type",
                        "ip",
                        "workerNamespace",
                        "actorTemplate",
                        "version_",
                        "Version",
                        "status2",
                        "actorNamespace",
                        "actor-id",
                        "actor id",
                        "\u0430ctorId",
                        "lastSnapshot",
                        "ateomPodIp",
                    ]
                ),
                rng.choice([garbage_value(rng), field_value("string", rng), "null"]),
            ),
        )
    elif op == 1 and members:  # duplicate a field, by the same or its other name
        m = rng.choice(members)
        names = [(n, j) for n, j, _ in fields if m.key in (n, j)]
        key = rng.choice(names[0]) if names else m.key
        members.insert(rng.randint(0, len(members)), Member(key, rng.choice([m.value, "null"])))
    elif op == 2 and members:  # change a value's type
        rng.choice(members).value = garbage_value(rng)
    elif op in (3, 4):  # weird value for a field of each kind
        name, json_name, fkind = rng.choice(fields)
        value = (
            field_value(fkind, rng)
            if rng.random() < 0.5
            else {
                "string": lambda: rng.choice(
                    [random_number_text(rng), garbage_value(rng), js(random_string(rng), rng)]
                ),
                "int64": lambda: int_value(rng),
                "enum": lambda: enum_value(rng),
            }[fkind]()
        )
        key = json_name if rng.random() < 0.7 else name
        existing = [m for m in members if m.key in (name, json_name)]
        if existing:
            existing[0].value = value
        else:
            members.insert(rng.randint(0, len(members)), Member(key, value))
    elif op == 5 and members:  # a bad fragment inside a string (raw bytes, surrogateescaped)
        m = rng.choice(members)
        frag = rng.choice(STRING_FRAGMENTS_BAD if rng.random() < 0.6 else STRING_FRAGMENTS_OK)
        text = frag.decode("utf-8", "surrogateescape")
        target = rng.choice(["key", "value"])
        s = m.key if target == "key" else m.value
        if target == "key" or (s.startswith('"') and len(s) >= 2):
            body = s if target == "key" else s[1:-1]
            i = rng.randint(0, len(body))
            body = body[:i] + text + body[i:]
            if target == "key":
                m.key = body  # keys are written raw below (see render): mark them
                m.key = "\x00RAW" + body
            else:
                m.value = '"' + body + '"'
        else:
            m.value = '"' + text + '"'
    elif op == 6 and members:  # null for a field
        rng.choice(members).value = "null"
    elif op == 7 and members:  # remove a member
        members.pop(rng.randrange(len(members)))
    elif op == 8:  # enum weirdness
        if kind == "actor":
            value = rng.choice(ENUM_SPELLINGS_BAD + ENUM_SPELLINGS_OK + ['"' + n.lower() + '"' for n in ENUM_NAMES])
            members.append(Member("status", value))
        else:
            members.append(Member("version", rng.choice(INT_SPELLINGS_BAD)))
    elif op == 9:  # int64 as string with whitespace or other decorations
        v = rng.choice(INT_SPELLINGS_OK[:10])
        deco = rng.choice(BAD_WS + WS + ["+", "0", "_", "\x00", "a", "\\u0035", "\\n"])
        members.append(Member("version", '"' + rng.choice([deco + v, v + deco, v[:1] + deco + v[1:]]) + '"'))
    elif op == 10 and members:  # key escaped (still the same name after unescaping) or json/proto swapped
        m = rng.choice(members)
        for n, j, _ in fields:
            if m.key in (n, j):
                m.key = (
                    rng.choice([n, j])
                    if rng.random() < 0.5
                    else "\x00RAW" + "".join(f"\\u{ord(c):04x}" if rng.random() < 0.3 else c for c in m.key)
                )
                break
    elif op == 11:  # a member with the proto name of a field given under its JSON name already
        name, json_name, fkind = rng.choice(fields)
        members.append(Member(json_name, field_value(fkind, rng)))
        members.append(Member(name, field_value(fkind, rng)))
    elif op == 12 and members:  # big strings
        m = rng.choice(members)
        m.value = js(rng.choice(["a", "é", "😀", "\\"]) * rng.choice([100, 1000, 5000]), rng)
    else:  # numbers in odd places
        name, json_name, fkind = rng.choice(fields)
        members.append(Member(rng.choice([name, json_name]), random_number_text(rng)))


def render(members: list[Member], rng: random.Random) -> str:
    parts = [ws(rng), "{", ws(rng)]
    for i, m in enumerate(members):
        if i:
            parts.append(ws(rng) + "," + ws(rng))
        key = m.key[4:] if m.key.startswith("\x00RAW") else None
        parts.append('"' + key + '"' if key is not None else js(m.key, rng))
        parts.append(ws(rng) + ":" + ws(rng))
        parts.append(m.value)
    parts.append(ws(rng) + "}" + ws(rng))
    return "".join(parts)


def structural(raw: bytes, rng: random.Random) -> bytes:
    op = rng.randrange(10)
    if op == 0 and raw:  # truncate
        return raw[: rng.randrange(len(raw))]
    if op == 1:  # trailing data
        return raw + rng.choice([b"{}", b"x", b",", b"}", b" ", b"\n", b"\x00", b"null", b"[]", b"\xa0"])
    if op == 2 and len(raw) > 2:  # trailing comma / missing comma
        i = raw.rfind(b"}")
        return raw[:i] + b"," + raw[i:] if rng.random() < 0.5 else raw.replace(b",", b" ", 1)
    if op == 3 and raw:  # flip a byte
        i = rng.randrange(len(raw))
        return raw[:i] + bytes([rng.randrange(256)]) + raw[i + 1 :]
    if op == 4 and raw:  # delete a byte
        i = rng.randrange(len(raw))
        return raw[:i] + raw[i + 1 :]
    if op == 5:  # insert a byte
        i = rng.randint(0, len(raw))
        return raw[:i] + bytes([rng.choice(b'{}[],:"\\ \t\n0-e.+nul\x00\xff')]) + raw[i:]
    if op == 6:  # not an object
        return rng.choice([b"[]", b"null", b'"x"', b"1", b"true", b"", b" ", b"[" + raw + b"]", b"\xef\xbb\xbf" + raw])
    if op == 7:  # leading junk / BOM / bad whitespace
        return rng.choice([b"\xef\xbb\xbf", b"\x0b", b"\x0c", b"\xc2\xa0", b"\x00", b" "]) + raw
    if op == 8:  # colon or quote games
        return raw.replace(b":", rng.choice([b"=", b"::", b" : ", b":"]), 1)
    return raw.replace(b'"', b"'", 2)


def binary_value(kind: str, rng: random.Random) -> bytes:
    msg = MESSAGES[kind]()
    for name, _, fkind in FIELDS[kind]:
        if rng.random() < 0.5:
            continue
        if fkind == "string":
            setattr(msg, name, rng.choice(PLAIN_STRINGS[:12]))
        elif fkind == "int64":
            setattr(msg, name, rng.randint(0, 10**6))
        else:
            setattr(msg, name, rng.randint(0, 4))
    raw = msg.SerializeToString()
    r = rng.random()
    if r < 0.2:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
    if r < 0.3:  # binary that starts like JSON: field 15, wire type 3 is 0x7b '{'
        return b"{" + raw
    if r < 0.4:  # binary whose first field is 123 bytes long: "\n{" ...
        return b"\n{" + b"x" * 123 + raw
    return raw


def canonical_value(kind: str, rng: random.Random) -> bytes:
    """A record as atedash's codec (and, but for spaces, Go's protojson.Marshal) writes it."""
    msg = MESSAGES[kind]()
    for name, _, fkind in FIELDS[kind]:
        if rng.random() < 0.2:
            continue
        if fkind == "string":
            setattr(msg, name, random_string(rng))
        elif fkind == "int64":
            setattr(msg, name, rng.choice([1, 2, rng.randint(0, 10**6), rng.randint(-(2**63), 2**63 - 1)]))
        else:
            setattr(msg, name, rng.choice([1, 2, 3, 4, 4, 4, 7, -3]))
    raw = CODECS[kind].encode_json(msg)
    if rng.random() < 0.3:  # Go's Marshal adds a space after some commas
        raw = raw.replace(b'","', b'", "').replace(b',"', b', "', 1)
    return raw


# Labels of the values generate() makes, for the per-class counts.
VALID, MUTATED, CANONICAL, CANONICAL_BROKEN, BINARY = "valid", "mutated", "canonical", "canonical+damage", "binary"


def generate(kind: str, n: int, seed: int) -> list[tuple[str, bytes]]:
    """n values, each with its class: (label, bytes)."""
    rng = random.Random(f"{kind}:{seed}")
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.03:
            out.append((BINARY, binary_value(kind, rng)))
            continue
        if r < 0.18:
            raw = canonical_value(kind, rng)
            if rng.random() < 0.3:
                out.append((CANONICAL_BROKEN, structural(raw, rng)))
            else:
                out.append((CANONICAL, raw))
            continue
        members = valid_members(kind, rng)
        label = VALID
        if r >= 0.35:
            label = MUTATED
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                mutate(kind, members, rng)
        raw = render(members, rng).encode("utf-8", "surrogateescape")
        if rng.random() < 0.12:
            label += "+damage"
            raw = structural(raw, rng)
        out.append((label, raw))
    return out


def go_verdicts(ateref: str, kind: str, values: list[bytes]) -> list[str | None]:
    data = b"".join(base64.b64encode(v) + b"\n" for v in values)
    proc = subprocess.run([ateref, "-", f"check-{kind}s"], input=data, capture_output=True, check=True)
    lines = proc.stdout.decode("utf-8", "replace").split("\n")[: len(values)]
    assert len(lines) == len(values), (len(lines), len(values))
    return [None if line == "OK" else line[4:].replace("proto:\xa0", "proto: ", 1) for line in lines]


def compare(ateref: str, kind: str, labelled: list[tuple[str, bytes]]) -> dict:
    values = [v for _, v in labelled]
    go = go_verdicts(ateref, kind, values)
    schema = SCHEMAS[kind]
    counts = Counter()
    by_class = Counter()
    disagreements = []
    message_diffs = []
    for (label, value), go_error in zip(labelled, go):
        ours = value_error(kind, value)
        exact = exact_value_error(kind, value)
        fast = fast_accepts(kind, value)
        counts["values"] += 1
        counts["go_ok" if go_error is None else "go_err"] += 1
        by_class[(label, go_error is None)] += 1
        if fast:
            counts[f"fast_{fast}"] += 1
        bad = []
        if (ours is None) != (go_error is None):
            bad.append("verdict")
        if (exact is None) != (go_error is None):
            bad.append("exact verdict")
        if fast and go_error is not None:
            bad.append(f"fast tier {fast} accepts")
        if go_error is None and schema.value_identity(value)[1] != schema.exact(value)[1]:
            bad.append("identity differs between tiers")
        if go_error is not None and exact is not None and exact != go_error:
            counts["message_differs"] += 1
            message_diffs.append((value, go_error, exact))
        if bad:
            counts["disagreements"] += 1
            disagreements.append((bad, value, go_error, ours))
    return {"counts": counts, "by_class": by_class, "disagreements": disagreements, "message_diffs": message_diffs}


def build_ateref(goref_dir: Path) -> str:
    proc = subprocess.run([str(goref_dir / "build.sh")], capture_output=True, text=True, check=True)
    return proc.stdout.strip().splitlines()[-1]


def default_goref_dir() -> Path | None:
    env = os.environ.get("ATEDASH_GOREF_DIR")
    candidates = [Path(env)] if env else [REPO.parent / "shared" / "goref", Path("/work/shared/goref")]
    for c in candidates:
        if (c / "build.sh").is_file():
            return c
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-kind", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ateref", help="path of the ateref binary (default: build it with goref's build.sh)")
    ap.add_argument("--show", type=int, default=10, help="disagreements to print")
    ap.add_argument("--show-messages", type=int, default=0, help="differing error texts to print")
    args = ap.parse_args()
    ateref = args.ateref
    if not ateref:
        goref = default_goref_dir()
        if goref is None:
            print("no goref (set ATEDASH_GOREF_DIR)", file=sys.stderr)
            return 2
        ateref = build_ateref(goref)
    total = 0
    for kind in KINDS:
        values = generate(kind, args.per_kind, args.seed)
        result = compare(ateref, kind, values)
        c = result["counts"]
        print(
            f"{kind}: {c['values']} values, Go reads {c['go_ok']}, rejects {c['go_err']}; "
            f"fast tiers accepted {c['fast_canonical']} (regex) + {c['fast_pairs']} (json.loads); "
            f"disagreements {c['disagreements']}; error text differs on {c['message_differs']} of {c['go_err']}"
        )
        classes = sorted({label for label, _ in result["by_class"]})
        print(
            "  by class (Go reads / rejects): "
            + ", ".join(
                f"{label} {result['by_class'][(label, True)]}/{result['by_class'][(label, False)]}" for label in classes
            )
        )
        for bad, value, go_error, ours in result["disagreements"][: args.show]:
            print(f"  {bad}: {value!r}\n    go: {go_error}\n    py: {ours}")
        for value, go_error, exact in result["message_diffs"][: args.show_messages]:
            print(f"  text: {value!r}\n    go: {go_error}\n    py: {exact}")
        total += c["disagreements"]
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
