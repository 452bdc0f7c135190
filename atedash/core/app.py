"""The application object: everything a process shares between requests, in one place.

Built from the settings in AppConfig.ready() (atedash/apps.py), rebuilt when a test changes a setting
it was built from, and reached through `current_app()`. Nothing else in atedash/ keeps mutable state
at module level: the store connection and its outage probe, the background caches, the login
throttle, the users file, the metrics registry all live here, so a test gets a fresh set of them by
building a fresh Application.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.apps import apps
from django.conf import LazySettings

from atedash.accounts.operators import UsersFile
from atedash.accounts.stored_sessions import StoredSessions
from atedash.accounts.throttle import LoginThrottle
from atedash.background.check import CheckCache
from atedash.background.counts import StatsCache
from atedash.background.matches import WalkRegistry
from atedash.core.store import StoreConnection, cluster_flag
from atedash.ops.metrics import Metrics

# Settings the application is built from: changing one (tests do) builds a new application.
SETTINGS = frozenset(
    {
        "ATEDASH_REDIS_URL",
        "ATEDASH_REDIS_CLUSTER",
        "ATEDASH_REDIS_TIMEOUT",
        "ATEDASH_REPLICA_ACK_SECONDS",
        "ATEDASH_STATS_MAX_AGE",
        "ATEDASH_CHECK_MAX_AGE",
        "ATEDASH_USERS_FILE",
        "ATEDASH_LOGIN_MAX_FAILURES",
        "ATEDASH_LOGIN_LOCKOUT_SECONDS",
        "ATEDASH_LOGIN_MAX_FAILURES_PER_IP",
        "ATEDASH_LOGIN_MAX_FAILURES_PER_NAME",
        "ATEDASH_LOGIN_CONCURRENCY",
        "ATEDASH_REFRESH_INTERVAL",
        "ATEDASH_STORE_STEP_KEYS",
        "ATEDASH_FLEET_LEASE_SECONDS",
        "ATEDASH_COUNT_PARALLEL",
        "ATEDASH_SESSION_RECHECK_SECONDS",
    }
)
# How long closing an application waits for its background computations (a store walk).
CLOSE_WAIT_S = 60


def export_slots() -> threading.BoundedSemaphore:
    """This process's places for downloads (the application keeps it): two threads stay free."""
    try:
        threads = int(os.environ.get("GUNICORN_THREADS", "16"))
    except ValueError:
        threads = 16
    return threading.BoundedSemaphore(max(1, threads - 2))


class Application:
    def __init__(self, settings: LazySettings) -> None:
        # Shard tasks of every store walk (storage.topology), shared by every Persistence of this app.
        self.shard_executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="storage-shard")
        self.store = StoreConnection(
            settings.ATEDASH_REDIS_URL,
            cluster=cluster_flag(settings.ATEDASH_REDIS_CLUSTER),
            timeout=settings.ATEDASH_REDIS_TIMEOUT,
            replica_ack_seconds=settings.ATEDASH_REPLICA_ACK_SECONDS,
            executor=self.shard_executor,
        )
        self.stats = StatsCache(self.store, max_age=settings.ATEDASH_STATS_MAX_AGE)
        self.stats.step_keys = settings.ATEDASH_STORE_STEP_KEYS
        self.stats.parallel = settings.ATEDASH_COUNT_PARALLEL
        self.checks = CheckCache(self.store, max_age=settings.ATEDASH_CHECK_MAX_AGE)
        self.checks.step_keys = settings.ATEDASH_STORE_STEP_KEYS
        lease_s = settings.ATEDASH_FLEET_LEASE_SECONDS  # None: each job's own default
        if lease_s is not None:
            self.stats.lease_ttl_s = self.checks.lease_ttl_s = lease_s
        self.users = UsersFile(settings.ATEDASH_USERS_FILE)
        # Operators' session epoch and generation, re-read from the store every few seconds.
        self.sessions = StoredSessions(settings.ATEDASH_SESSION_RECHECK_SECONDS or 0.0)
        self.throttle = LoginThrottle(
            self.store,
            max_failures=settings.ATEDASH_LOGIN_MAX_FAILURES,
            max_failures_per_ip=settings.ATEDASH_LOGIN_MAX_FAILURES_PER_IP,
            max_failures_per_name=settings.ATEDASH_LOGIN_MAX_FAILURES_PER_NAME,
            window_s=settings.ATEDASH_LOGIN_LOCKOUT_SECONDS,
            concurrency=settings.ATEDASH_LOGIN_CONCURRENCY,
        )
        self.metrics = Metrics(self.stats, self.checks, self.store)
        # "Show all matches": full-store walks, one at a time in the fleet (atedash/background/matches.py).
        self.walks = WalkRegistry(
            self.store.persistence,
            lambda: self.store.dashboard().fleet,
            step_keys=settings.ATEDASH_STORE_STEP_KEYS,
            lease_ttl_s=lease_s,
        )
        self.refresh_interval_s = settings.ATEDASH_REFRESH_INTERVAL
        # Downloads of the store this process sends at once (atedash/core/exports.py).
        self.export_slots = export_slots()

    def claim_refresh(self, what: str) -> bool:
        """True when a forced recount or check of `what` may start now: at most one per
        ATEDASH_REFRESH_INTERVAL for the whole fleet (the claim lives in the store)."""
        return self.store.dashboard().claim_refresh(what, self.refresh_interval_s)

    def records_changed(self, *, recount: bool = False) -> None:
        """Records changed through atedash: the fleet's consistency report predates the change; with
        ``recount`` (a flush, a repair) the fleet's counts are due too."""
        self.checks.invalidate()
        if recount:
            self.stats.reset()

    def close(self) -> None:
        """Waits for running background computations, then closes the store connection."""
        self.walks.close(timeout=CLOSE_WAIT_S)
        for computation in (self.stats, self.checks):
            computation.join_local(timeout=CLOSE_WAIT_S)
        self.store.close()
        self.shard_executor.shutdown(wait=False, cancel_futures=True)


def current_app() -> Application:
    """This process's application object (built when Django started)."""
    # An AtedashConfig (atedash/apps.py), which imports this module: not imported back for its type.
    config: Any = apps.get_app_config("atedash")
    return config.application
