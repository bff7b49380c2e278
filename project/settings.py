"""Settings, read from the environment (12-factor).

With no environment at all the project runs for local use: DEBUG on, a SQLite
file, the in-memory channel layer. Production sets DJANGO_DEBUG=0 and the
variables documented in the README; missing secrets then stop start-up.
"""

import os
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name, "")
    items = [item.strip() for item in value.split(",") if item.strip()]
    return items or default


DEBUG = env_bool("DJANGO_DEBUG", True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    SECRET_KEY = "django-insecure-local-development-only"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
if not DEBUG and "*" in ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must name the hosts, not '*', when DJANGO_DEBUG is off.")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

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
    "django_htmx",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "chat.protection.csp.content_security_policy",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "chat.accounts.htmx_sign_in.SignedOutHtmxMiddleware",  # sees the next one's log-in redirects too
    "chat.accounts.sign_in_required.SignInRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "chat.accounts.time_zone.TimeZoneMiddleware",
]

ROOT_URLCONF = "project.urls"

# No inline script or style, no eval: only files of our own origin (see chat/protection/csp.py).
CHAT_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

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
            ],
        },
    },
]

ASGI_APPLICATION = "project.asgi.application"

# A SQLite file by default; DATABASE_URL (postgres://…) for real deployments.
# Under ASGI every consumer's ORM call may land on another thread, so Django's
# persistent connections (CONN_MAX_AGE) would pile up idle per thread: instead
# connections close after each use and PostgreSQL reuses them from psycopg's pool.
DATABASES = {"default": dj_database_url.config(default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=0)}
DB_POOL_SIZE = int(os.environ.get("DJANGO_DB_POOL_SIZE", "10"))
# How long a write waits for a lock (SQLite's write lock; for sockets, queueing included)
# before the sender is told it could not be saved.
CHAT_DB_LOCK_TIMEOUT = float(os.environ.get("DJANGO_DB_LOCK_TIMEOUT", "5"))
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_SIZE,
        "timeout": 10,
    }
    # With a pool, Django turns this into psycopg's check on every checkout: a
    # connection the server dropped (restart, failover) is replaced, not handed out.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Django's backend, except that the first dead connection found replaces all idle ones.
    DATABASES["default"]["ENGINE"] = "chat.backends.postgres"
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Many daphne threads share the file: wait for the write lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": CHAT_DB_LOCK_TIMEOUT,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;",
        }
    )
    # Tests on a file too, as production runs: the socket pools' threads keep connections of their own,
    # and an in-memory database shared between connections fails them with "table is locked" instead
    # of waiting (shared-cache table locks ignore the busy timeout).
    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"chat-test-{os.getpid()}.sqlite3")}

# Socket database work runs on two bounded pools per process (chat/realtime/db.py), not on
# asgiref's single thread. Reads (auth on connect, catch-up): as many threads as the
# database serves at once (PostgreSQL: the pool; SQLite in WAL mode: readers run beside
# the writer, but each query is mostly Python time under the GIL, and more threads
# slowed a connect storm down: 2). Writes: SQLite has one writer, so one thread;
# PostgreSQL: half the pool.
_postgres = DATABASES["default"]["ENGINE"] == "chat.backends.postgres"
CHAT_DB_READ_THREADS = int(os.environ.get("CHAT_DB_READ_THREADS", DB_POOL_SIZE if _postgres else 2))
CHAT_DB_WRITE_THREADS = int(os.environ.get("CHAT_DB_WRITE_THREADS", max(1, DB_POOL_SIZE // 2) if _postgres else 1))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# One place for the channel layer. Unset REDIS_URL: the in-memory layer, one
# process. With REDIS_URL: Redis pub/sub (chosen by measurement, see README):
# one subscription per process and room instead of one Redis queue per socket,
# so 1,000 joins need no pool of 1,000 connections and no group ever expires.
# Timeouts keep a hung Redis to a bounded wait; the health check finds a dead
# connection on an idle process. CHANNEL_LAYER=redis selects the list-based layer.
# REDIS_URL may list several servers, comma-separated: channels-redis then shards the
# layer over them (each group and channel lives on one server, by a hash of its name),
# and every process must list the same servers in the same order.
REDIS_URL = os.environ.get("REDIS_URL", "")
REDIS_URLS = env_list("REDIS_URL", [])
CHANNEL_LAYER = os.environ.get("CHANNEL_LAYER", "redis-pubsub" if REDIS_URL else "memory")


def redis_pubsub_layer(urls: str | list[str]) -> dict:
    """The pub/sub layer over one Redis URL, or several (a list or a comma-separated string): one shard each."""
    if isinstance(urls, str):
        urls = [url.strip() for url in urls.split(",") if url.strip()]
    hosts = [
        {"address": url, "socket_connect_timeout": 3, "socket_timeout": 5, "health_check_interval": 15} for url in urls
    ]
    return {"BACKEND": "chat.backends.pubsub_layer.RedisPubSubChannelLayer", "CONFIG": {"hosts": hosts}}


if CHANNEL_LAYER == "memory":
    # Channels' in-memory layer, without its O(sockets) sweep on every receive (chat/backends/memory_layer.py).
    CHANNEL_LAYERS = {"default": {"BACKEND": "chat.backends.memory_layer.SweepingInMemoryChannelLayer"}}
elif CHANNEL_LAYER == "redis-pubsub":
    CHANNEL_LAYERS = {"default": redis_pubsub_layer(REDIS_URLS)}
elif CHANNEL_LAYER == "redis":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # One connection per concurrent group_add: 1,000 simultaneous joins need more than
            # redis-py's 100. Its socket timeout must exceed the layer's 5 s blocking pop, or
            # idle consumers crash with a read timeout (redis-py 8 lowered it to 5 s).
            "CONFIG": {
                "hosts": [
                    {"address": url, "max_connections": 2000, "socket_timeout": 10, "socket_connect_timeout": 3}
                    for url in REDIS_URLS
                ]
            },
        }
    }
else:
    raise ImproperlyConfigured(f"CHANNEL_LAYER must be memory, redis-pubsub or redis, not {CHANNEL_LAYER!r}.")
if CHANNEL_LAYER != "memory" and not REDIS_URL:
    raise ImproperlyConfigured(f"CHANNEL_LAYER={CHANNEL_LAYER} needs REDIS_URL.")

# Per-socket flood guard: a burst of frames, then this many per second on average.
CHAT_SOCKET_BURST = int(os.environ.get("CHAT_SOCKET_BURST", "8"))
CHAT_SOCKET_RATE = float(os.environ.get("CHAT_SOCKET_RATE", "1"))
# A socket whose peer stops reading is dropped once this many bytes wait for it (chat/protection/backpressure.py).
CHAT_SOCKET_MAX_BUFFER = int(os.environ.get("CHAT_SOCKET_MAX_BUFFER", str(1024 * 1024)))

# Counters for the limits (chat/protection/limits.py) live in the cache: Redis with REDIS_URL, so every
# process shares them; local memory otherwise. A hung Redis costs a request at most 2 s.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URLS[0],  # one server: Django would take the others for read replicas
            "KEY_PREFIX": "chat",
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    # LocMemCache holds 300 keys by default, then drops a third: a few hundred users' socket counts and post
    # windows would be dropped at random. Each key is a small counter.
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "OPTIONS": {"MAX_ENTRIES": 100_000}}
    }

# Limits shared by the socket and the no-JavaScript form, and by every process. Rates are
# "count/seconds"; socket caps are counts of open sockets. Each one can be set by the
# environment variable CHAT_LIMIT_<NAME> (e.g. CHAT_LIMIT_POSTS_PER_USER=60/60).
CHAT_LIMITS = {
    "posts_per_user": "30/60",
    "posts_per_ip": "120/60",
    "login_failures_per_account": "5/900",
    "login_failures_per_ip": "30/900",
    "signups_per_ip": "10/3600",
    "searches_per_user": "60/60",
    "searches_per_ip": "240/60",
    "sockets_per_user": "20",
    "sockets_per_ip": "200",
}
CHAT_LIMITS.update(
    {
        name: os.environ[f"CHAT_LIMIT_{name.upper()}"]
        for name in CHAT_LIMITS
        if os.environ.get(f"CHAT_LIMIT_{name.upper()}")
    }
)
# Which X-Forwarded-For entry is the client (chat/protection/limits.py client_ip): the n-th from the end,
# n being the number of proxies that append to it; behind a PaaS router, 1 (the entry the router
# appended: the ones before it are whatever the client sent). 0: the TCP peer (no proxy).
CHAT_PROXY_HOPS = int(os.environ.get("CHAT_PROXY_HOPS", "0" if DEBUG else "1"))

# Who is here (chat/realtime/presence.py): kept in Redis with REDIS_URL, else in this process.
# 0 turns the live list off (nothing stored, no presence frames).
CHAT_PRESENCE = os.environ.get("CHAT_PRESENCE", "1") == "1"

# The soak and chaos benches read each process's registry sizes at /internal/process-stats/
# (chat/realtime/process_stats.py): 404 unless CHAT_BENCH_STATS=1, which only tests/bench sets.
CHAT_BENCH_STATS = os.environ.get("CHAT_BENCH_STATS", "0") == "1"

# Who may sign up (chat/accounts/views.py): `open` anyone; `invite` whoever holds an unused, unexpired
# invitation a staff member made at /accounts/invites/; `closed` nobody (staff create accounts in the admin).
CHAT_SIGNUP = os.environ.get("CHAT_SIGNUP", "").strip() or "open"
if CHAT_SIGNUP not in {"open", "invite", "closed"}:
    raise ImproperlyConfigured(f"CHAT_SIGNUP must be open, invite or closed, not {CHAT_SIGNUP!r}.")
# Days an invitation stays usable.
CHAT_INVITATION_DAYS = int(os.environ.get("CHAT_INVITATION_DAYS", "7"))
if CHAT_INVITATION_DAYS < 1:
    raise ImproperlyConfigured(f"CHAT_INVITATION_DAYS must be 1 or more, not {CHAT_INVITATION_DAYS}.")
# Who may read the public rooms (chat/accounts/access.py): 1 anyone, as a visitor too; 0 signed-in users
# only, on every page but log-in and sign-up, and on every socket.
_public_read = os.environ.get("CHAT_PUBLIC_READ", "").strip() or "1"
if _public_read not in {"0", "1"}:
    raise ImproperlyConfigured(f"CHAT_PUBLIC_READ must be 1 or 0, not {_public_read!r}.")
CHAT_PUBLIC_READ = _public_read == "1"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat:lobby"
LOGOUT_REDIRECT_URL = "chat:lobby"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Django's database sessions; sockets connecting at once read theirs in one query (chat/backends/sessions.py).
SESSION_ENGINE = "chat.backends.sessions"

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Behind a PaaS router: trust its X-Forwarded-Proto, and be strict over HTTPS.
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"once_per_minute": {"()": "chat.protection.log_filters.OncePerMinute"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "channels_redis.pubsub": {"filters": ["once_per_minute"]},
        "chat.services": {"filters": ["once_per_minute"]},
    },
}
