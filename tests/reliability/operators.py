"""Simulated operators for the fault tests: threads that read and edit through the Django test client,
recording every response (when, what, status) and every edit the dashboard confirmed.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

from django.test import Client

from tests.dashboard.conftest import login

VERSION_INPUT = re.compile(r'name="version" value="(\d+)"')
# What a page may answer while the store fails over: a page, a redirect after a save, the conflict
# view, or the 503 "store unavailable" page. Never a 500, never anything else.
ACCEPTABLE = {200, 302, 409, 503}


@dataclass
class Outcome:
    at: float  # time.monotonic() when the response arrived
    what: str
    status: int
    body: str = ""


@dataclass
class Confirmed:
    actor_id: str
    version: int  # the version the dashboard stored (read version + 1)
    last_snapshot: str
    at: float  # when the confirmation arrived


@dataclass
class Operator:
    role: str
    outcomes: list[Outcome] = field(default_factory=list)
    confirmed: list[Confirmed] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def __post_init__(self):
        self.client = login(Client(), self.role)
        self._lock = threading.Lock()

    def note(self, what: str, response) -> Outcome:
        body = response.content.decode("utf-8", "replace") if response.status_code != 200 else ""
        outcome = Outcome(time.monotonic(), what, response.status_code, body)
        with self._lock:
            self.outcomes.append(outcome)
        return outcome

    def read(self, url: str):
        response = self.client.get(url)
        self.note(f"GET {url}", response)
        return response

    def edit(self, actor_id: str, snapshot: str) -> str:
        """One edit as an operator makes it: open the form (its version), change a field, save.

        Returns "saved", "conflict", "unavailable" (503 on either step) or "other"."""
        url = f"/actors/{actor_id}/edit/"
        form = self.client.get(url)
        self.note(f"GET {url}", form)
        if form.status_code != 200:
            return "unavailable" if form.status_code == 503 else "other"
        version = int(VERSION_INPUT.search(form.content.decode()).group(1))
        data = {
            "version": version,
            "actor_id": actor_id,
            "actor_template_namespace": "team-a",
            "actor_template_name": "web",
            "status": "SUSPENDED",
            "last_snapshot": snapshot,
        }
        response = self.client.post(url, data)
        outcome = self.note(f"POST {url}", response)
        if response.status_code == 302:
            with self._lock:
                self.confirmed.append(Confirmed(actor_id, version + 1, snapshot, outcome.at))
            return "saved"
        if response.status_code == 409:
            return "conflict"
        return "unavailable" if response.status_code == 503 else "other"


def run_threads(workers, stop: threading.Event) -> list[threading.Thread]:
    """Starts one thread per (operator, loop function); each loops until `stop` is set."""
    threads = []
    for operator, step in workers:

        def loop(operator=operator, step=step):
            n = 0
            while not stop.is_set():
                try:
                    step(operator, n)
                except BaseException as exc:  # noqa: BLE001 - reported by the test
                    operator.errors.append(exc)
                    return
                n += 1

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        threads.append(thread)
    return threads


def error_window(outcomes: list[Outcome], since: float) -> tuple[float, float] | None:
    """(first, last) time after `since` of a response that was not a page, a save or a conflict."""
    failed = [o.at for o in outcomes if o.at >= since and o.status not in (200, 302, 409)]
    return (min(failed), max(failed)) if failed else None
