"""Django settings, all from environment variables with documented defaults (see README).

With no variables set this is the embedded default: SQLite under ./var, no Redis (Celery tasks
run eagerly, in-memory channel layer), simnet as the Lightning node, demo mode on.
"""

from __future__ import annotations

import os
from pathlib import Path

from csp.constants import NONE, SELF

from config.env import database_from_url, env_bool, env_list, secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("FORUM_DATA_DIR", BASE_DIR / "var")).resolve()

SECRET_KEY = secret_key(DATA_DIR)
DEBUG = env_bool("DEBUG", default=False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "forum",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.HeadAsGetMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "forum.context_processors.site",
            ],
        },
    },
]

# --- Deployment behind TLS (docs/security.md) -----------------------------------------------
# All off by default: the embedded default serves plain http://127.0.0.1:8000, where a Secure
# cookie is never sent back (no CSRF, no moderator login), and HSTS or a redirect to https would
# lock the browser out of it. Behind a TLS-terminating proxy turn them on; with all of them set
# `manage.py check --deploy` reports no issues (tests/foundation/test_deploy_settings.py).
if env_bool("TRUST_X_FORWARDED_PROTO", default=False):
    # Only behind a proxy that sets X-Forwarded-Proto itself and drops what clients send:
    # otherwise any client could claim https.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=False)
# Load balancers probe health over plain http inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)

# Content-Security-Policy (django-csp): scripts and styles from this site's own files only, so
# nothing injected into a page (a post, a name) can run. No inline <script>, on* handler or
# style="" in templates. Browser extensions (NIP-07 signers, WebLN wallets) are not affected:
# they inject their providers from their own extension origin (docs/security.md).
# connect-src also gets ws:// and wss:// of the request's host, per request
# (config.middleware.ContentSecurityPolicyMiddleware).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'forum.sqlite3'}"
DATABASES = {"default": database_from_url(DATABASE_URL, BASE_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker, result backend, channel layer, cache ------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": os.environ.get("CHANNELS_PREFIX", "forum")},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        },
        # Public pages, post cards and their versions (forum.services.versions), shared by
        # every web process; entries are keyed by version, so no expiry is needed for
        # correctness (the per-entry timeouts only return memory).
        "pages": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "pages",
        },
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        # In-process: right for the embedded default's single process (see docs/operations.md).
        "pages": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "pages",
            "OPTIONS": {"MAX_ENTRIES": 20_000},
        },
    }

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
# Without a broker the embedded default runs every task in-process, at once.
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A task is acknowledged when it has run, not when it is taken: a worker killed mid-task leaves
# it unacknowledged. A pool child that dies (OOM, SIGKILL) gets its task re-queued at once by
# the worker's main process (reject on worker lost); if the main process dies too, the broker
# hands its taken tasks out again after the visibility timeout. Every task is idempotent, so a
# task that runs longer than that timeout and is handed out twice is only wasted work.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Keep it above the longest countdown a task is retried with (`forum.tasks`: 10 s at most).
BROKER_VISIBILITY_TIMEOUT_SECONDS = int(os.environ.get("BROKER_VISIBILITY_TIMEOUT_SECONDS", "30"))
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": BROKER_VISIBILITY_TIMEOUT_SECONDS,
    # Every worker looks for such tasks every 5 s (kombu's default is every 10 x 10 s), and a
    # worker killed during that look holds its lock for a minute at most (default 5 minutes).
    "unacked_restore_interval": 5,
    "unacked_restore_throttle": 1,
    "unacked_mutex_expire": 60,
}
# Celery's Django fixup closes every database connection before and after each task unless this
# is set, so every task (two per post) opened a new PostgreSQL session and CONN_MAX_AGE never
# applied. With it the fixup leaves them alone, and `config.celery` closes them the way Django
# does between requests (CONN_MAX_AGE, health check, broken or left in a transaction).
CELERY_DB_REUSE_MAX = 2**62
# Periodic work (the ledger sweep, room expiry, ...) is registered by the apps that own it.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}
SWEEP_INTERVAL_SECONDS = int(os.environ.get("SWEEP_INTERVAL_SECONDS", "30"))

# --- Forum core: listener, reconciliation, sweep ---------------------------------------------
CELERY_BEAT_SCHEDULE["forum-sweep"] = {"task": "forum.sweep", "schedule": SWEEP_INTERVAL_SECONDS}
# A listener that stops renewing its lease for this long is presumed dead; another may take over.
LISTENER_LEASE_SECONDS = float(os.environ.get("LISTENER_LEASE_SECONDS", "15"))
# How long a reply may wait for its thread/parent, and a multipart set for its missing parts.
ORPHAN_TIMEOUT_SECONDS = int(os.environ.get("ORPHAN_TIMEOUT_SECONDS", "3600"))
PARTS_TIMEOUT_SECONDS = int(os.environ.get("PARTS_TIMEOUT_SECONDS", "3600"))
# A payment whose reconciliation failed this often is left for an operator (reconcile_error).
RECONCILE_MAX_ATTEMPTS = int(os.environ.get("RECONCILE_MAX_ATTEMPTS", "8"))
# The pipeline's batches (docs/forum-core.md): ledger rows per reconcile transaction, and
# settled invoices per listener transaction (group commit).
RECONCILE_BATCH_SIZE = int(os.environ.get("RECONCILE_BATCH_SIZE", "1000"))
LISTENER_BATCH_SIZE = int(os.environ.get("LISTENER_BATCH_SIZE", "1000"))
# The sweep compares the ledger with the node's latest N invoices (rebuild_from_node reads all).
SWEEP_NODE_LOOKBACK = int(os.environ.get("SWEEP_NODE_LOOKBACK", "2000"))
# A ledger row still unreconciled this long after it was written is queued again.
SWEEP_REQUEUE_AFTER_SECONDS = int(os.environ.get("SWEEP_REQUEUE_AFTER_SECONDS", "60"))

# --- Private rooms and tips (docs/rooms-and-tips.md) -----------------------------------------
# Renting a room: its price, and the lifetime a room-create event gets when it names none
# (or names more than the maximum: rooms are meant to be short-lived).
ROOM_PRICE_SATS = int(os.environ.get("ROOM_PRICE_SATS", "10000"))
ROOM_LIFETIME_SECONDS = int(os.environ.get("ROOM_LIFETIME_SECONDS", str(24 * 3600)))
ROOM_MAX_LIFETIME_SECONDS = int(os.environ.get("ROOM_MAX_LIFETIME_SECONDS", str(7 * 24 * 3600)))
# Password guesses per client and room within ROOM_UNLOCK_WINDOW_SECONDS (then HTTP 429).
ROOM_UNLOCK_MAX_FAILURES = int(os.environ.get("ROOM_UNLOCK_MAX_FAILURES", "10"))
ROOM_UNLOCK_WINDOW_SECONDS = int(os.environ.get("ROOM_UNLOCK_WINDOW_SECONDS", "300"))
# Room password checks (scrypt, 16 MiB each at the default cost) running at once per process.
ROOM_UNLOCK_CONCURRENCY = int(os.environ.get("ROOM_UNLOCK_CONCURRENCY", "2"))
# The forum keeps this share of a tip; the rest goes to the author's node (their `ln` tag).
TIP_FORUM_SHARE_PERCENT = int(os.environ.get("TIP_FORUM_SHARE_PERCENT", "10"))
# A forward that fails is tried again after 60 s, 120 s, 240 s ... (at most an hour apart).
TIP_FORWARD_MAX_ATTEMPTS = int(os.environ.get("TIP_FORWARD_MAX_ATTEMPTS", "8"))
TIP_FORWARD_RETRY_SECONDS = int(os.environ.get("TIP_FORWARD_RETRY_SECONDS", "60"))
TIP_FORWARD_RETRY_MAX_SECONDS = int(os.environ.get("TIP_FORWARD_RETRY_MAX_SECONDS", "3600"))
# Tips by invoice, LNURL-pay and zaps (docs/rooms-and-tips.md): the amounts a pay endpoint takes,
# and how many tip invoices one client address may ask for in the window.
TIP_MIN_MSAT = int(os.environ.get("TIP_MIN_MSAT", "1000"))
TIP_MAX_MSAT = int(os.environ.get("TIP_MAX_MSAT", str(1_000_000 * 1000)))
TIP_INVOICE_MAX_PER_CLIENT = int(os.environ.get("TIP_INVOICE_MAX_PER_CLIENT", "30"))
# A lud16 forward: the remote LNURL server's answers are read with this timeout and size cap.
LNURL_FETCH_TIMEOUT_SECONDS = float(os.environ.get("LNURL_FETCH_TIMEOUT_SECONDS", "10"))
LNURL_FETCH_MAX_BYTES = int(os.environ.get("LNURL_FETCH_MAX_BYTES", "65536"))
# Let a Lightning Address point at a private or loopback host (tests, closed networks only).
LNURL_ALLOW_PRIVATE = env_bool("LNURL_ALLOW_PRIVATE", False)
# The relay's own Nostr key (signs zap receipts); derived from SECRET_KEY when unset.
RELAY_NOSTR_SECRET_KEY = os.environ.get("RELAY_NOSTR_SECRET_KEY", "")
# Room expiry and due tip forwards are checked this often (beat, and a thread when embedded).
UPKEEP_INTERVAL_SECONDS = int(os.environ.get("UPKEEP_INTERVAL_SECONDS", "30"))
CELERY_BEAT_SCHEDULE["forum-rooms-destroy"] = {
    "task": "forum.rooms_destroy_expired",
    "schedule": UPKEEP_INTERVAL_SECONDS,
}
CELERY_BEAT_SCHEDULE["forum-tips-forward"] = {
    "task": "forum.tips_forward_due",
    "schedule": UPKEEP_INTERVAL_SECONDS,
}

# --- Profiles (kind 0) and NIP-05 (docs/community.md) ----------------------------------------
# An identifier name@domain is checked against https://domain/.well-known/nostr.json with this
# timeout and size cap, then again after NIP05_RECHECK_SECONDS. NIP05_ALLOW_HTTP: plain http
# (tests and local setups only).
NIP05_TIMEOUT_SECONDS = float(os.environ.get("NIP05_TIMEOUT_SECONDS", "5"))
NIP05_MAX_BYTES = int(os.environ.get("NIP05_MAX_BYTES", "65536"))
NIP05_RECHECK_SECONDS = int(os.environ.get("NIP05_RECHECK_SECONDS", str(24 * 3600)))
NIP05_ALLOW_HTTP = env_bool("NIP05_ALLOW_HTTP", False)
# NIP-57: zap receipts also go to the relays the zap request named (best effort, once each).
ZAP_RELAY_PUBLISH = env_bool("ZAP_RELAY_PUBLISH", True)
ZAP_RELAY_TIMEOUT_SECONDS = float(os.environ.get("ZAP_RELAY_TIMEOUT_SECONDS", "5"))
CELERY_BEAT_SCHEDULE["forum-zap-receipts-relays"] = {
    "task": "forum.zap_receipts_publish_due",
    "schedule": UPKEEP_INTERVAL_SECONDS,
}
CELERY_BEAT_SCHEDULE["forum-nip05-recheck"] = {
    "task": "forum.nip05_recheck_due",
    "schedule": UPKEEP_INTERVAL_SECONDS * 20,
}

# --- Lightning ------------------------------------------------------------------------------
# A real lnd: LND_GRPC_HOST + LND_TLS_CERT + LND_MACAROON (paths), or LND_CONNECT (lndconnect URI).
# With none of them, the embedded simnet's "forum" node is used.
LND_GRPC_HOST = os.environ.get("LND_GRPC_HOST", "")
LND_TLS_CERT = os.environ.get("LND_TLS_CERT", "")
LND_MACAROON = os.environ.get("LND_MACAROON", "")
LND_CONNECT = os.environ.get("LND_CONNECT", "")
LND_NODE_NAME = os.environ.get("LND_NODE_NAME", "forum")
SIMNET_ENABLED = env_bool("SIMNET", default=not (LND_GRPC_HOST or LND_CONNECT))
SIMNET_DATA_DIR = Path(os.environ.get("SIMNET_DATA_DIR", DATA_DIR / "simnet")).resolve()
SIMNET_BASE_PORT = int(os.environ.get("SIMNET_BASE_PORT", "10009"))
DEMO_MODE = env_bool("DEMO_MODE", default=SIMNET_ENABLED)

# Hold mode (docs/hold-mode.md): keysends stay ACCEPTED until the forum has checked them, so a
# post that would be rejected is cancelled and costs nothing. With a real lnd, turn it on
# together with lnd's --keysend-hold-time; the embedded simnet gets HOLD_SECONDS as that time.
HOLD_MODE = env_bool("HOLD_MODE", default=SIMNET_ENABLED)
HOLD_SECONDS = int(os.environ.get("HOLD_SECONDS", "60"))

# --- Auth, i18n, static -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/mod/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", DATA_DIR / "static")).resolve()
# whitenoise warns about a missing root even when it serves from the finders.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the app/static dirs so no collectstatic is needed locally, DEBUG or not;
# containers run collectstatic and switch on the hashed, compressed manifest storage.
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("STATIC_MANIFEST", default=False)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
