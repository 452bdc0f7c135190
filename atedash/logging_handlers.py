"""Logging handlers of atedash (no Django imports: loaded while logging is configured)."""

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import TextIO

# > 0 while a management command runs: its stdout is the command's output (a JSON document, a table),
# so the audit lines go to stderr with the other logs (see audit_to_stderr).
_to_stderr = 0


@contextlib.contextmanager
def audit_to_stderr() -> Iterator[None]:
    """Sends the audit trail's lines to stderr for the duration (``manage.py ate``)."""
    global _to_stderr
    _to_stderr += 1
    try:
        yield
    finally:
        _to_stderr -= 1


class StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time of the record (the audit trail's handler), or
    sys.stderr inside ``audit_to_stderr()`` (management commands: stdout is their output).

    A plain StreamHandler binds the stream once at configuration; this one follows sys.stdout, so
    output redirection (gunicorn workers, management commands, test capture) sees every line."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> TextIO:
        return sys.stderr if _to_stderr else sys.stdout

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass
