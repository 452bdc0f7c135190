"""Operators: who is logged in, with which role, and what each role may do.

Operators come from a JSON users file (passwords hashed with Django's hashers, managed with
`manage.py operators`) or, opt-in, from a header set by a trusted auth proxy. There is no user
database: `request.operator` is a small `Operator` built per request by OperatorMiddleware.
"""

import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import wraps
from pathlib import Path

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password

ROLES = ("viewer", "editor", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
SESSION_KEY = "operator"


@dataclass(frozen=True)
class Operator:
    name: str
    role: str
    source: str = "session"  # "session" (users file login) | "header" (trusted proxy)

    def has_role(self, role):
        return ROLE_RANK.get(self.role, -1) >= ROLE_RANK[role]

    @property
    def can_edit(self):
        return self.has_role("editor")

    @property
    def is_admin(self):
        return self.has_role("admin")


# --- the users file --------------------------------------------------------------------------


class UsersFileError(Exception):
    pass


class UsersFile:
    """{"operators": {"<name>": {"role": "...", "password": "<django hash>"}}}, re-read when it changes."""

    def __init__(self, path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._cache_key = None
        self._cache = {}

    def load(self):
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {}
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            if key != self._cache_key:
                try:
                    data = json.loads(self.path.read_text())
                except (OSError, ValueError) as exc:
                    raise UsersFileError(f"cannot read operators file {self.path}: {exc}") from exc
                operators = data.get("operators", {}) if isinstance(data, dict) else {}
                self._cache = {
                    name: entry
                    for name, entry in operators.items()
                    if isinstance(entry, dict) and entry.get("role") in ROLE_RANK
                }
                self._cache_key = key
            return dict(self._cache)

    def save(self, operators):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"operators": operators}, indent=2, sort_keys=True) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=".operators-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(payload)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def add(self, name, role, password, *, replace=False):
        if role not in ROLE_RANK:
            raise UsersFileError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        operators = self.load()
        if name in operators and not replace:
            raise UsersFileError(f"operator {name!r} exists (use --replace to change it)")
        operators[name] = {"role": role, "password": make_password(password)}
        self.save(operators)

    def remove(self, name):
        operators = self.load()
        if name not in operators:
            raise UsersFileError(f"no operator named {name!r}")
        del operators[name]
        self.save(operators)

    def authenticate(self, name, password):
        """The Operator when name and password match, else None (constant work for unknown names)."""
        entry = self.load().get(name)
        if entry is None:
            make_password(password)  # same cost as a real check: no user enumeration by timing
            return None
        if not check_password(password, entry.get("password", "")):
            return None
        return Operator(name=name, role=entry["role"])

    def role_of(self, name):
        entry = self.load().get(name)
        return entry["role"] if entry else None


_users_files = {}
_users_lock = threading.Lock()


def users_file():
    path = str(settings.ATEDASH_USERS_FILE)
    with _users_lock:
        if path not in _users_files:
            _users_files[path] = UsersFile(path)
        return _users_files[path]


# --- who is asking ---------------------------------------------------------------------------


def header_operator(request):
    """The operator named by the trusted proxy header, when that is configured and present."""
    header = settings.ATEDASH_TRUSTED_HEADER
    if not header:
        return None
    name = request.headers.get(header, "").strip()
    if not name:
        return None
    role = settings.ATEDASH_TRUSTED_HEADER_DEFAULT_ROLE
    role_header = settings.ATEDASH_TRUSTED_HEADER_ROLE_HEADER
    if role_header:
        asked = request.headers.get(role_header, "").strip().lower()
        if asked:
            role = asked
    if role not in ROLE_RANK:
        role = "viewer"
    return Operator(name=name, role=role, source="header")


def session_operator(request):
    """The operator of the signed session, with the role the users file gives them now."""
    name = request.session.get(SESSION_KEY)
    if not name:
        return None
    try:
        role = users_file().role_of(name)
    except UsersFileError:
        return None
    if role is None:  # removed from the file since logging in
        return None
    return Operator(name=name, role=role)


def current_operator(request):
    return header_operator(request) or session_operator(request)


# --- view decorators -------------------------------------------------------------------------


def login_exempt(view):
    """Marks a view as reachable without login (only /healthz, /readyz, the login page, static)."""
    view.login_exempt = True
    return view


def role_required(role):
    """The view needs at least `role`; others get the 403 page naming the role needed."""
    if role not in ROLE_RANK:
        raise ValueError(role)

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            operator = getattr(request, "operator", None)
            if operator is None or not operator.has_role(role):
                from atedash.errors import forbidden

                return forbidden(request, f"This needs the {role} role.")
            return view(request, *args, **kwargs)

        wrapped.required_role = role
        return wrapped

    return decorator


# --- login throttling ------------------------------------------------------------------------


class LoginThrottle:
    """In-process: after N failures for one (username, IP) within the window, refuse for a while."""

    def __init__(self):
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
        window = settings.ATEDASH_LOGIN_LOCKOUT_SECONDS
        with self._lock:
            recent = [t for t in self._failures.get(key, []) if now - t < window]
            recent.append(now)
            if len(recent) >= settings.ATEDASH_LOGIN_MAX_FAILURES:
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


throttle = LoginThrottle()


def client_ip(request):
    """The address login throttling counts by: REMOTE_ADDR, or, behind a proxy that appends the
    client's address to a header (ATEDASH_CLIENT_IP_HEADER, e.g. X-Forwarded-For), the last address
    in that header (the one the proxy itself added; earlier ones come from the client)."""
    header = getattr(settings, "ATEDASH_CLIENT_IP_HEADER", "")
    if header:
        value = request.headers.get(header, "")
        last = value.split(",")[-1].strip() if value else ""
        if last:
            return last
    return request.META.get("REMOTE_ADDR", "")
