"""Differential test of storage.server_readable against the Go reference's protojson.Unmarshal.

    .venv/bin/python tests/interop/differential.py [--per-kind 100000] [--seed 1] [--ateref PATH]

Generates values (valid records in every spelling protojson accepts, and adversarial ones: every
class the Go server rejects and atedash's reader accepts, mutations of valid records, broken JSON,
binary protobuf, random bytes), asks `ateref - check-actors|check-workers` what Go's
protojson.Unmarshal says of each, and compares with

- the verdict of ``value_error`` (the fast tiers, then the exact decoder),
- the verdict of ``exact_value_error`` (the exact decoder alone, so it is checked on valid input too),
- the fast tiers: whatever they accept Go must accept,
- for every value Go reads, atedash's decoded record against the port's reading of Go,
- and the error text (Go's prefix has a U+00A0 where ours has a space).

``--issue22 N --addr 127.0.0.1:PORT`` adds issue 22's classes (numbers in every form, "[name]" keys,
Unicode Go and Python print apart): verdicts, error text, and the values the Go store itself decodes
(written at their keys on that cluster, which is FLUSHED, and listed by ateref) against atedash's.

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


# ------------------------------------------------------------------------- issue 22's classes
#
# Numbers: int64 and enum numbers in every form Go's tokenizer takes (fractions, exponents, "1e"
# before a delimiter, negative zero, huge exponents, out of range), as numbers and as strings; the
# decoded values are compared too (go_decoded: the Go store's own reading, through the cluster).
# Brackets: "[name]" keys, the names of the server's registry and others. Unicode: characters
# Go's strconv.Quote prints literally where Python 3.11's isprintable escapes them, and the reverse,
# inside the bytes an "invalid escape code" error quotes.

NUMBERS, BRACKETS, UNICODE = "numbers", "brackets", "unicode"
ISSUE22_CLASSES = (NUMBERS, BRACKETS, UNICODE)

# The server's registry (22 messages and the Status enum), as the ateapi.pb.go in goref declares it.
GO_MESSAGES = (
    "Actor GetActorRequest GetActorResponse CreateActorRequest CreateActorResponse SuspendActorRequest "
    "SuspendActorResponse ResumeActorRequest ResumeActorResponse DeleteActorRequest DeleteActorResponse "
    "ListWorkersRequest ListWorkersResponse ListActorsRequest ListActorsResponse Worker DebugClearRequest "
    "DebugClearResponse MintJWTRequest MintJWTResponse MintCertRequest MintCertResponse"
).split()
BRACKET_NAMES = (
    [f"ateapi.{m}" for m in GO_MESSAGES]
    + ["ateapi.Actor.Status"]
    + [
        "ateapi.Actor.STATUS_RUNNING",
        "ateapi.Actor.version",
        "ateapi.Foo",
        "ateapi",
        "Actor",
        "ateapi.actor",
        "google.protobuf.Any",
        "google.protobuf.Duration",
        "google.protobuf.FileDescriptorProto",
        "",
        " ateapi.Actor",
        "ateapi.Actor ",
        "[ateapi.Actor]",
        "ateapi.Worker.x",
        "actorId",
        "version",
    ]
)

NUMBER_EDGES = [
    "1e",
    "2e",
    "-3e",
    "10e",
    "1E",
    "0e",
    "-0e",
    "1.5e",
    "1.0e",
    "-0",
    "-0.0",
    "-0e5",
    "-0.000e-3",
    "0e-2147483648",
    "0e2147483647",
    "1e2147483647",
    "1e-2147483648",
    "1e2147483648",
    "1e-2147483649",
    "0e99999999999",
    "1e0000000000000000000000001",
    "1e-0",
    "1e+0",
    "1e00",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "9.223372036854775807e18",
    "9.223372036854775808e18",
    "-9.223372036854775808e18",
    "92233720368547758070e-1",
    "922337203685477580.70e1",
    "1234567890123456789e0",
    "1.234567890123456789e18",
    "12345678901234567890e-1",
    "123456789012345678900e-2",
    "1e19",
    "1e18",
    "10000000000000000000e-1",
    "100000000000000000000e-2",
    "2147483647",
    "2147483648",
    "-2147483648",
    "-2147483649",
    "2.147483647e9",
    "2.147483648e9",
    "21474836470e-1",
    "2.0000000000000001",
    "9007199254740993",
    "9007199254740993e0",
    "9.007199254740993e15",
    "0.1e1",
    "0.10e1",
    "0.01e1",
    "1e-1",
    "10e-1",
    "100e-2",
    "120e-1",
    "0.0",
    "00",
    "01",
    "1.",
    ".5",
    "1e+",
    "1e-",
    "1ee",
    "1e1.5",
    "+1",
    "0x1",
    "1_0",
    "Infinity",
    "NaN",
]


def integral_spelling(n: int, rng: random.Random) -> str:
    """n spelled with a fraction and/or an exponent that still denote exactly n (Go reads n)."""
    digits = str(abs(n))
    sign = "-" if n < 0 or (n == 0 and rng.random() < 0.2) else ""
    e = rng.choice(["e", "E"])
    r = rng.random()
    if r < 0.25:  # d.ddd e+k: all the digits after the point
        k = len(digits) - 1
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "") + rng.choice(["", "0", "000"])
        if "." not in body and body != digits[0]:
            body = digits[0] + "." + body[1:]
        exp = rng.choice([str(k), f"+{k}", f"{k:03d}"])
        return sign + body + e + exp
    if r < 0.45:  # trailing zeros moved into the exponent
        stripped = digits.rstrip("0") or "0"
        k = len(digits) - len(stripped)
        return sign + stripped + e + (str(k) if rng.random() < 0.7 else f"+{k}")
    if r < 0.65:  # extra zeros then a negative exponent
        z = rng.randint(1, 4)
        return sign + digits + "0" * z + e + f"-{z}" if digits != "0" else sign + "0" + e + f"-{z}"
    if r < 0.8:  # point somewhere inside, exponent makes up for it
        if len(digits) < 2:
            return sign + digits + ".0" + e + "0"
        i = rng.randint(1, len(digits) - 1)
        return sign + digits[:i] + "." + digits[i:] + e + str(len(digits) - i)
    if r < 0.9:  # a bare "e" (Go: exponent 0 when a delimiter follows)
        return sign + digits + e
    return sign + digits + "." + "0" * rng.randint(1, 3)


def near_miss(text: str, rng: random.Random) -> str:
    """One change to a spelling: a digit added or dropped, the exponent moved, a sign, ..."""
    op = rng.randrange(6)
    if op == 0:
        return text + rng.choice("0123456789")
    if op == 1 and len(text) > 1:
        i = rng.randrange(len(text))
        return text[:i] + text[i + 1 :]
    if op == 2:
        return text.replace("e", "e-", 1) if "e" in text else text + "e-1"
    if op == 3:
        return text.replace("e", "e1", 1) if "e" in text else text + "e1"
    if op == 4:
        i = rng.randint(0, len(text))
        return text[:i] + rng.choice([".", "0", "5", "e", "-", "+", "E"]) + text[i:]
    return "-" + text if not text.startswith("-") else text[1:]


def number_text(bits: int, rng: random.Random) -> str:
    r = rng.random()
    limit = 1 << (bits - 1)
    if r < 0.35:
        n = rng.choice(
            [
                rng.randint(-limit, limit - 1),
                rng.randint(-1000, 1000),
                rng.choice([0, 1, 2, 4, limit - 1, -limit]),
                rng.randint(0, 9) * 10 ** rng.randint(0, 19),
            ]
        )
        return integral_spelling(n, rng)
    if r < 0.55:
        n = rng.randint(-limit, limit - 1) if rng.random() < 0.5 else rng.randint(-99, 99)
        return near_miss(integral_spelling(n, rng), rng)
    if r < 0.8:
        return rng.choice(NUMBER_EDGES)
    if r < 0.9:
        return str(rng.choice([limit, -limit - 1, 2**64, rng.randint(limit, 10**22)]))
    return random_number_text(rng)


def _after_number(rng: random.Random) -> str:
    # What follows a number token decides whether "1e" is one (a delimiter) or not.
    return rng.choice(["", "", "", " ", "\n", "\t"])


def identity_members(kind: str, i: int, rng: random.Random) -> list[str]:
    if kind == "actor":
        return [f'"{rng.choice(["actorId", "actor_id"])}":"n{i}"']
    return [f'"workerNamespace":"ns","workerPool":"p","workerPod":"n{i}"']


def identity_key(kind: str, i: int) -> str:
    return f"actor:n{i}" if kind == "actor" else f"worker:ns:p:n{i}"


def number_record(kind: str, i: int, rng: random.Random) -> bytes:
    """A record naming itself n<i> whose int64 (and, for actors, enum) members are numbers."""
    members = identity_members(kind, i, rng)
    numbered = [("version", 64)] + ([("status", 32)] if kind == "actor" else [])
    for name, bits in numbered:
        if len(numbered) > 1 and rng.random() < 0.3:
            continue
        text = number_text(bits, rng)
        if bits == 32 and rng.random() < 0.1:
            value = '"' + rng.choice(ENUM_NAMES) + '"'
        elif bits == 64 and rng.random() < 0.3:
            value = '"' + text + '"'  # an int64 may be a string holding a number
        else:
            value = text + _after_number(rng)
        members.insert(rng.randint(0, len(members)), f'"{name}":{value}')
    return ("{" + rng.choice([",", ", ", " ,"]).join(members) + "}").encode()


def bracket_record(kind: str, i: int, rng: random.Random) -> bytes:
    name = rng.choice(BRACKET_NAMES)
    key = "[" + name + "]" if not name.startswith("[") or rng.random() < 0.5 else name
    if rng.random() < 0.2:  # escaped, still the same name once parsed
        key = "".join(f"\\u{ord(c):04x}" if rng.random() < 0.3 else c for c in key)
    members = identity_members(kind, i, rng)
    value = rng.choice(["1", "null", '"x"', "{}", "[1]", "true"])
    members.insert(rng.randint(0, len(members)), f'"{key}":{value}')
    sep = rng.choice([",", ",\n  ", ", "])
    return ("{" + rng.choice(["", "\n "]) + sep.join(members) + "}").encode()


def _unicode_samples() -> list[str]:
    from storage.server_readable import go_is_print

    differ = [o for o in range(0x80, 0x110000) if not 0xD800 <= o <= 0xDFFF and chr(o).isprintable() != go_is_print(o)]
    both = [0xE9, 0x65E5, 0x1F600, 0x2028, 0xAD, 0x85, 0xFFFD, 0xFEFF, 0x200B, 0xE000, 0x10FFFF, 0xFFFF, 0x1F6DF]
    return [chr(o) for o in differ] + [chr(o) for o in both]


_UNICODE = []


def unicode_record(kind: str, i: int, rng: random.Random) -> bytes:
    """An "invalid escape code" whose quoted bytes hold characters Go and Python 3.11 print apart."""
    if not _UNICODE:
        _UNICODE.extend(_unicode_samples())
    chars = "".join(rng.choice(_UNICODE) for _ in range(rng.randint(1, 3)))
    lead = rng.choice(["\\u", "\\ud83d", "\\ud800\\u", "\\u0", "\\ud83d\\u00", "\\x", "\\"])
    body = rng.choice(["", "a", "é"]) + lead + chars + rng.choice(["", "bc", "\\n"])
    members = identity_members(kind, i, rng)
    field = rng.choice(["lastSnapshot", "ateomPodIp"] if kind == "actor" else ["ip", "actorTemplate"])
    if rng.random() < 0.3:
        members.insert(rng.randint(0, len(members)), f'"{body}":1')
    else:
        members.insert(rng.randint(0, len(members)), f'"{field}":"{body}"')
    return ("{" + ",".join(members) + "}").encode("utf-8")


def generate_issue22(kind: str, n: int, seed: int, classes=ISSUE22_CLASSES) -> list[tuple[str, bytes]]:
    """n values of the given classes (most of them numbers), each naming itself n<i>."""
    rng = random.Random(f"issue22:{kind}:{seed}")
    makers = {NUMBERS: number_record, BRACKETS: bracket_record, UNICODE: unicode_record}
    weights = [{NUMBERS: 8, BRACKETS: 1, UNICODE: 1}[c] for c in classes]
    out = []
    for i in range(n):
        label = rng.choices(classes, weights)[0]
        out.append((label, makers[label](kind, i, rng)))
    return out


def go_decoded(ateref: str, addr: str, client, kind: str, labelled, verdicts) -> dict[str, object]:
    """The Go store's reading of every value Go reads (verdict None), by key: the values are
    written at their keys n<i> on an empty cluster, then listed by `ateref ADDR list-*s` (its
    protojson.Unmarshal, printed back by protojson.Marshal: int64 as decimal strings)."""
    from google.protobuf import json_format

    keys = {}
    pipe = client.pipeline(transaction=False)
    for i, ((_, value), verdict) in enumerate(zip(labelled, verdicts)):
        if verdict is None:
            key = identity_key(kind, i)
            keys[key] = value
            pipe.set(key, value)
    pipe.execute()
    proc = subprocess.run([ateref, addr, f"list-{kind}s"], capture_output=True, check=True, timeout=600)
    lines = proc.stdout.decode("utf-8").rstrip("\n").split("\n")
    assert lines[0] == f"LIST {len(keys)}", lines[:2]
    out = {}
    for line in lines[1:]:
        message = json_format.Parse(line, MESSAGES[kind]())
        key = (
            f"actor:{message.actor_id}"
            if kind == "actor"
            else f"worker:{message.worker_namespace}:{message.worker_pool}:{message.worker_pod}"
        )
        out[key] = message
    return out


def compare_decoded(kind: str, labelled, verdicts, go_messages: dict) -> dict:
    """atedash's decoding (codec.decode, and server_readable.go_decode) of every value Go reads,
    against the Go store's own."""
    from storage.server_readable import go_decode

    codec = CODECS[kind]
    counts = Counter()
    differences = []
    for i, ((_, value), verdict) in enumerate(zip(labelled, verdicts)):
        if verdict is not None:
            continue
        go = go_messages.get(identity_key(kind, i))
        counts["compared"] += 1
        try:
            ours = codec.decode(value)[0]
        except Exception as e:  # noqa: BLE001 - any failure is a difference
            ours = e
        error, fields = go_decode(kind, value)
        port = MESSAGES[kind](**fields) if error is None else error
        if go is None or ours != go or port != go:
            counts["differences"] += 1
            differences.append((value, go, ours, port))
    return {"counts": counts, "differences": differences}


def decoded_as_the_port_reads(kind: str, value: bytes) -> bool:
    """atedash's codec decodes ``value`` (which Go reads) as server_readable's port of Go does."""
    from storage.server_readable import go_decode

    error, fields = go_decode(kind, value)
    try:
        ours = CODECS[kind].decode(value)[0]
    except Exception:  # noqa: BLE001 - a value Go reads must decode
        return False
    return error is None and ours == MESSAGES[kind](**fields)


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
        if go_error is None and not decoded_as_the_port_reads(kind, value):
            # The port's values are held to the Go store's own in compare_decoded.
            bad.append("atedash decodes otherwise than Go")
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
    ap.add_argument(
        "--issue22",
        type=int,
        default=0,
        help="also run issue 22's classes (numbers, [name] keys, Unicode): this many values per kind",
    )
    ap.add_argument(
        "--addr",
        help="a node of a cluster to FLUSH and use for the Go store's decoded values (127.0.0.1:7300); "
        "without it --issue22 compares verdicts and error text only",
    )
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
    if args.issue22:
        total += run_issue22(ateref, args)
    return 1 if total else 0


def run_issue22(ateref: str, args) -> int:
    client = None
    if args.addr:
        from redis.cluster import RedisCluster

        host, port = args.addr.rsplit(":", 1)
        client = RedisCluster(host=host, port=int(port))
    bad = 0
    for kind in KINDS:
        labelled = generate_issue22(kind, args.issue22, args.seed)
        result = compare(ateref, kind, labelled)
        c = result["counts"]
        line = (
            f"{kind} (issue 22): {c['values']} values, Go reads {c['go_ok']}, rejects {c['go_err']}; "
            f"verdict disagreements {c['disagreements']}; error text differs on {c['message_differs']}"
        )
        bad += c["disagreements"] + c["message_differs"]
        if client is not None:
            for node in client.get_primaries():
                client.get_redis_connection(node).flushall()
            verdicts = go_verdicts(ateref, kind, [v for _, v in labelled])
            decoded = compare_decoded(
                kind, labelled, verdicts, go_decoded(ateref, args.addr, client, kind, labelled, verdicts)
            )
            line += (
                f"; decoded values compared {decoded['counts']['compared']}, differ {decoded['counts']['differences']}"
            )
            bad += decoded["counts"]["differences"]
            for value, go, ours, port in decoded["differences"][: args.show]:
                print(f"  decoded: {value!r}\n    go: {go}\n    atedash: {ours}\n    port: {port}")
        print(line)
        print(
            "  by class (Go reads / rejects): "
            + ", ".join(
                f"{label} {result['by_class'][(label, True)]}/{result['by_class'][(label, False)]}"
                for label in ISSUE22_CLASSES
            )
        )
        for b, value, go_error, ours in result["disagreements"][: args.show]:
            print(f"  {b}: {value!r}\n    go: {go_error}\n    py: {ours}")
        for value, go_error, exact in result["message_diffs"][: args.show]:
            print(f"  text: {value!r}\n    go: {go_error}\n    py: {exact}")
    return bad


if __name__ == "__main__":
    sys.exit(main())
