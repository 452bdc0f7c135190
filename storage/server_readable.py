"""The ate Go server's judgment of a stored record: can it read this value at this key, and if not, why.

atedash reads records leniently (storage/codec.py accepts anything protobuf's Python JSON mapping or
binary parser accepts). The Go server (package ateredis) reads every value with
``protojson.Unmarshal`` and default options, and lists the store with ``SCAN actor:*`` /
``SCAN worker:*`` then ``strings.Split(key, ":")``. A record it cannot read makes its
``ListActors``/``ListWorkers`` fail for the whole store. This module answers, per record, what the
server would say, in the server's words where possible (the text of Go's error).

Three ways to the same answer, from fastest to exact:

1. One regular expression for the form protojson.Marshal and atedash write: members in
   field-number order, each at most once, under either name; plain strings (escapes but no
   surrogate escapes), int64 of at most 18 digits, enum names or int32 numbers; no whitespace but
   the space Go's Marshal puts after some commas; no nulls. Whatever it matches the server reads:
   ~1.2 µs per record (bench/server_readable_bench.py). List pages read the fields of such a
   record off one match of the same form (``canonical_values``): decoding and verdict at once.
2. ``json.loads`` (duplicates kept, NaN/Infinity refused) plus a strict look at the members, for
   other orders, whitespace and nulls; it only ever says "readable", and only for input where
   Python's JSON and Go's agree (no ``\\u`` escapes, no fractions or exponents). ~5 µs.
3. A port of protobuf-go's decoder (``encoding/protojson/decode.go`` and
   ``internal/encoding/json``, v1.36.12): token by token, the same rules and the same error text
   (``proto: (line 1:2): unknown field "foo"``). Every rejection comes from here. ~35 µs.

The port also gives the values Go reads (``go_decode``: numbers parsed from their text by
protobuf-go's rules, never through a float), which storage.codec takes as its exact reading, and
quotes as Go does: strconv.IsPrint's tables from Go's source (storage/go_isprint.py), and "[name]"
keys resolved against the server binary's registry (GO_REGISTRY).

Key rules (ateredis.ListActors/ListWorkers): ``SCAN actor:*`` then ``strings.Split(key, ":")``
must give 2 parts (4 for ``worker:*``), else the list fails with ``bad key format``; a GET error
(a value of the wrong type) fails it too. GetActor/GetWorker also check that the record names its
key ("(impossible) mismatch ...").

tests/interop/differential.py holds all three tiers to the Go reference
(``ateref - check-actors|check-workers``) on generated values; tests/interop/test_server_readable.py
runs a sample of it.

Plain library: no Django.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from dataclasses import dataclass

from google.protobuf.descriptor import FieldDescriptor

from storage.ateapi_pb2 import Actor, Worker
from storage.go_isprint import ISNOTPRINT16, ISNOTPRINT32, ISPRINT16, ISPRINT32

# protobuf-go's errors carry this prefix (its space is sometimes U+00A0, chosen per binary, to keep
# callers from comparing error strings); ours always uses a plain space.
PROTO_PREFIX = "proto: "

LIST_ACTORS = "ListActors"
LIST_WORKERS = "ListWorkers"


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Why the ate server cannot read a record, and what that breaks.

    ``reason``: the Go server's error for it (``proto: (line 1:2): unknown field "foo"``,
    ``bad key format "actor:a:b"``, ...). ``breaks_list``: True when the server's ListActors or
    ListWorkers fails for the whole store while this record exists; False when only reads of this
    one record fail (its GetActor/GetWorker). ``fails``: the server calls that fail, in words.
    """

    reason: str
    breaks_list: bool
    fails: str

    def __str__(self) -> str:
        return self.reason


# ----------------------------------------------------------------------------- Go helpers

# unicode.IsSpace (what strings.TrimSpace trims).
_GO_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)

_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_is_print(o: int) -> bool:
    """strconv.IsPrint, on Go's own tables: Python's isprintable follows its older Unicode."""
    if o <= 0xFF:
        return 0x20 <= o <= 0x7E or (0xA1 <= o and o != 0xAD)
    if o < 0x10000:
        table, holes, x = ISPRINT16, ISNOTPRINT16, o
    else:
        table, holes, x = ISPRINT32, ISNOTPRINT32, o
    i = bisect_left(table, x)
    if i >= len(table) or x < table[i & ~1] or table[i | 1] < x:
        return False
    if o >= 0x20000:
        return True
    if o >= 0x10000:
        x -= 0x10000
    i = bisect_left(holes, x)
    return not (i < len(holes) and holes[i] == x)


def _go_char(c: str) -> str:
    if c in _GO_ESCAPES:
        return _GO_ESCAPES[c]
    o = ord(c)
    if 0xDC80 <= o <= 0xDCFF:  # an invalid UTF-8 byte (surrogateescape)
        return f"\\x{o - 0xDC00:02x}"
    if go_is_print(o):
        return c
    if o < 0x80:
        return f"\\x{o:02x}"
    if o < 0x10000:
        return f"\\u{o:04x}"
    return f"\\U{o:08x}"


def go_quote(data: bytes | str) -> str:
    """Go's %q of a string (strconv.Quote), near enough for messages."""
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, (bytes, bytearray)) else data
    out = ['"']
    for c in text:
        if c == '"' or c == "\\":
            out.append("\\" + c)
        else:
            out.append(_go_char(c))
    out.append('"')
    return "".join(out)


def _go_quote_rune(c: str) -> str:
    """Go's %q of a rune (strconv.QuoteRune)."""
    return "'" + ("\\'" if c == "'" else "\\\\" if c == "\\" else _go_char(c)) + "'"


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


# ----------------------------------------------------------------------------- exact decoder

# Token kinds, as bits (internal/encoding/json/decode_token.go).
_EOF, _NULL, _BOOL, _NUMBER, _STRING, _OBJ_OPEN, _OBJ_CLOSE, _NAME, _ARR_OPEN, _ARR_CLOSE, _COMMA = (
    1 << i for i in range(11)
)
_SCALAR = _NULL | _BOOL | _NUMBER | _STRING

_NOT_DELIM = frozenset(b"-+._abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_DIGITS = frozenset(b"0123456789")
_HEX4 = re.compile(rb"[0-9a-fA-F]{4}\Z")
_PLAIN_RUN = re.compile(rb'[^"\\\x00-\x1f]+')
# errRegexp `^([-+._a-zA-Z0-9]{1,32}|.)`: Go's "." is one UTF-8 character or one invalid byte.
_ERR_REGEXP = re.compile(
    rb"[-+._a-zA-Z0-9]{1,32}|[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}|.",
    re.DOTALL,
)
_SIMPLE_ESCAPES = {
    ord('"'): '"',
    ord("\\"): "\\",
    ord("/"): "/",
    ord("b"): "\b",
    ord("f"): "\f",
    ord("n"): "\n",
    ord("r"): "\r",
    ord("t"): "\t",
}


class _GoError(Exception):
    """protojson.Unmarshal's error; ``str()`` is Go's text."""


class _Token:
    __slots__ = ("end", "kind", "start", "value")

    def __init__(self, kind: int, start: int, end: int, value=None):
        self.kind = kind
        self.start = start
        self.end = end
        self.value = value  # str for strings and names, bool for bools


class _Decoder:
    """internal/encoding/json.Decoder, ported: Read, Peek and the tokenizer, same errors."""

    def __init__(self, data: bytes):
        self.orig = data
        self.i = 0
        self.last_kind = 0
        self.stack: list[int] = []
        self.peeked: _Token | None = None
        self._consume(0)

    # -- positions and errors

    def position(self, pos: int) -> tuple[int, int]:
        before = self.orig[:pos]
        line = before.count(b"\n") + 1
        nl = before.rfind(b"\n")
        column = len(before[nl + 1 :].decode("utf-8", "surrogateescape")) + 1
        return line, column

    def syntax_error(self, pos: int, message: str) -> _GoError:
        line, column = self.position(pos)
        return _GoError(f"{PROTO_PREFIX}syntax error (line {line}:{column}): {message}")

    def new_error(self, pos: int, message: str) -> _GoError:
        line, column = self.position(pos)
        return _GoError(f"{PROTO_PREFIX}(line {line}:{column}): {message}")

    def raw(self, tok: _Token) -> str:
        return _text(self.orig[tok.start : tok.end])

    def unexpected(self, tok: _Token) -> _GoError:
        return self.syntax_error(tok.start, f"unexpected token {self.raw(tok)}")

    # -- tokens

    def _consume(self, n: int) -> None:
        i = self.i + n
        data = self.orig
        end = len(data)
        while i < end and data[i] in b" \n\r\t":
            i += 1
        self.i = i

    def peek(self) -> _Token:
        if self.peeked is None:
            self.peeked = self.read()
        return self.peeked

    def read(self) -> _Token:
        if self.peeked is not None:
            tok, self.peeked = self.peeked, None
            return tok
        tok = self._parse_next()
        kind = tok.kind
        if kind == _EOF:
            # Go's test here, `lastToken.kind&scalar|ObjectClose|ArrayClose == 0`, is never true.
            if self.stack:
                raise _GoError(f"{PROTO_PREFIX}unexpected EOF")
        elif kind & (_NULL | _BOOL | _NUMBER):
            if not self._value_next():
                raise self.unexpected(tok)
        elif kind == _STRING:
            if not self._value_next():
                if not self.last_kind & (_OBJ_OPEN | _COMMA):
                    raise self.unexpected(tok)
                if self.i >= len(self.orig):
                    raise _GoError(f"{PROTO_PREFIX}unexpected EOF")
                c = self.orig[self.i]
                if c != 0x3A:  # ':'
                    raise self.syntax_error(self.i, f'unexpected character {chr(c)}, missing ":" after field name')
                tok.kind = _NAME
                self._consume(1)
        elif kind & (_OBJ_OPEN | _ARR_OPEN):
            if not self._value_next():
                raise self.unexpected(tok)
            self.stack.append(kind)
        elif kind == _OBJ_CLOSE:
            if not self.stack or self.last_kind & (_NAME | _COMMA) or self.stack[-1] != _OBJ_OPEN:
                raise self.unexpected(tok)
            self.stack.pop()
        elif kind == _ARR_CLOSE:
            if not self.stack or self.last_kind == _COMMA or self.stack[-1] != _ARR_OPEN:
                raise self.unexpected(tok)
            self.stack.pop()
        elif kind == _COMMA:
            if not self.stack or not self.last_kind & (_SCALAR | _OBJ_CLOSE | _ARR_CLOSE):
                raise self.unexpected(tok)
        self.last_kind = tok.kind
        if tok.kind == _COMMA:
            return self.read()
        return tok

    def _value_next(self) -> bool:
        if not self.stack:
            return self.last_kind == 0
        if self.stack[-1] == _OBJ_OPEN:
            return self.last_kind == _NAME
        return bool(self.last_kind & (_ARR_OPEN | _COMMA))

    def _token(self, kind: int, size: int, value=None) -> _Token:
        start = self.i
        tok = _Token(kind, start, start + size, value)
        self._consume(size)
        return tok

    def _match_with_delim(self, word: bytes) -> int:
        data, i = self.orig, self.i
        if not data.startswith(word, i):
            return 0
        n = len(word)
        if i + n < len(data) and data[i + n] in _NOT_DELIM:
            return 0
        return n

    def _parse_next(self) -> _Token:
        data, i = self.orig, self.i
        if i >= len(data):
            return _Token(_EOF, i, i)
        c = data[i]
        if c == 0x6E:  # n
            n = self._match_with_delim(b"null")
            if n:
                return self._token(_NULL, n)
        elif c == 0x74:  # t
            n = self._match_with_delim(b"true")
            if n:
                return self._token(_BOOL, n, True)
        elif c == 0x66:  # f
            n = self._match_with_delim(b"false")
            if n:
                return self._token(_BOOL, n, False)
        elif c == 0x2D or 0x30 <= c <= 0x39:
            n = parse_number(data, i)
            if n:
                return self._token(_NUMBER, n)
        elif c == 0x22:
            value, n = self._parse_string()
            return self._token(_STRING, n, value)
        elif c == 0x7B:
            return self._token(_OBJ_OPEN, 1)
        elif c == 0x7D:
            return self._token(_OBJ_CLOSE, 1)
        elif c == 0x5B:
            return self._token(_ARR_OPEN, 1)
        elif c == 0x5D:
            return self._token(_ARR_CLOSE, 1)
        elif c == 0x2C:
            return self._token(_COMMA, 1)
        shown = _ERR_REGEXP.match(data, i)
        assert shown is not None  # its last branch, ".", matches any byte
        raise self.syntax_error(i, f"invalid value {_text(shown.group(0))}")

    def _parse_string(self) -> tuple[str, int]:
        """(value, length in bytes) of the string starting at self.i; Go's errors, at its start."""
        data, start = self.orig, self.i
        end = len(data)
        j = start + 1
        out: list[str] = []
        while j < end:
            c = data[j]
            if c == 0x22:
                return "".join(out), j + 1 - start
            if c == 0x5C:  # backslash
                if end - j < 2:
                    raise _GoError(f"{PROTO_PREFIX}unexpected EOF")
                e = data[j + 1]
                if e in _SIMPLE_ESCAPES:
                    out.append(_SIMPLE_ESCAPES[e])
                    j += 2
                elif e == 0x75:  # u
                    if end - j < 6:
                        raise _GoError(f"{PROTO_PREFIX}unexpected EOF")
                    hex4 = data[j + 2 : j + 6]
                    if not _HEX4.match(hex4):
                        raise self.syntax_error(start, f"invalid escape code {go_quote(data[j : j + 6])} in string")
                    r = int(hex4, 16)
                    j += 6
                    if 0xD800 <= r <= 0xDFFF:
                        if end - j < 6:
                            raise _GoError(f"{PROTO_PREFIX}unexpected EOF")
                        hex4 = data[j + 2 : j + 6]
                        low = int(hex4, 16) if _HEX4.match(hex4) else -1
                        if (
                            data[j] != 0x5C
                            or data[j + 1] != 0x75
                            or not 0xD800 <= r < 0xDC00
                            or not 0xDC00 <= low <= 0xDFFF
                        ):
                            raise self.syntax_error(start, f"invalid escape code {go_quote(data[j : j + 6])} in string")
                        r = 0x10000 + ((r - 0xD800) << 10) + (low - 0xDC00)
                        j += 6
                    out.append(chr(r))
                else:
                    raise self.syntax_error(start, f"invalid escape code {go_quote(data[j : j + 2])} in string")
            elif c < 0x20:
                raise self.syntax_error(start, f"invalid character {_go_quote_rune(chr(c))} in string")
            else:
                m = _PLAIN_RUN.match(data, j)
                assert m is not None  # data[j] is none of the bytes handled above
                try:
                    out.append(m.group(0).decode("utf-8"))
                except UnicodeDecodeError:
                    raise self.syntax_error(start, "invalid UTF-8 in string") from None
                j = m.end()
        raise _GoError(f"{PROTO_PREFIX}unexpected EOF")


def parse_number(data: bytes, i: int = 0) -> int:
    """Length of the JSON number at data[i:] by protobuf-go's rules (parseNumber); 0 when invalid.

    Go's own quirk kept: an exponent may have no digits when a delimiter follows (``1e}`` is a
    number token, ``1e`` at the end of the input is not).
    """
    end = len(data)
    j = i
    if data[j] == 0x2D:
        j += 1
        if j >= end:
            return 0
    c = data[j]
    if c == 0x30:
        j += 1
    elif 0x31 <= c <= 0x39:
        j += 1
        while j < end and data[j] in _DIGITS:
            j += 1
    else:
        return 0
    if end - j >= 2 and data[j] == 0x2E and data[j + 1] in _DIGITS:
        j += 2
        while j < end and data[j] in _DIGITS:
            j += 1
    if end - j >= 2 and data[j] in b"eE":
        j += 1
        if data[j] in b"+-":
            j += 1
            if j >= end:
                return 0
        while j < end and data[j] in _DIGITS:
            j += 1
    if j < end and data[j] in _NOT_DELIM:
        return 0
    return j - i


# parseNumberParts: a sign after the "e" needs a digit ("0e+" is a number token before a
# delimiter, yet not a number here), an "e" alone is exponent 0.
_NUMBER_PARTS = re.compile(rb"(-?)(?:0|([1-9][0-9]*))(?:\.([0-9]+))?(?:[eE]([+-][0-9]+|[0-9]*))?\Z")
_GO_PARSE_INT = re.compile(r"[+-]?[0-9]+\Z")


def number_to_int_string(raw: bytes) -> str | None:
    """normalizeToIntString(parseNumberParts(raw)): the integer a number token denotes, or None."""
    m = _NUMBER_PARTS.match(raw)
    if m is None:
        return None
    neg, intp, frac, exp = m.group(1), m.group(2) or b"", (m.group(3) or b"").rstrip(b"0"), m.group(4)
    if not intp and not frac:
        return "0"
    e = 0
    if exp:  # strconv.ParseInt(exp, 10, 32)
        text = exp.decode()
        if not _GO_PARSE_INT.match(text):
            return None
        e = int(text)
        if not -(1 << 31) <= e < (1 << 31):
            return None
    if e >= 0:
        if len(frac) > e or len(intp) + e > 20:
            return None
        num = intp + frac + b"0" * (e - len(frac))
    else:
        if frac:
            return None
        index = len(intp) + e
        if index < 0 or intp[index:].strip(b"0"):
            return None
        num = intp[:index]
    return ("-" if neg else "") + num.decode()


def _go_parse_int(s: str | None, bits: int) -> int | None:
    """strconv.ParseInt(s, 10, bits) on a normalized integer string; None on error."""
    if s is None or not _GO_PARSE_INT.match(s):
        return None
    n = int(s)
    limit = 1 << (bits - 1)
    return n if -limit <= n < limit else None


def go_int(raw: bytes, bits: int) -> int | None:
    """Token.Int(bits) of a JSON number token's text: the integer Go reads, or None."""
    return _go_parse_int(number_to_int_string(raw), bits)


def int_from_string(s: str, bits: int) -> int | None:
    """unmarshalInt on a JSON string: TrimSpace must change nothing, then the text must be
    exactly one number token; None when Go refuses it."""
    if not s or s[0] in _GO_SPACE or s[-1] in _GO_SPACE:
        return None
    b = s.encode("utf-8", "surrogatepass")
    if b[0] != 0x2D and not 0x30 <= b[0] <= 0x39:
        return None
    if parse_number(b) != len(b):
        return None
    return _go_parse_int(number_to_int_string(b), bits)


def _skip_value(d: _Decoder) -> int:
    """skipJSONValue: one value, nested ones included, read token by token (the decoder checks
    the structure); returns where the value ends."""
    depth = 0
    while True:
        tok = d.read()
        kind = tok.kind
        if kind & (_OBJ_OPEN | _ARR_OPEN):
            depth += 1
        elif kind & (_OBJ_CLOSE | _ARR_CLOSE):
            depth -= 1
        elif kind == _EOF:
            raise _GoError(f"{PROTO_PREFIX}unexpected EOF")
        if depth <= 0:
            return tok.end


# ----------------------------------------------------------------------------- Go's registry

# What protojson resolves a "[name]" key against: protoregistry.GlobalTypes of the server's binary,
# which links the ateapi messages and enum (proto/ateapipb/ateapi.pb.go) and no well-known types.
# A name found there is not an extension (FindExtensionByName: "found wrong type"); any other
# "[name]" is NotFound, hence an unknown field.
GO_REGISTRY = {
    **{
        f"ateapi.{name}": "message"
        for name in (
            "Actor GetActorRequest GetActorResponse CreateActorRequest CreateActorResponse "
            "SuspendActorRequest SuspendActorResponse ResumeActorRequest ResumeActorResponse "
            "DeleteActorRequest DeleteActorResponse ListWorkersRequest ListWorkersResponse "
            "ListActorsRequest ListActorsResponse Worker DebugClearRequest DebugClearResponse "
            "MintJWTRequest MintJWTResponse MintCertRequest MintCertResponse"
        ).split()
    },
    "ateapi.Actor.Status": "enum",
}


# ----------------------------------------------------------------------------- schema

_K_STRING, _K_INT64, _K_ENUM = "string", "int64", "enum"
_KIND_NAMES = {
    FieldDescriptor.TYPE_STRING: _K_STRING,
    FieldDescriptor.TYPE_INT64: _K_INT64,
    FieldDescriptor.TYPE_ENUM: _K_ENUM,
}

# The inside of a JSON string without surrogate escapes (those go to the exact decoder), on text.
# Possessive quantifiers: nothing to backtrack into, and ~20% faster.
_STRING_BODY = r'[^"\\\x00-\x1f]*+(?:\\(?:["\\/bfnrt]|u(?![dD][89abcdefABCDEF])[0-9a-fA-F]{4})[^"\\\x00-\x1f]*+)*+'
_INT64_RE = r'(?:"-?(?:0|[1-9][0-9]{0,17})"|-?(?:0|[1-9][0-9]{0,17}))'
_INT32_RE = r"-?(?:0|[1-9][0-9]{0,8})"


@dataclass(frozen=True, eq=False)  # identity: enum_names is a dict
class _Field:
    name: str
    json_name: str
    number: int
    kind: str
    enum_names: dict  # enum name -> number ({} for other kinds)


class _Schema:
    def __init__(
        self,
        message_class,
        record: str,
        prefix: bytes,
        key_parts: int,
        identity: tuple[str, ...],
        list_call: str,
        get_call: str,
        mismatch: str,
    ):
        self.record = record
        self.prefix = prefix
        self.key_parts = key_parts
        self.identity = identity
        self.list_call = list_call
        self.get_call = get_call
        self.mismatch = mismatch
        self.fields: list[_Field] = []
        self.by_name: dict[str, _Field] = {}
        for fd in sorted(message_class.DESCRIPTOR.fields, key=lambda f: f.number):
            kind = _KIND_NAMES.get(fd.type)
            if kind is None or fd.is_repeated:
                raise TypeError(f"server_readable supports string/int64/enum scalars only, not {fd.full_name}")
            names = {v.name: v.number for v in fd.enum_type.values} if kind is _K_ENUM else {}
            field = _Field(fd.name, fd.json_name, fd.number, kind, names)
            self.fields.append(field)
        # ByJSONName first, then ByTextName (for these fields the text name is the proto name).
        for field in self.fields:
            self.by_name.setdefault(field.name, field)
        for field in self.fields:
            self.by_name[field.json_name] = field
        self._identity_index = {name: i for i, name in enumerate(identity)}
        self._canonical = self._build_canonical()
        self._fullmatch = self._canonical.fullmatch
        self._values_fullmatch = self._build_values().fullmatch
        # (field name, kind, enum names -> numbers, enum numbers) per group of the values' pattern
        self._value_specs = tuple((f.name, f.kind, f.enum_names, frozenset(f.enum_names.values())) for f in self.fields)
        self.colons = key_parts - 1

    # -- tier 1: the canonical form, by one regular expression

    def _member(self, field: _Field) -> str:
        names = sorted({field.json_name, field.name}, key=len, reverse=True)
        key = '"(?:' + "|".join(re.escape(n) for n in names) + ')":'
        if field.kind is _K_STRING:
            group = "(" if field.name in self.identity else "(?:"
            value = f'"{group}{_STRING_BODY})"'
        elif field.kind is _K_INT64:
            value = _INT64_RE
        else:
            enum = "|".join(re.escape(n) for n in sorted(field.enum_names, key=len, reverse=True))
            value = f'(?:"(?:{enum})"|{_INT32_RE})'
        return key + value

    def _build_canonical(self) -> re.Pattern:
        """The form protojson.Marshal and atedash write: members in field-number order, each at
        most once, under either name; no whitespace but the space Go's Marshal puts after some
        commas; no nulls (those, other orders and other whitespace take the json.loads path)."""
        # One alternative per first member. Identity fields capture: ``_identity_groups[i]`` lists
        # the groups (one per alternative they appear in) of identity field i.
        groups: dict[str, list[int]] = {name: [] for name in self.identity}
        alternatives = []
        group = 0
        for first in range(len(self.fields)):
            parts = []
            for i, field in enumerate(self.fields[first:]):
                member = self._member(field)
                parts.append(member if i == 0 else f"(?:, ?{member})?")
                if field.name in groups:
                    group += 1
                    groups[field.name].append(group - 1)  # index into m.groups()
            alternatives.append("".join(parts))
        self._identity_groups = tuple(tuple(groups[name]) for name in self.identity)
        self._identity_len = len(self.identity)
        # judge() relies on the identity fields being the first groups of the first alternative.
        assert [f.name for f in self.fields[: len(self.identity)]] == list(self.identity)
        return re.compile(r"\{(?:" + "|".join(alternatives) + r")?\}")

    def _build_values(self) -> re.Pattern:
        """The canonical form's first alternative (its first field given, as in whatever atedash and
        the server write), capturing every member's value text: one group per field, in order."""
        parts = []
        for i, field in enumerate(self.fields):
            names = sorted({field.json_name, field.name}, key=len, reverse=True)
            key = '"(?:' + "|".join(re.escape(n) for n in names) + ')":'
            if field.kind is _K_STRING:
                member = f'{key}"({_STRING_BODY})"'
            elif field.kind is _K_INT64:
                member = f"{key}({_INT64_RE})"
            else:
                enum = "|".join(re.escape(n) for n in sorted(field.enum_names, key=len, reverse=True))
                member = f'{key}((?:"(?:{enum})"|{_INT32_RE}))'
            parts.append(member if i == 0 else f"(?:, ?{member})?")
        return re.compile(r"\{" + "".join(parts) + r"\}")

    def canonical_values(self, key: bytes, text: str) -> dict | None:
        """The fields of ``text`` (a value, decoded) by name, as storage.codec's decode_json_fast reads
        them, when ``text`` is the canonical form naming ``key`` with all its identity fields given
        (canonical_readable would say True): decoding and verdict in one match, for list pages.
        None says nothing: canonical_readable and the codec decide."""
        if key.count(b":") != self.colons:
            return None
        m = self._values_fullmatch(text)
        if m is None:
            return None
        found = m.groups()
        head = found[: self._identity_len]
        if None in head:
            return None
        joined = ":".join(head)
        if "\\" in joined or self.prefix + joined.encode("utf-8") != key:
            return None
        out = {}
        for (name, kind, names, numbers), value in zip(self._value_specs, found):
            if value is None:
                continue
            if kind is _K_STRING:
                if "\\" in value:  # no surrogate escapes here (_STRING_BODY): the JSON decoder's reading
                    value = json.loads('"' + value + '"')
            elif kind is _K_INT64:
                value = int(value[1:-1] if value[0] == '"' else value)
            elif value[0] == '"':
                value = names[value[1:-1]]
            else:
                value = int(value)
                if value not in numbers:  # an enum number the schema does not know: the codec's to read
                    return None
            out[name] = value
        return out

    def _canonical_identity(self, m: re.Match) -> tuple[str, ...]:
        found = m.groups()
        out = []
        for indexes in self._identity_groups:
            v = ""
            for g in indexes:
                if found[g] is not None:
                    v = found[g]
                    if "\\" in v:
                        v = json.loads('"' + v + '"')
                    break
            out.append(v)
        return tuple(out)

    # -- tier 2: json.loads and a strict look at the members

    def _pairs_identity(self, text: str) -> tuple[str, ...] | None:
        """The identity when Go surely reads ``text``; None when unsure (the exact decoder decides)."""
        if "\\u" in text:  # Python accepts lone surrogate escapes, Go does not
            return None
        try:
            pairs = _PAIRS_DECODER.decode(text)
        except (ValueError, _Unsure, RecursionError):
            return None
        if type(pairs) is not _Pairs:
            return None
        seen = set()
        identity = [""] * len(self.identity)
        for key, value in pairs:
            field = self.by_name.get(key)
            if field is None or field.number in seen:
                return None
            seen.add(field.number)
            if value is None:
                continue
            kind = field.kind
            if kind is _K_STRING:
                if type(value) is not str:
                    return None
                index = self._identity_index.get(field.name)
                if index is not None:
                    identity[index] = value
            elif kind is _K_INT64:
                if type(value) is str and _SAFE_INT_STRING.match(value):
                    value = int(value)
                if type(value) is not int or not -(1 << 63) <= value < (1 << 63):
                    return None
            else:
                if type(value) is str:
                    if value not in field.enum_names:
                        return None
                elif type(value) is not int or not -(1 << 31) <= value < (1 << 31):
                    return None
        return tuple(identity)

    # -- tier 3: the exact port

    def exact(self, raw: bytes) -> tuple[str | None, tuple[str, ...]]:
        """(Go's error or None, identity of the record when readable)."""
        try:
            values = self._unmarshal(_Decoder(bytes(raw)), False)
        except _GoError as e:
            return str(e), ()
        return None, tuple(values.get(name, "") for name in self.identity)

    def decode(self, raw: bytes, discard_unknown: bool = False) -> tuple[str | None, dict]:
        """(Go's error or None, the fields Go reads: proto name -> str | int, defaults left out).

        ``discard_unknown`` is protojson's DiscardUnknown (unknown keys skipped, their values still
        checked as JSON), but a "[name]" key stays an error: a lenient reading, not the server's.
        """
        try:
            return None, self._unmarshal(_Decoder(bytes(raw)), discard_unknown)
        except _GoError as e:
            return str(e), {}

    def _unmarshal(self, d: _Decoder, discard_unknown: bool) -> dict:
        tok = d.read()
        if tok.kind != _OBJ_OPEN:
            raise d.unexpected(tok)
        seen: set[int] = set()
        names: set[str] = set()
        values: dict = {}
        while True:
            tok = d.read()
            if tok.kind == _OBJ_CLOSE:
                break
            if tok.kind != _NAME:
                raise d.unexpected(tok)
            name = tok.value
            if discard_unknown:
                # The lenient reading refuses any key given twice, as protobuf's Python parser does.
                if name in names:
                    raise d.new_error(tok.start, f"duplicate field {d.raw(tok)}")
                names.add(name)
            field = self.by_name.get(name)  # no field's name starts with "["
            if field is None:
                if name[:1] == "[" and name[-1:] == "]" and len(name) >= 2:
                    # Only extensions are named so; these messages have none, but a name the
                    # server's registry holds fails to resolve rather than being unknown.
                    found = GO_REGISTRY.get(name[1:-1])
                    if found is not None:
                        raise d.new_error(
                            tok.start, f"unable to resolve {d.raw(tok)}: found wrong type: got {found}, want extension"
                        )
                elif discard_unknown:
                    _skip_value(d)
                    continue
                raise d.new_error(tok.start, f"unknown field {d.raw(tok)}")
            if field.number in seen:
                raise d.new_error(tok.start, f"duplicate field {d.raw(tok)}")
            seen.add(field.number)
            if d.peek().kind == _NULL:
                d.read()
                continue
            tok = d.read()
            value = self._scalar(d, field, tok)
            if value is None:
                raise d.new_error(tok.start, f"invalid value for {field.kind} field {field.json_name}: {d.raw(tok)}")
            if value:  # a default (0, "") sets nothing
                values[field.name] = value
        tok = d.read()
        if tok.kind != _EOF:
            raise d.unexpected(tok)
        return values

    @staticmethod
    def _scalar(d: _Decoder, field: _Field, tok: _Token):
        """The value Go sets for ``tok`` (unmarshalSingular), or None when it refuses it."""
        kind = field.kind
        if kind is _K_STRING:
            return tok.value if tok.kind == _STRING else None
        if kind is _K_INT64:
            if tok.kind == _NUMBER:
                return _go_parse_int(number_to_int_string(d.orig[tok.start : tok.end]), 64)
            if tok.kind == _STRING:
                return int_from_string(tok.value, 64)
            return None
        # enum
        if tok.kind == _STRING:
            return field.enum_names.get(tok.value)
        if tok.kind == _NUMBER:
            return _go_parse_int(number_to_int_string(d.orig[tok.start : tok.end]), 32)
        return None

    # -- the verdict

    def value_error(self, raw: bytes) -> str | None:
        if raw.__class__ is bytes:
            try:
                if self._fullmatch(raw.decode("utf-8")) is not None:
                    return None
            except UnicodeDecodeError:
                pass
        return self.value_identity(raw)[0]

    def value_identity(self, raw: bytes) -> tuple[str | None, tuple[str, ...]]:
        try:
            text = raw.decode("utf-8")
        except (UnicodeDecodeError, AttributeError):
            text = None
        if text is not None:
            m = self._canonical.fullmatch(text)
            if m is not None:
                return None, self._canonical_identity(m)
            identity = self._pairs_identity(text)
            if identity is not None:
                return None, identity
        return self.exact(raw)

    def key_of(self, identity: tuple[str, ...]) -> bytes:
        return self.prefix + ":".join(identity).encode("utf-8", "surrogatepass")

    def canonical_readable(self, key: bytes, text: str) -> bool:
        """True when ``text`` (a value, decoded) is the canonical form naming ``key`` in the simple
        case: judge() would say None by its first test alone. False says nothing: judge() decides."""
        if key.count(b":") != self.colons:
            return False
        m = self._fullmatch(text)
        if m is None:
            return False
        head = m.groups()[: self._identity_len]
        if None in head:
            return False
        joined = ":".join(head)
        return "\\" not in joined and self.prefix + joined.encode("utf-8") == key

    def judge(self, key: bytes | str, value) -> Unreadable | None:
        if key.__class__ is not bytes:
            key = key.encode("utf-8", "surrogateescape") if isinstance(key, str) else bytes(key)
        if key.count(b":") != self.colons:
            return Unreadable(
                f"bad key format {go_quote(key)}",
                True,
                f"the ate server's {self.list_call} fails while this record exists",
            )
        # The common case first, inline: the canonical form, its identity the key's.
        if value.__class__ is bytes:
            try:
                m = self._fullmatch(value.decode("utf-8"))
            except UnicodeDecodeError:
                m = None
            if m is not None:
                # The first alternative's groups are the identity fields, in order: all there in
                # the common case.
                head = m.groups()[: self._identity_len]
                joined = ":".join(head) if None not in head else ":".join(self._canonical_identity(m))
                if "\\" not in joined:
                    if self.prefix + joined.encode("utf-8") == key:
                        return None
                    return self._mismatch()
        if isinstance(value, Exception):  # the GET failed, e.g. WRONGTYPE
            return Unreadable(
                f"while getting {self.record} {go_quote(key)}: {value}",
                True,
                f"the ate server's {self.list_call} fails while this record exists",
            )
        error, identity = self.value_identity(value)
        if error is not None:
            return Unreadable(
                error,
                True,
                f"the ate server's {self.list_call} fails while this record exists; "
                f"{self.get_call} and updates of it fail",
            )
        if self.key_of(identity) != key:
            return self._mismatch()
        return None

    def _mismatch(self) -> Unreadable:
        return Unreadable(
            self.mismatch, False, f"the ate server's {self.get_call} fails for this key (the record names another)"
        )


class _Unsure(Exception):
    pass


def _no_constant(name):
    raise _Unsure(name)  # NaN, Infinity, -Infinity: Python reads them, Go does not


class _Pairs(list):
    """A JSON object's members in order, duplicates kept (a JSON array stays a plain list)."""

    __slots__ = ()


_PAIRS_DECODER = json.JSONDecoder(object_pairs_hook=_Pairs, parse_constant=_no_constant)
_SAFE_INT_STRING = re.compile(r"-?(?:0|[1-9][0-9]{0,18})\Z")

ACTOR_SCHEMA = _Schema(
    Actor,
    "actor",
    b"actor:",
    2,
    ("actor_id",),
    LIST_ACTORS,
    "GetActor",
    "(impossible) mismatch between stored id and key id",
)
WORKER_SCHEMA = _Schema(
    Worker,
    "worker",
    b"worker:",
    4,
    ("worker_namespace", "worker_pool", "worker_pod"),
    LIST_WORKERS,
    "GetWorker",
    "(impossible) mismatch between stored namespace/pool/pod and key",
)

_SCHEMAS = {"actor": ACTOR_SCHEMA, "worker": WORKER_SCHEMA}


# ----------------------------------------------------------------------------- API


def actor_value_error(value: bytes) -> str | None:
    """protojson.Unmarshal's error for an Actor value (Go's text), or None when the server reads it."""
    return ACTOR_SCHEMA.value_error(value)


def worker_value_error(value: bytes) -> str | None:
    """protojson.Unmarshal's error for a Worker value (Go's text), or None when the server reads it."""
    return WORKER_SCHEMA.value_error(value)


def judge_actor(key: bytes | str, value: bytes | Exception) -> Unreadable | None:
    """None when the ate server reads the actor stored at ``key``: its ListActors (key format, GET,
    protojson) and its GetActor (the record's id is the key's); else why not."""
    return ACTOR_SCHEMA.judge(key, value)


def judge_worker(key: bytes | str, value: bytes | Exception) -> Unreadable | None:
    """None when the ate server reads the worker stored at ``key``; else why not."""
    return WORKER_SCHEMA.judge(key, value)


def server_read_error(key: bytes | str, value: bytes | Exception) -> Unreadable | None:
    """The ate server's judgment of any record key: actor:* and worker:* keys are judged, other keys
    (locks, foreign data) are not the server's records and are None."""
    prefix = key[:7] if isinstance(key, (bytes, bytearray)) else key[:7].encode()
    if prefix.startswith(b"actor:"):
        return ACTOR_SCHEMA.judge(key, value)
    if prefix == b"worker:":
        return WORKER_SCHEMA.judge(key, value)
    return None


def value_error(kind: str, value: bytes) -> str | None:
    """``kind`` is "actor" or "worker"; protojson.Unmarshal's error or None."""
    return _SCHEMAS[kind].value_error(value)


def go_decode(kind: str, value: bytes, discard_unknown: bool = False) -> tuple[str | None, dict]:
    """What protojson.Unmarshal makes of ``value``: (Go's error or None, the fields it sets by
    proto name: str, or int for int64 and enum, defaults left out). Numbers are read from their
    text as Go reads them (``1e``, ``9.223372036854775807e18``), never through a float."""
    return _SCHEMAS[kind].decode(value, discard_unknown)


def json_members(value: bytes) -> list[tuple[str, bytes, bytes]] | None:
    """The top-level members of a JSON object as Go's tokenizer reads it: (key, the key's text
    and the value's text, verbatim); None when Go's tokenizer does not read it as one object."""
    try:
        d = _Decoder(bytes(value))
        if d.read().kind != _OBJ_OPEN:
            return None
        members = []
        while True:
            tok = d.read()
            if tok.kind == _OBJ_CLOSE:
                break
            start = d.peek().start
            members.append((tok.value, d.orig[tok.start : tok.end], d.orig[start : _skip_value(d)]))
        if d.read().kind != _EOF:
            return None
    except _GoError:
        return None
    return members


def exact_value_error(kind: str, value: bytes) -> str | None:
    """The exact decoder alone (no fast paths): for tests that hold every tier to Go."""
    return _SCHEMAS[kind].exact(value)[0]


def fast_accepts(kind: str, value: bytes) -> str | None:
    """Which fast tier accepts ``value`` ("canonical", "pairs") or None: for tests and benches."""
    schema = _SCHEMAS[kind]
    try:
        text = bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if schema._canonical.fullmatch(text):
        return "canonical"
    if schema._pairs_identity(text) is not None:
        return "pairs"
    return None
