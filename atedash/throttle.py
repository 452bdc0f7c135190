"""Login throttling: after N failures for one (username, IP) within the window, refuse for a while."""

import threading
import time

class LoginThrottle:
    """In-process: after N failures for one (username, IP) within the window, refuse for a while."""

    def __init__(self, max_failures, window_s):
        self.max_failures = max_failures  # ATEDASH_LOGIN_MAX_FAILURES
        self.window_s = window_s  # ATEDASH_LOGIN_LOCKOUT_SECONDS
        self._lock = threading.Lock()
        self._failures = {}  # key -> list of monotonic timestamps
        self._locked_until = {}

    def _key(self, username, ip):
        return (username.strip().lower(), ip or "")

    def locked_for(self, username, ip):
        """Seconds left on a lockout (0 when not locked)."""
        key = self._key(username, ip)
        now = time.monotonic()
        with self._lock:
            until = self._locked_until.get(key, 0)
            if until <= now:
                self._locked_until.pop(key, None)
                return 0
            return int(until - now) + 1

    def failure(self, username, ip):
        key = self._key(username, ip)
        now = time.monotonic()
        window = self.window_s
        with self._lock:
            recent = [t for t in self._failures.get(key, []) if now - t < window]
            recent.append(now)
            if len(recent) >= self.max_failures:
                self._locked_until[key] = now + window
                recent = []
            self._failures[key] = recent
            if len(self._failures) > 10_000:  # bound memory under a spray of names
                self._failures = {k: v for k, v in self._failures.items() if v and now - v[-1] < window}

    def success(self, username, ip):
        key = self._key(username, ip)
        with self._lock:
            self._failures.pop(key, None)
            self._locked_until.pop(key, None)

    def clear(self):
        with self._lock:
            self._failures.clear()
            self._locked_until.clear()
