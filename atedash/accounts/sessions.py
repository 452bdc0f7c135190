"""Operator sessions: what the signed session cookie carries, and when it stops counting.

The cookie is signed (Django's signed_cookies backend) but a copy of it would otherwise work for its
whole lifetime, so every request checks that the session
- is younger than SESSION_COOKIE_AGE (lifetime) and was used within ATEDASH_SESSION_IDLE (idle timeout);
- names an operator the users file still has, with the password it had at login (a fingerprint of
  the stored hash: a password change, or removal and re-adding, ends every session);
- carries the operator's session generation, kept in the store under atedash's own prefix and bumped
  by logout and "sign out everywhere" (and by `manage.py operators` when it can reach the store);
- carries the store's sessions epoch (storage.keys.SESSIONS_EPOCH_KEY), a random value drawn on first
  use: a flush removes it with the generations, and a new one is drawn, so that every cookie signed
  before a flush stops counting (a missing generation reads as 0: it must not revive a revoked one).
While the store cannot be read the generation is not checked: every page but the login page needs
the store and answers 503 then anyway.

The epoch and the generation are read from the store once per ATEDASH_SESSION_RECHECK_SECONDS per
operator and process (`atedash/accounts/stored_sessions.py`), not on every request (two round trips each): a logout or a
flush ends a copy of the cookie served by another process within that many seconds, at once on the
process that served the logout (docs/security.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare, salted_hmac

from atedash.accounts.operators import Operator, UsersFileError
from storage.errors import is_store_unavailable

if TYPE_CHECKING:
    from atedash.core.app import Application

SESSION_KEY = "operator"
PASSWORD_KEY = "operator_password"
GENERATION_KEY = "operator_generation"
EPOCH_KEY = "store_epoch"
LOGIN_AT_KEY = "login_at"
SEEN_AT_KEY = "seen_at"
# The idle clock is moved forward at most this often (each move re-signs the cookie).
SEEN_RESOLUTION_S = 60


def password_fingerprint(password_hash: str) -> str:
    return salted_hmac("atedash.accounts.sessions.password", password_hash, algorithm="sha256").hexdigest()[:32]


def start(request: HttpRequest, operator: Operator, app: Application) -> None:
    """A new session for `operator` (who just proved their password)."""
    entry = app.users.load().get(operator.name) or {}
    now = time.time()
    request.session.cycle_key()
    request.session[SESSION_KEY] = operator.name
    request.session[PASSWORD_KEY] = password_fingerprint(entry.get("password", ""))
    # Read anew (not from the table): the session must carry the generation as stored now.
    app.sessions.forget(operator.name)
    request.session[EPOCH_KEY], request.session[GENERATION_KEY] = app.sessions.get(operator.name, _reader(app))
    request.session[LOGIN_AT_KEY] = now
    request.session[SEEN_AT_KEY] = now


def end_everywhere(name: str, app: Application) -> None:
    """Every session of `name`, in every browser, ends (the next request of each is logged out)."""
    app.store.dashboard().end_sessions(name)
    app.sessions.forget(name)  # this process at once; the others within ATEDASH_SESSION_RECHECK_SECONDS


def operator_of(request: HttpRequest, app: Application) -> Operator | None:
    """The operator of the request's session while it is valid, else None (the session is emptied)."""
    session = request.session
    name = session.get(SESSION_KEY)
    if not name:
        return None
    operator = _valid_operator(session, name, app)
    if operator is None:
        session.flush()
    return operator


def _valid_operator(session: SessionBase, name: object, app: Application) -> Operator | None:
    now = time.time()
    login_at, seen_at = session.get(LOGIN_AT_KEY), session.get(SEEN_AT_KEY)
    if not isinstance(name, str) or not isinstance(login_at, (int, float)) or not isinstance(seen_at, (int, float)):
        return None  # a session from before these checks, or not one we wrote
    if now - login_at > settings.SESSION_COOKIE_AGE or now - seen_at > settings.ATEDASH_SESSION_IDLE:
        return None
    try:
        entry = app.users.load().get(name)
    except UsersFileError:
        return None
    if entry is None:  # removed from the file since logging in
        return None
    fingerprint = session.get(PASSWORD_KEY)
    if not isinstance(fingerprint, str) or not constant_time_compare(
        fingerprint, password_fingerprint(entry.get("password", ""))
    ):
        return None
    stored = _stored(name, app)
    if stored is not None and not _current(session, *stored):
        # What this process read may be a few seconds old (a login elsewhere since a flush): the
        # store decides. Only a cookie that no longer counts pays this read.
        app.sessions.forget(name)
        stored = _stored(name, app)
        if stored is not None and not _current(session, *stored):
            return None
    if now - seen_at > SEEN_RESOLUTION_S:
        session[SEEN_AT_KEY] = now
    return Operator(name=name, role=entry["role"])


def _current(session: SessionBase, epoch: str, generation: int) -> bool:
    """The session carries the store's epoch (signed after its last flush) and the generation."""
    signed = session.get(EPOCH_KEY)
    if not isinstance(signed, str) or not constant_time_compare(signed, epoch):
        return False  # signed before a flush of the store (or before epochs existed)
    return session.get(GENERATION_KEY) == generation


def _reader(app: Application) -> Callable[[str], tuple[str, int]]:
    """What the store says now: (its sessions epoch, the operator's generation)."""
    return lambda name: (_epoch(app), app.store.dashboard().session_generation(name))


def _epoch(app: Application) -> str:
    # Kept past the longest session (renewed at each use): it never lapses under a live cookie.
    return app.store.dashboard().sessions_epoch(2 * settings.SESSION_COOKIE_AGE + 3600)


def _stored(name: str, app: Application) -> tuple[str, int] | None:
    """(the store's sessions epoch, the operator's generation); None while the store cannot be read."""
    try:
        return app.sessions.get(name, _reader(app))
    except Exception as exc:
        if is_store_unavailable(exc):
            return None
        raise
