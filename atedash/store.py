"""The one Redis client of this process, wrapped in storage.Persistence.

Built lazily on first use from settings.ATEDASH_REDIS_URL (thread-safe), rebuilt after the store
was unreachable, and reset when a test changes the URL.
"""

import threading
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

_lock = threading.Lock()
_persistence = None


def _cluster_flag():
    value = settings.ATEDASH_REDIS_CLUSTER
    if value in {"yes", "true", "1", "on"}:
        return True
    if value in {"no", "false", "0", "off"}:
        return False
    return None  # auto-detect


def get_persistence():
    """The process-wide storage.Persistence (raises redis errors when the store is unreachable)."""
    global _persistence
    persistence = _persistence
    if persistence is not None:
        return persistence
    with _lock:
        if _persistence is None:
            import storage

            client = storage.connect(settings.ATEDASH_REDIS_URL, cluster=_cluster_flag())
            _persistence = storage.Persistence(client)
        return _persistence


def reset(*, close=True):
    """Forget the client (the next call builds a new one)."""
    global _persistence
    with _lock:
        persistence, _persistence = _persistence, None
    if persistence is not None and close:
        client = getattr(persistence, "client", None) or getattr(persistence, "_client", None)
        try:
            if client is not None:
                client.close()
        except Exception:  # noqa: BLE001 - closing a broken client must never fail a request
            pass


def connection_lost():
    """Called when the store was unreachable: the next request reconnects from scratch.

    The old client is not closed here: other threads may still be using it (they fail or
    succeed on their own); it is garbage-collected once they are done.
    """
    reset(close=False)


def store_address():
    """The store's address for banners: redis://host:port without user or password."""
    url = settings.ATEDASH_REDIS_URL
    try:
        parts = urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path if parts.path not in ("", "/") else "", "", ""))
    except ValueError:
        return "(invalid ATEDASH_REDIS_URL)"


@receiver(setting_changed)
def _on_setting_changed(setting, **kwargs):
    if setting in {"ATEDASH_REDIS_URL", "ATEDASH_REDIS_CLUSTER"}:
        reset()
        from atedash import stats

        stats.reset()
