"""The session check across a fleet: each process re-reads an operator's session generation at most
once per ATEDASH_SESSION_RECHECK_SECONDS (not on every request), and a logout on one server still
ends a copy of the cookie on the other within that bound (docs/security.md)."""

import time

import pytest

from tests.fleet.test_fleet import logged_in, report

pytestmark = pytest.mark.process

RECHECK_S = 2.0
MARGIN_S = 4.0  # a loaded machine: polls and requests may take a while to come round


def test_a_logout_on_one_server_ends_the_cookie_on_the_other_within_the_bound(fleet, capsys):
    a, b = fleet(ATEDASH_SESSION_RECHECK_SECONDS=str(RECHECK_S), GUNICORN_THREADS="4")
    on_a = logged_in(a, "viewer")
    copied = dict(on_a.cookies)
    copy_on_b = b.browser()
    # Served by B (both of its workers, as connections fall): it has read the generation.
    for _ in range(6):
        copy_on_b.conn, copy_on_b.cookies = None, dict(copied)
        assert copy_on_b.request("GET", "/actors/")[0] == 200
    logged_out = time.monotonic()
    assert on_a.post("/logout/")[0] == 302
    ended = None
    while time.monotonic() - logged_out < RECHECK_S + MARGIN_S + 30:
        copy_on_b.cookies = dict(copied)
        status, _ = copy_on_b.request("GET", "/actors/")
        if status == 302:
            ended = time.monotonic() - logged_out
            break
        time.sleep(0.05)  # a poll interval, not a synchronisation
    assert ended is not None, "the copy on B still works long after the logout on A"
    assert ended <= RECHECK_S + MARGIN_S, f"ended after {ended:.1f} s, bound {RECHECK_S} s"
    # Past the bound every worker of either server has re-read (each caches its read at most
    # RECHECK_S): the copy stays ended, whichever worker a new connection reaches.
    while time.monotonic() - logged_out <= RECHECK_S:
        copy_on_b.cookies = dict(copied)
        copy_on_b.request("GET", "/actors/")
        time.sleep(0.05)  # a poll interval, not a synchronisation
    for server in (a, b):
        for _ in range(6):
            stolen = server.browser()
            stolen.cookies = dict(copied)
            assert stolen.request("GET", "/actors/")[0] == 302
    assert not a.tracebacks() and not b.tracebacks()
    report(capsys, f"logout on A; the cookie's copy on B ended after {ended:.2f} s (bound {RECHECK_S} s)")
