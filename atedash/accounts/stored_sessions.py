"""What the store says of operators' sessions, kept per process for a few seconds (the session check
of atedash/accounts/sessions.py reads it through this table: docs/security.md, ATEDASH_SESSION_RECHECK_SECONDS)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class StoredSessions:
    """What the store says of an operator's sessions (its epoch, their generation), read at most
    once per ``max_age`` seconds per operator in this process (monotonic clock).

    A few hundred bytes per operator seen recently; entries older than max_age are dropped when the
    table grows past ``MAX_ENTRIES``. ``forget`` drops one operator (this process's logout)."""

    MAX_ENTRIES = 1024

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self._entries: dict[str, tuple[float, str, int]] = {}
        self._lock = threading.Lock()

    def get(self, name: str, read: Callable[[str], tuple[str, int]]) -> tuple[str, int]:
        """(epoch, generation): from this table while younger than max_age, else ``read(name)``
        (the store)."""
        entry = self._entries.get(name)
        now = time.monotonic()
        if entry is not None and now - entry[0] < self.max_age:
            return entry[1], entry[2]
        epoch, generation = read(name)
        if self.max_age > 0:
            with self._lock:
                if len(self._entries) >= self.MAX_ENTRIES:
                    self._entries = {k: v for k, v in self._entries.items() if now - v[0] < self.max_age}
                    if len(self._entries) >= self.MAX_ENTRIES:
                        self._entries.clear()
                self._entries[name] = (now, epoch, generation)
        return epoch, generation

    def forget(self, name: str) -> None:
        with self._lock:
            self._entries.pop(name, None)
