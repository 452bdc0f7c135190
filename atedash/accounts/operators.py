"""Operators and their roles, and the users file that keeps them (hashed passwords).

{"operators": {"<name>": {"role": "...", "password": "<django hash>"}}}, managed with
`manage.py operators`; the application object (atedash/core/app.py) holds the process's UsersFile.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.auth.hashers import check_password, make_password

ROLES = ("viewer", "editor", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
# An operator's entry in the users file: {"role": "...", "password": "<django hash>"}.
Entry = dict[str, Any]


@dataclass(frozen=True)
class Operator:
    name: str
    role: str
    source: str = "session"  # "session" (users file login) | "header" (trusted proxy)

    def has_role(self, role: str) -> bool:
        return ROLE_RANK.get(self.role, -1) >= ROLE_RANK[role]

    @property
    def can_edit(self) -> bool:
        return self.has_role("editor")

    @property
    def is_admin(self) -> bool:
        return self.has_role("admin")


# --- the users file --------------------------------------------------------------------------


class UsersFileError(Exception):
    pass


class UsersFile:
    """{"operators": {"<name>": {"role": "...", "password": "<django hash>"}}}, re-read when it changes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._cache_key: tuple[int, int, int] | None = None  # the file's (mtime_ns, size, inode)
        self._cache: dict[str, Entry] = {}

    def load(self) -> dict[str, Entry]:
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

    def save(self, operators: dict[str, Entry]) -> None:
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

    def add(self, name: str, role: str, password: str, *, replace: bool = False) -> None:
        if role not in ROLE_RANK:
            raise UsersFileError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        operators = self.load()
        if name in operators and not replace:
            raise UsersFileError(f"operator {name!r} exists (use --replace to change it)")
        operators[name] = {"role": role, "password": make_password(password)}
        self.save(operators)

    def remove(self, name: str) -> None:
        operators = self.load()
        if name not in operators:
            raise UsersFileError(f"no operator named {name!r}")
        del operators[name]
        self.save(operators)

    def authenticate(self, name: str, password: str) -> Operator | None:
        """The Operator when name and password match, else None (constant work for unknown names)."""
        entry = self.load().get(name)
        if entry is None:
            make_password(password)  # same cost as a real check: no user enumeration by timing
            return None
        if not check_password(password, entry.get("password", "")):
            return None
        return Operator(name=name, role=entry["role"])

    def role_of(self, name: str) -> str | None:
        entry = self.load().get(name)
        return entry["role"] if entry else None
