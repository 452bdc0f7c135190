"""Logging handlers of atedash (no Django imports: loaded while logging is configured)."""

import logging
import sys
from typing import TextIO


class StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time of the record (the audit trail's handler).

    A plain StreamHandler binds the stream once at configuration; this one follows sys.stdout, so
    output redirection (gunicorn workers, management commands, test capture) sees every line."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass
