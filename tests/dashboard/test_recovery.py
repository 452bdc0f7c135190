"""The store goes away and comes back: pages show a 503 meanwhile and recover by themselves.

A small TCP proxy in front of the machine's standalone Redis (the `standalone_client` fixture's
database 15) is closed and reopened; the dashboard keeps the same settings throughout.
"""

import socket
import threading

import pytest

from tests.conftest import STANDALONE_DB
from tests.dashboard.conftest import login


class TcpProxy:
    def __init__(self, upstream):
        self.upstream = upstream
        self.port = None
        self._listener = None
        self._conns = []
        self._lock = threading.Lock()

    def start(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port or 0))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self):
        listener, self._listener = self._listener, None
        try:
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the proxy's thread
        except OSError:
            pass
        listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self._listener is not listener:
                client.close()
                return
            upstream = socket.create_connection(self.upstream)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def proxy(standalone_client, monkeypatch):
    # storage rides out a failover by retrying for ~6 s (tested in tests/storage); a store that is
    # simply gone needs no such patience here.
    monkeypatch.setattr("storage.topology._RETRY_DELAYS", (0.01,))
    # During an outage the dashboard probes the store at most once per PROBE_INTERVAL_S (1 s); here
    # every request probes, so the first request after the store is back must succeed.
    monkeypatch.setattr("atedash.core.store.PROBE_INTERVAL_S", 0, raising=False)
    proxy = TcpProxy(("127.0.0.1", 6379))
    proxy.start()
    yield proxy
    if proxy._listener is not None:
        proxy.stop()


def test_pages_recover_by_themselves(viewer, settings, proxy, standalone_client, page_html):
    settings.ATEDASH_REDIS_URL = f"redis://127.0.0.1:{proxy.port}/{STANDALONE_DB}"
    settings.ATEDASH_REDIS_CLUSTER = "no"
    standalone_client.set("actor:x-1", b'{"actorId":"x-1","version":"1","status":"STATUS_SUSPENDED"}')
    # A session belongs to its store (its sessions epoch): signed in anew on this one.
    login(viewer, "viewer")
    response = viewer.get("/actors/")
    assert response.status_code == 200 and 'data-actor-id="x-1"' in page_html(response)

    proxy.stop()
    response = viewer.get("/actors/")
    assert response.status_code == 503
    assert f"127.0.0.1:{proxy.port}" in page_html(response)
    htmx = viewer.get("/actors/?size=25", headers={"HX-Request": "true", "HX-Target": "actors-results"})
    assert htmx.status_code == 503
    fragment = page_html(htmx)
    # The fragment takes the place of the results and keeps polling until the store is back.
    assert 'id="actors-results"' in fragment and 'hx-trigger="every 5s"' in fragment
    assert viewer.get("/readyz").status_code == 200  # it serves the outage page: stays in the Service

    proxy.start()
    response = viewer.get("/actors/")
    assert response.status_code == 200 and 'data-actor-id="x-1"' in page_html(response)
    ready = viewer.get("/readyz")
    assert ready.status_code == 503 or ready.json()["ready"] is True
