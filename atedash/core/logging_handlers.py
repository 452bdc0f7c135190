"""Logging handlers of atedash (no Django imports: loaded while logging is configured)."""

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import TextIO

AUDIT_LOGGER = "atedash.accounts.audit"


class StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time of the record (the audit trail's handler), or
    sys.stderr inside ``audit_to_stderr()`` (management commands: stdout is their output).

    A plain StreamHandler binds the stream once at configuration; this one follows sys.stdout, so
    output redirection (gunicorn workers, management commands, test capture) sees every line."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)
        self.to_stderr = 0  # > 0 while a management command runs (nested calls count)

    @property
    def stream(self) -> TextIO:
        return sys.stderr if self.to_stderr else sys.stdout

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


@contextlib.contextmanager
def audit_to_stderr() -> Iterator[None]:
    """Sends the audit trail's lines to stderr for the duration (``manage.py ate``: its stdout is a
    report or one JSON document), from every thread of the process."""
    handlers = [h for h in logging.getLogger(AUDIT_LOGGER).handlers if isinstance(h, StdoutHandler)]
    for handler in handlers:
        handler.to_stderr += 1
    try:
        yield
    finally:
        for handler in handlers:
            handler.to_stderr -= 1
