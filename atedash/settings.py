"""atedash settings: everything comes from the environment, with safe production defaults.

Every ATEDASH_* variable is documented in docs/configuration.md.
"""

from __future__ import annotations

import ipaddress
import math
import os
import secrets
import typing
from collections import Counter
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
# Only for annotations, never names at run time (Django would read the upper-case ones as settings).
if typing.TYPE_CHECKING:
    from collections.abc import Callable

    _N = typing.TypeVar("_N", int, float)  # what a number setting parses to
    _D = typing.TypeVar("_D")  # its default


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    """A yes/no setting; anything but the usual spellings fails loudly (a typo never means "off")."""
    value = env_str(name).lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={os.environ[name]!r} is not a yes/no value (use one of 1/0, true/false, yes/no, on/off)"
    )


def _env_number(name: str, default: _D, parse: Callable[[str], _N], what: str) -> _N | _D:
    value = env_str(name)
    if not value:
        return default
    try:
        return parse(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={os.environ[name]!r} is not {what}") from None


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _env_number(name, default, int, "a whole number")
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={os.environ[name]!r} is too small: at least {minimum}")
    return value


def env_float(name: str, default: float | None, *, minimum: float | None = None) -> float | None:
    value = _env_number(name, default, float, "a number")
    if minimum is not None and value is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={os.environ[name]!r} is too small: at least {minimum:g}")
    return value


# The broadest network a proxy list may name (loopback aside): a /8 of pod addresses trusts every pod
# to rotate X-Forwarded-For past the throttle and forge the audit's address (issue 22, L2).
MAX_PROXY_PREFIX = {4: 16, 6: 48}


def env_networks(name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated addresses or CIDRs (10.2.0.0/24, fd00:1::/64, 127.0.0.1); none broader than
    /16 (IPv4) or /48 (IPv6) but loopback."""
    networks = []
    for item in env_list(name, ""):
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {item!r} is not an address or a CIDR") from None
        widest = MAX_PROXY_PREFIX[network.version]
        if network.prefixlen < widest and not network.is_loopback:
            raise ImproperlyConfigured(
                f"{name}: {item!r} trusts {network.num_addresses:,} addresses as proxies: name only the "
                f"Ingress controller's pods (a /{widest} at the widest)"
            )
        networks.append(network)
    return tuple(networks)


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


# pytest (>= 8.2) exports PYTEST_VERSION; tests get a throwaway key and finder-served static files.
TESTING = "PYTEST_VERSION" in os.environ

DEBUG = env_bool("ATEDASH_DEBUG")


# Values shipped in the repository (deploy/, docs/) as examples: anyone who reads the repository knows
# them, so a key or token equal to one of them is refused, as is a key too short to resist guessing.
PLACEHOLDER_SECRETS = frozenset(
    {"replace-me-with-50-random-characters", "replace-me-too", "replace-me", "change-me", "changeme", "secret"}
)
PLACEHOLDER_MARKS = ("replace-me", "change-me", "changeme", "not-a-secret")
MIN_SECRET_KEY_LENGTH = 50
MIN_METRICS_TOKEN_LENGTH = 32
# A secret must look random: this many bits at least by its characters' frequencies, and no
# repetition or run ("a"*57, "ab"*30, "abcdef..."): see _low_entropy.
MIN_SECRET_BITS = 80
# Where the repository writes example values (the image ships deploy/ and docs/ too, see Dockerfile).
REPOSITORY_TEXTS = ("deploy", "docs", "scripts", "README.md", "Dockerfile", "Makefile")
_GENERATE = "generate a random one (python -c 'import secrets; print(secrets.token_urlsafe(50))')"


def repository_texts() -> list[str]:
    """The text of every file where the repository writes example configuration."""
    texts = []
    for name in REPOSITORY_TEXTS:
        root = BASE_DIR / name
        paths = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in paths:
            try:
                if path.is_file() and path.stat().st_size < 1_000_000:
                    texts.append(path.read_bytes().decode("utf-8"))
            except (OSError, UnicodeDecodeError):
                continue  # screenshots and other binaries
    return texts


def _low_entropy(value: str) -> str | None:
    """Why ``value`` does not look random, or None. Shannon bits over its characters, the share of
    distinct character pairs (repetition), and the share of steps of -1 or +1 (runs)."""
    counts = Counter(value)
    bits = max(0.0, -sum(n * math.log2(n / len(value)) for n in counts.values()))
    if bits < MIN_SECRET_BITS:
        return f"about {bits:.0f} bits of randomness by its characters (at least {MIN_SECRET_BITS})"
    pairs = [value[i : i + 2] for i in range(len(value) - 1)]
    if len(set(pairs)) < len(pairs) / 2:
        return "it repeats itself"
    steps = sum(abs(ord(pair[0]) - ord(pair[1])) == 1 for pair in pairs)
    if steps >= len(pairs) / 2:
        return "it runs through the alphabet"
    return None


def _refuse_weak(name: str, value: str, min_length: int) -> str:
    lowered = value.lower()
    if lowered in PLACEHOLDER_SECRETS or any(mark in lowered for mark in PLACEHOLDER_MARKS):
        raise ImproperlyConfigured(f"{name} is a placeholder from the repository: {_GENERATE}")
    if len(value) < min_length:
        raise ImproperlyConfigured(f"{name} has {len(value)} characters: use at least {min_length} random ones")
    weak = _low_entropy(value)
    if weak:
        raise ImproperlyConfigured(f"{name} is not random enough ({weak}): {_GENERATE}")
    if any(value in text for text in repository_texts()):
        raise ImproperlyConfigured(f"{name} is written in this repository (deploy/, docs/): {_GENERATE}")
    return value


def _refuse_placeholder_password(name: str, url: str) -> str:
    """The store's URL must not carry the repository's example password (``replace-me``)."""
    try:
        password = unquote(urlsplit(url).password or "")
    except ValueError:
        return url  # storage reports a malformed URL with its own words
    lowered = password.lower()
    if password and (
        lowered in PLACEHOLDER_SECRETS
        or any(mark in lowered for mark in PLACEHOLDER_MARKS)
        or any(f":{password}@" in text for text in repository_texts())
    ):
        raise ImproperlyConfigured(f"{name} holds the placeholder password from the repository: set the store's own")
    return url


def _secret_from_file(name: str) -> str:
    """The value of ``<name>_FILE`` (a mounted Secret, a file the compose file generates), or ""."""
    path = env_str(name + "_FILE")
    if not path:
        return ""
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc.strerror}") from None


def _secret_key() -> str:
    key = env_str("ATEDASH_SECRET_KEY")
    if key:
        return _refuse_weak("ATEDASH_SECRET_KEY", key, MIN_SECRET_KEY_LENGTH)
    key = _secret_from_file("ATEDASH_SECRET_KEY")
    if key:
        return _refuse_weak("ATEDASH_SECRET_KEY_FILE", key, MIN_SECRET_KEY_LENGTH)
    if DEBUG or TESTING:
        # Ephemeral: fine for one process under test or debugging, never for a deployment
        # (sessions would not survive a restart, nor be shared between gunicorn workers).
        return "dev-insecure-" + secrets.token_urlsafe(48)
    # Left empty: Django refuses to sign anything, and atedash.wsgi refuses to start.
    return ""


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list("ATEDASH_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("ATEDASH_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "atedash",
]

MIDDLEWARE = [
    # request.app, the application object, for everything after it.
    "atedash.core.middleware.AppMiddleware",
    # /healthz, /readyz, /metrics answer probes and scrapers that name the pod by its IP.
    "atedash.core.middleware.ProbeHostMiddleware",
    # Server-Timing: app;dur (whole Django stack), store;dur (storage calls): see atedash/core/timing.py.
    "atedash.core.timing.ServerTimingMiddleware",
    "atedash.core.middleware.RequestLatencyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "atedash.core.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "atedash.accounts.middleware.OperatorMiddleware",
    "atedash.core.middleware.StoreErrorMiddleware",
]

ROOT_URLCONF = "atedash.urls"
WSGI_APPLICATION = "atedash.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csrf",
                "django.contrib.messages.context_processors.messages",
                "atedash.core.context_processors.banner",
            ],
            "builtins": ["django.templatetags.static", "atedash.templatetags.atedash"],
        },
    }
]

# No database: the store is Redis, reached only through storage/.
DATABASES: dict[str, dict[str, str]] = {}

# Sessions live in a signed cookie; messages in a cookie too.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
SESSION_COOKIE_NAME = "atedash_session"
# A session ends after this long whatever happens (seconds), and after ATEDASH_SESSION_IDLE without a
# request; logout, "sign out everywhere", a password change and removal end it at once (atedash/accounts/sessions.py).
SESSION_COOKIE_AGE = env_int("ATEDASH_SESSION_AGE", 12 * 3600)
ATEDASH_SESSION_IDLE = env_int("ATEDASH_SESSION_IDLE", 3600)
# A logout or a flush ends a copied cookie served by another process within this many seconds:
# each process re-reads the session generation this often, not on every request (0: every request).
ATEDASH_SESSION_RECHECK_SECONDS = env_float("ATEDASH_SESSION_RECHECK_SECONDS", 2.0)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
MESSAGE_STORAGE = "django.contrib.messages.storage.cookie.CookieStorage"
CSRF_COOKIE_NAME = "atedash_csrftoken"
CSRF_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "atedash.core.error_pages.csrf_failure"

# HTTPS. ATEDASH_HTTPS=1 says that operators reach atedash over HTTPS only (directly, or through a
# TLS-terminating proxy named by ATEDASH_PROXY_SSL_HEADER): cookies are always Secure, plain HTTP is
# redirected (except the health endpoints and /metrics, which probes and scrapers call over HTTP),
# and HSTS is sent for a year; each can still be set on its own. Whatever these say, a response to
# a request that came over HTTPS marks its cookies Secure (atedash.core.middleware). Asking for Secure
# cookies, the redirect, or naming the proxy's scheme header says as much: they turn it on too.
_proxy_ssl = env_str("ATEDASH_PROXY_SSL_HEADER")  # e.g. "X-Forwarded-Proto"
HTTPS = env_bool(
    "ATEDASH_HTTPS",
    env_bool("ATEDASH_SECURE_COOKIES") or env_bool("ATEDASH_SSL_REDIRECT") or bool(_proxy_ssl),
)
SECURE_COOKIES = env_bool("ATEDASH_SECURE_COOKIES", HTTPS)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
if _proxy_ssl:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl.upper().replace("-", "_"), "https")
SECURE_SSL_REDIRECT = env_bool("ATEDASH_SSL_REDIRECT", HTTPS)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("ATEDASH_HSTS_SECONDS", 365 * 24 * 3600 if HTTPS else 0)
# The header covers atedash's own host name and the names under it; on by default whenever HSTS is.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("ATEDASH_HSTS_INCLUDE_SUBDOMAINS", SECURE_HSTS_SECONDS > 0)
SECURE_HSTS_PRELOAD = env_bool("ATEDASH_HSTS_PRELOAD", SECURE_HSTS_SECONDS > 0)
# Requests are forms and GETs: anything bigger is refused with a 400 before it is parsed. The biggest
# is the raw editor's save of a record of its limit (atedash.records.forms.RAW_MAX_VALUE, 384 KiB, posted
# with its shown bytes in base64 as multipart: about 900 KiB).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1000 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Password hashers as Django ships them (PBKDF2 first); hashes live in the operators file.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
# Tests serve static files through the finders (below) and collect them nowhere: no STATIC_ROOT
# unless one is given, else whitenoise warns at every start that the directory is missing.
STATIC_ROOT: Path | None = Path(env_str("ATEDASH_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
if TESTING and "ATEDASH_STATIC_ROOT" not in os.environ:
    STATIC_ROOT = None
STATICFILES_DIRS = [BASE_DIR / "static"]
_static_backend = (
    "django.contrib.staticfiles.storage.StaticFilesStorage"
    if TESTING
    else "whitenoise.storage.CompressedManifestStaticFilesStorage"
)
STORAGES = {"staticfiles": {"BACKEND": _static_backend}}
WHITENOISE_USE_FINDERS = DEBUG or TESTING

# --- atedash ---------------------------------------------------------------------------------
ATEDASH_REDIS_URL = _refuse_placeholder_password(
    "ATEDASH_REDIS_URL", env_str("ATEDASH_REDIS_URL", "redis://127.0.0.1:7100")
)
# auto | yes | no (any yes/no spelling is read as yes or no).
ATEDASH_REDIS_CLUSTER = env_str("ATEDASH_REDIS_CLUSTER", "auto").lower()
if ATEDASH_REDIS_CLUSTER != "auto":
    if ATEDASH_REDIS_CLUSTER not in _TRUE | _FALSE:
        raise ImproperlyConfigured(f"ATEDASH_REDIS_CLUSTER={ATEDASH_REDIS_CLUSTER!r} is not one of auto, yes, no")
    ATEDASH_REDIS_CLUSTER = "yes" if ATEDASH_REDIS_CLUSTER in _TRUE else "no"
# Seconds a store command may take before it counts as failed (storage's default: 5). When every node
# hangs, a request that finds out waits about this long once per node the client knows.
ATEDASH_REDIS_TIMEOUT = env_float("ATEDASH_REDIS_TIMEOUT", None) or None
# A save is confirmed to the operator once a replica has it too (at most this long; 0: do not wait).
ATEDASH_REPLICA_ACK_SECONDS = env_float("ATEDASH_REPLICA_ACK_SECONDS", 1.0)
ATEDASH_ENVIRONMENT = env_str("ATEDASH_ENVIRONMENT", "unnamed")
ATEDASH_ALLOW_FLUSH = env_bool("ATEDASH_ALLOW_FLUSH")
ATEDASH_USERS_FILE = Path(env_str("ATEDASH_USERS_FILE", str(BASE_DIR / "var" / "operators.json")))
ATEDASH_TRUSTED_HEADER = env_str("ATEDASH_TRUSTED_HEADER")  # e.g. X-Forwarded-User; off when empty
ATEDASH_TRUSTED_HEADER_ROLE_HEADER = env_str("ATEDASH_TRUSTED_HEADER_ROLE_HEADER")
ATEDASH_TRUSTED_HEADER_DEFAULT_ROLE = env_str("ATEDASH_TRUSTED_HEADER_DEFAULT_ROLE", "viewer")
ATEDASH_LOGIN_MAX_FAILURES = env_int("ATEDASH_LOGIN_MAX_FAILURES", 5)
ATEDASH_LOGIN_LOCKOUT_SECONDS = env_int("ATEDASH_LOGIN_LOCKOUT_SECONDS", 60)
# Proxies whose headers count (CIDRs or addresses): the trusted user/role headers and the client address
# header are read only on requests whose peer (REMOTE_ADDR) is one of them. None by default.
ATEDASH_TRUSTED_PROXIES = env_networks("ATEDASH_TRUSTED_PROXIES")
ATEDASH_CLIENT_IP_HEADER = env_str("ATEDASH_CLIENT_IP_HEADER")  # e.g. X-Forwarded-For behind a proxy
# Login throttling, shared by every process through the store: failures per name and per client
# address within the window; password checks running at once per process (more: 429 at once).
ATEDASH_LOGIN_MAX_FAILURES_PER_IP = env_int("ATEDASH_LOGIN_MAX_FAILURES_PER_IP", 20)
ATEDASH_LOGIN_MAX_FAILURES_PER_NAME = env_int("ATEDASH_LOGIN_MAX_FAILURES_PER_NAME", 50)
ATEDASH_LOGIN_CONCURRENCY = env_int("ATEDASH_LOGIN_CONCURRENCY", 2)
# "Recount now" and "run the check now": at most one per interval for the whole fleet (seconds).
ATEDASH_REFRESH_INTERVAL = env_int("ATEDASH_REFRESH_INTERVAL", 10)
# Longest a request waits for a running count or check (`?wait=1`), seconds: a thread is held meanwhile.
ATEDASH_MAX_WAIT = env_int("ATEDASH_MAX_WAIT", 30)
ATEDASH_SCAN_BUDGET = env_int("ATEDASH_SCAN_BUDGET", 50_000)
# Wall-clock bound of one list page's scan (seconds): it stops like on ATEDASH_SCAN_BUDGET and offers
# "continue", so a rare filter answers in about this time however loaded the machine is.
ATEDASH_SCAN_SECONDS = env_float("ATEDASH_SCAN_SECONDS", 0.5)
# Keys one locks page examines, shared by the primaries: SCAN costs a node ~0.7 µs a key, locks are
# few, so this bounds the page (~10 ms of the nodes at 1M keys); "continue" goes on from there.
ATEDASH_LOCK_SCAN_BUDGET = env_int("ATEDASH_LOCK_SCAN_BUDGET", 15_000, minimum=1)
ATEDASH_STATS_MAX_AGE = env_int("ATEDASH_STATS_MAX_AGE", 30)
ATEDASH_WORKER_LOOKUP_BUDGET = env_int("ATEDASH_WORKER_LOOKUP_BUDGET", 20_000)
# Keys per SCAN step of the whole-store work (counts, checks, walks): smaller steps hold a node for less
# time (its other clients wait less) at the cost of more round trips.
ATEDASH_STORE_STEP_KEYS = env_int("ATEDASH_STORE_STEP_KEYS", 1000, minimum=1)
# Seconds a fleet lease (a walk, a count, a check) outlives its holder's last beat; unset: 6 s for a
# walk, 15 s for a count or a check (docs/fleet.md). A holder beats every second: at least 2.
ATEDASH_FLEET_LEASE_SECONDS = env_float("ATEDASH_FLEET_LEASE_SECONDS", None, minimum=2)
# Shards a count reads at once (0: all): where the nodes share a few cores with the primaries, two
# busy replicas leave the primaries a core (docs/configuration.md, bench/RESULTS.md).
ATEDASH_COUNT_PARALLEL = env_int("ATEDASH_COUNT_PARALLEL", 2, minimum=0)
# Before the fleet's first count, the actor detail page waits this long for it (it never scans).
ATEDASH_FIRST_COUNT_WAIT = env_float("ATEDASH_FIRST_COUNT_WAIT", 0.5)
# Operations toolkit (atedash/ops): audit stream, consistency check cache, /metrics.
ATEDASH_AUDIT_STREAM = env_bool("ATEDASH_AUDIT_STREAM", True)
# About how many entries the audit stream keeps (the audit page says how far back that reaches);
# ATEDASH_AUDIT_STREAM_MAXLEN is its older spelling.
ATEDASH_AUDIT_MAXLEN = env_int(
    "ATEDASH_AUDIT_MAXLEN", env_int("ATEDASH_AUDIT_STREAM_MAXLEN", 100_000, minimum=1), minimum=1
)
# Downloads of the store at once (atedash/core/exports.py): for the whole fleet, per operator, and the
# seconds a download waits for its reader to take data before it is cut off.
ATEDASH_EXPORT_MAX = env_int("ATEDASH_EXPORT_MAX", 2, minimum=1)
ATEDASH_EXPORT_MAX_PER_OPERATOR = env_int("ATEDASH_EXPORT_MAX_PER_OPERATOR", 1, minimum=1)
ATEDASH_EXPORT_SEND_TIMEOUT = env_int("ATEDASH_EXPORT_SEND_TIMEOUT", 20, minimum=1)
ATEDASH_CHECK_MAX_AGE = env_int("ATEDASH_CHECK_MAX_AGE", 300)
# A lock:actor:* lock held longer than this on a SUSPENDED/RUNNING or missing actor is stale
# (storage/check/lockage.py says how its age is known).
ATEDASH_STALE_LOCK_SECONDS = env_int("ATEDASH_STALE_LOCK_SECONDS", 600, minimum=1)
# The longest a record page walks the store for the record's relations (workers claiming an actor...).
ATEDASH_RELATED_SEARCH_SECONDS = env_float("ATEDASH_RELATED_SEARCH_SECONDS", 1.5)
# Up to this many keys in the store, a record page walks for its relations at once (tens of ms);
# above, the walk is a second request (HTMX on load, a link without JS).
ATEDASH_RELATIONS_INLINE_KEYS = env_int("ATEDASH_RELATIONS_INLINE_KEYS", 20_000, minimum=0)
# The longest the header's box searches for an identifier that is not an exact key (atedash/records/lookup.py).
ATEDASH_LOOKUP_SECONDS = env_float("ATEDASH_LOOKUP_SECONDS", 2.5)
ATEDASH_CHECK_WAIT = env_int("ATEDASH_CHECK_WAIT", 5)  # seconds the Consistency page waits for a running check
# A bulk action on more records than this needs their number typed to confirm.
ATEDASH_CONFIRM_THRESHOLD = env_int("ATEDASH_CONFIRM_THRESHOLD", 100, minimum=0)
# The bearer token of Prometheus scrapes; ATEDASH_METRICS_TOKEN_FILE names a file holding it.
ATEDASH_METRICS_TOKEN = env_str("ATEDASH_METRICS_TOKEN") or _secret_from_file("ATEDASH_METRICS_TOKEN")
if ATEDASH_METRICS_TOKEN:
    _refuse_weak("ATEDASH_METRICS_TOKEN", ATEDASH_METRICS_TOKEN, MIN_METRICS_TOKEN_LENGTH)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "audit": {"format": "%(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        # The audit trail is one JSON line per change on stdout (see atedash/accounts/audit.py); on stderr
        # while manage.py ate runs (its stdout is its report: atedash.core.logging_handlers).
        "audit": {"class": "atedash.core.logging_handlers.StdoutHandler", "formatter": "audit"},
    },
    "loggers": {
        "atedash.accounts.audit": {"handlers": ["audit"], "level": "INFO", "propagate": False},
        "atedash": {"handlers": ["console"], "level": env_str("ATEDASH_LOG_LEVEL", "INFO")},
        "django": {"handlers": ["console"], "level": "WARNING"},
    },
}
