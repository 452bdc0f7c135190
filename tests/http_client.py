"""A plain HTTP client that behaves like one browser tab: a keep-alive connection, cookies, and
headers sent with every request (e.g. an auth proxy's), for tests against gunicorn as shipped."""

from __future__ import annotations

import http.client
import re
from http.cookies import SimpleCookie
from urllib.parse import urlencode

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Browser:
    def __init__(self, port: int, headers: dict | None = None):
        self.port = port
        self.headers = {"Host": "127.0.0.1", **(headers or {})}
        self.cookies: dict[str, str] = {}
        self.conn = None
        self.headers_of_last = None  # the last response's headers (Location of a redirect)

    def request(self, method, path, form=None, headers=None):
        headers = {**self.headers, **(headers or {})}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"http://127.0.0.1:{self.port}{path}"
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                text = response.read().decode()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # gunicorn closed an idle keep-alive connection; a browser would reconnect too.
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        self.headers_of_last = response.headers
        for header in response.headers.get_all("Set-Cookie") or []:
            for key, morsel in SimpleCookie(header).items():
                if morsel.value:
                    self.cookies[key] = morsel.value
                else:  # deleted (e.g. the session cookie at logout)
                    self.cookies.pop(key, None)
        return response.status, text

    def close(self):
        """Closes the keep-alive connection (the next request opens another)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def csrf(self, path="/login/"):
        """The CSRF token of a form page (its cookie is set by the same response)."""
        return CSRF_INPUT.search(self.request("GET", path)[1]).group(1)

    def login(self, name, password):
        form = {"username": name, "password": password, "csrfmiddlewaretoken": self.csrf()}
        return self.request("POST", "/login/", form)[0]

    def post(self, path, form=None):
        token = self.cookies.get("atedash_csrftoken") or self.csrf()
        return self.request("POST", path, {**(form or {}), "csrfmiddlewaretoken": token})
