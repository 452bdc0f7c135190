"""Login throttling, shared by every process and replica through the store.

Failed logins are counted in the store (storage.dashboard) within a window of
ATEDASH_LOGIN_LOCKOUT_SECONDS, three ways:
- per (name, client address): ATEDASH_LOGIN_MAX_FAILURES, the usual lockout of one guesser;
- per client address, whatever the names: ATEDASH_LOGIN_MAX_FAILURES_PER_IP (a spray of names);
- per name, whatever the addresses: ATEDASH_LOGIN_MAX_FAILURES_PER_NAME (guessing one operator's
  password from many addresses), high enough that one client cannot lock an operator out.
A locked login is refused before its password is hashed. Password checks (a 1M-iteration PBKDF2
each) run at most ATEDASH_LOGIN_CONCURRENCY at once per process; one more is refused at once (429),
so a flood of logins cannot take the CPU that pages and probes need.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from atedash.core.store import StoreConnection


class LoginThrottle:
    def __init__(
        self,
        store: StoreConnection,
        *,
        max_failures: int,
        max_failures_per_ip: int,
        max_failures_per_name: int,
        window_s: float,
        concurrency: int,
    ) -> None:
        self.store = store
        self.limits = {"pair": max_failures, "ip": max_failures_per_ip, "name": max_failures_per_name}
        self.window_s = window_s
        self._checks = threading.BoundedSemaphore(max(1, concurrency))

    @staticmethod
    def _counters(name: str, ip: str) -> dict[str, str]:
        name = name.strip().lower()
        return {"pair": f"{name}\0{ip}", "ip": ip, "name": name}

    def locked_for(self, name: str, ip: str) -> int:
        """Seconds left on a lockout of this name, address or both (0 when not locked)."""
        state = self.store.dashboard()
        wait = 0.0
        for kind, value in self._counters(name, ip).items():
            count, ttl = state.login_failures(kind, value)
            if count >= self.limits[kind]:
                wait = max(wait, ttl)
        return int(wait) + 1 if wait else 0

    def failure(self, name: str, ip: str) -> None:
        state = self.store.dashboard()
        for kind, value in self._counters(name, ip).items():
            state.count_login_failure(kind, value, self.window_s)

    def success(self, name: str, ip: str) -> None:
        self.store.dashboard().clear_login_failures("pair", self._counters(name, ip)["pair"])

    @contextmanager
    def password_check(self) -> Iterator[bool]:
        """Yields True while this process may check a password now, False when enough are running."""
        acquired = self._checks.acquire(blocking=False)
        try:
            yield acquired
        finally:
            if acquired:
                self._checks.release()
