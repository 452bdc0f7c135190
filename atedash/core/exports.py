"""Downloads of the store (the backup, a reset scope's backup, a walk's matches), bounded so that no
one can take the threads that pages and probes need, or the store's CPU.

- At most ATEDASH_EXPORT_MAX downloads run in the whole fleet, and ATEDASH_EXPORT_MAX_PER_OPERATOR per
  operator: leases in the store (storage.keys.EXPORT_LEASES_KEY) that expire unless renewed while
  the download runs (a process that dies leaves none behind). One more is a 429 that says why.
- At most (GUNICORN_THREADS - 2) per process (at least 1), so that two threads of every process
  stay free for pages and /healthz, whatever the fleet cap.
- A download holds a thread only while its reader reads: the lines go out in chunks, each sent only
  once the socket takes data within ATEDASH_EXPORT_SEND_TIMEOUT seconds (and a send that blocks
  longer fails); a reader that stops reading is cut off and its lease released.
"""

from __future__ import annotations

import logging
import secrets
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from django.http import StreamingHttpResponse

    from atedash.core.request import AuthedHttpRequest
    from storage import DashboardState, Persistence

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
# A lease lives this long past its last renewal; renewed at most this often while lines go out.
LEASE_S = 60.0
RENEW_EVERY_S = 10.0


class ExportRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Lease:
    """One download's place in the fleet's count (and in this process's)."""

    def __init__(self, state: DashboardState, operator: str, slots: threading.BoundedSemaphore) -> None:
        self.state, self.operator = state, operator
        self.token = secrets.token_hex(8)
        self.renewed_at = 0.0
        self.released = False
        self.slots = slots  # this process's (Application.export_slots)

    def take(self) -> None:
        if not self.slots.acquire(blocking=False):
            raise ExportRefused("This process is already sending as many downloads as it may; try again in a minute.")
        try:
            outcome = self.state.take_export_lease(
                self.operator,
                self.token,
                lease_s=LEASE_S,
                fleet_max=settings.ATEDASH_EXPORT_MAX,
                operator_max=settings.ATEDASH_EXPORT_MAX_PER_OPERATOR,
            )
        except BaseException:
            self.slots.release()
            raise
        if outcome != "taken":
            self.slots.release()
            if outcome == "operator":
                raise ExportRefused(
                    f"You have {settings.ATEDASH_EXPORT_MAX_PER_OPERATOR} download(s) of the store running already "
                    "(at most that many per operator); wait for it to finish, or try again in a minute."
                )
            raise ExportRefused(
                f"{settings.ATEDASH_EXPORT_MAX} downloads of the store are running already (at most that many at "
                "once for every operator together); try again in a minute."
            )
        self.renewed_at = time.monotonic()

    def renew(self) -> None:
        now = time.monotonic()
        if now - self.renewed_at < RENEW_EVERY_S:
            return
        self.renewed_at = now
        try:
            self.state.renew_export_lease(self.operator, self.token, lease_s=LEASE_S)
        except Exception as exc:  # noqa: BLE001 - the lease then lapses; the download goes on
            log.warning("export lease not renewed: %s", exc)

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        self.slots.release()
        try:
            self.state.release_export_lease(self.operator, self.token)
        except Exception as exc:  # noqa: BLE001 - it expires by itself
            log.warning("export lease not released (it expires in %d s): %s", LEASE_S, exc)


class LeasedLines:
    """The lines of a download in chunks of about CHUNK_BYTES, while the reader reads; releases the
    lease when the response is closed (finished, cut off, or never started)."""

    def __init__(self, lines: Iterator[str], lease: Lease, sock: socket.socket | None) -> None:
        self.lines, self.lease, self.sock = iter(lines), lease, sock
        self.timeout = settings.ATEDASH_EXPORT_SEND_TIMEOUT
        if sock is not None:
            try:
                sock.settimeout(self.timeout)  # a send that blocks this long fails
            except OSError:
                self.sock = None

    def __iter__(self) -> LeasedLines:
        return self

    def __next__(self) -> bytes:
        if self.lease.released:
            raise StopIteration
        parts, size = [], 0
        for line in self.lines:
            data = line.encode("utf-8") if isinstance(line, str) else line
            parts.append(data)
            size += len(data)
            if size >= CHUNK_BYTES:
                break
        if not parts:
            raise StopIteration
        self.lease.renew()
        if self.sock is not None and not self._writable():
            log.warning("export cut off: the client read nothing for %s s", self.timeout)
            self._cut_off()
            raise StopIteration
        return b"".join(parts)

    def _writable(self) -> bool:
        if self.sock is None:
            return True
        try:
            return bool(select.select([], [self.sock], [], self.timeout)[1])
        except (OSError, ValueError):
            return False

    def _cut_off(self) -> None:
        # Shut down: the server's last writes fail at once (a broken pipe, not a wait).
        if self.sock is None:
            return
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close()

    def __del__(self) -> None:
        # A response dropped without being closed (e.g. never sent) must not keep its place.
        if not self.lease.released:
            self.lease.release()

    def close(self) -> None:
        try:
            close = getattr(self.lines, "close", None)
            if close is not None:
                close()
        finally:
            self.lease.release()


def leased(request: AuthedHttpRequest, p: Persistence, lines: Iterator[str], lease: Lease) -> LeasedLines:
    """The lines of a download under `lease` (taken), for a StreamingHttpResponse."""
    return LeasedLines(lines, lease, request.META.get("gunicorn.socket"))


def attachment(
    request: AuthedHttpRequest, p: Persistence, lines: Iterator[str], lease: Lease, *name: str
) -> StreamingHttpResponse:
    """The lines of a download under ``lease`` (taken) as a JSON-lines attachment named
    atedash-<environment>-<name...>-<UTC time>.jsonl."""
    from django.http import StreamingHttpResponse

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    filename = "-".join(("atedash", settings.ATEDASH_ENVIRONMENT, *name, stamp))
    filename = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in filename)[:200]
    response = StreamingHttpResponse(
        leased(request, p, lines, lease), content_type="application/x-ndjson; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}.jsonl"'
    return response


def take_lease(request: AuthedHttpRequest, state: DashboardState, slots: threading.BoundedSemaphore) -> Lease:
    """A lease for one download by the request's operator; ExportRefused when at a cap."""
    lease = Lease(state, request.operator.name if request.operator is not None else "", slots)
    lease.take()
    return lease
