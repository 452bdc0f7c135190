"""URL path converters: a record's key as one URL segment.

Any key can be named, whatever it holds ("/", "%", spaces, control characters, bytes that are not
UTF-8): the segment is the key's bytes in URL-safe base64 without padding. The pages show the key
itself (escaped where it is not printable); the URL only has to find it again.
"""

from __future__ import annotations

import base64
import binascii

MAX_KEY_BYTES = 4096  # longer keys are not records the dashboard made or lists: no URL for them


def key_bytes(key: str | bytes) -> bytes:
    """A key as Redis holds it (a str may carry undecodable bytes as surrogates: surrogateescape)."""
    return key if isinstance(key, bytes) else key.encode("utf-8", "surrogateescape")


def key_token(key: str | bytes) -> str:
    return base64.urlsafe_b64encode(key_bytes(key)).rstrip(b"=").decode("ascii")


def key_from_token(token: str) -> str | bytes:
    """The key a token names: str when it is UTF-8, else bytes. ValueError for what no token looks like."""
    if len(token) > MAX_KEY_BYTES * 4 // 3 + 4:
        raise ValueError("key too long")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not a key token: {exc}") from None
    if not raw or key_token(raw) != token:  # one spelling per key (no padding, no stray bits)
        raise ValueError("not a key token")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


class RecordKeyConverter:
    regex = "[A-Za-z0-9_-]+"

    def to_python(self, value: str) -> str | bytes:
        return key_from_token(value)  # ValueError: the URL does not match (the 404 page)

    def to_url(self, value: str | bytes) -> str:
        return key_token(value)
