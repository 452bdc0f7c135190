"""gunicorn settings for atedash: threads (gthread) share one Redis client per worker process.

Every value can be overridden from the environment (GUNICORN_WORKERS, GUNICORN_THREADS,
GUNICORN_TIMEOUT) or on the command line (e.g. --bind).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gunicorn.arbiter import Arbiter
    from gunicorn.workers.base import Worker

wsgi_app = "atedash.wsgi:application"
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# 16 threads: a filtered list page may run for ATEDASH_SCAN_SECONDS, and the kernel does not balance
# connections between the worker processes (one may hold 10 of 16 keep-alive clients): with fewer
# threads than clients per worker, requests queue behind slow scans (p99 1.2 s instead of 0.7 s for
# 16 clients on rare filters, and fewer pages/s; bench/RESULTS.md, "HTTP"). Threads are cheap here.
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 20
keepalive = 5
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")


def _narrow_proxies(value: str) -> str:
    """The proxies gunicorn trusts: never "*" nor a network wider than a /16 (IPv4) or /48 (IPv6),
    loopback aside (the rule of ATEDASH_TRUSTED_PROXIES in atedash/settings.py; issue 22, L2)."""
    import ipaddress

    for item in (part.strip() for part in value.split(",")):
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SystemExit(f"GUNICORN_FORWARDED_ALLOW_IPS: {item!r} is not an address or a CIDR") from None
        if network.prefixlen < {4: 16, 6: 48}[network.version] and not network.is_loopback:
            raise SystemExit(
                f"GUNICORN_FORWARDED_ALLOW_IPS: {item!r} trusts {network.num_addresses:,} addresses: "
                "name only the Ingress controller's pods"
            )
    return value


# Request headers from a proxy (X-Forwarded-*) are trusted only from these addresses.
forwarded_allow_ips = _narrow_proxies(os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1"))
# A client that sends a huge header must not tie up a thread.
limit_request_field_size = 8190
# gunicorn's runtime control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl), which
# two servers on one machine (make run next to make test's, or two deployments) would fight over.
# Off unless a path is given.
_control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
if _control_socket:
    control_socket = _control_socket
else:
    control_socket_disable = True


# Prometheus metrics across worker processes (atedash/ops/metrics.py): when PROMETHEUS_MULTIPROC_DIR
# is set, every worker writes its samples there and /metrics aggregates them. The directory is
# emptied when the server starts and a dead worker's live gauges are dropped.
def on_starting(server: Arbiter) -> None:
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)


def child_exit(server: Arbiter, worker: Worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
