"""Django and Celery settings, all read from the environment.

DATABASE_URL, AUTOMATION_BROKER_URL and AUTOMATION_RESULT_BACKEND choose the stores; without them the
engine runs embedded (SQLite, an in-process broker and worker) for demos.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from kombu import Queue

from automation.delivery import DEFAULT_QUEUE, INTAKE_QUEUE, PRIORITY_QUEUE_NAMES

BASE_DIR = Path(os.environ.get("AUTOMATION_HOME", Path.cwd()))
STATE_DIR = Path(os.environ.get("AUTOMATION_STATE_DIR", BASE_DIR / ".automation"))

#: The development default, public in this repository: nothing that must be secret is signed with it.
INSECURE_SECRET_KEY = "automation-insecure-dev-key"
SECRET_KEY = os.environ.get("AUTOMATION_SECRET_KEY", INSECURE_SECRET_KEY)
DEBUG = os.environ.get("AUTOMATION_DEBUG", "") == "1"
ALLOWED_HOSTS = [h for h in os.environ.get("AUTOMATION_ALLOWED_HOSTS", "*").split(",") if h]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "automation.api.urls"
APPEND_SLASH = False

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    # --- web UI (automation/webui): Django's users, sessions and admin ---
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "django_celery_beat",
    "automation.apps.AutomationAppConfig",
]
# Sessions and users serve the web UI; the API still authenticates with its bearer tokens. No CSRF
# middleware: the API takes no cookies, and the admin's and the UI's views protect themselves
# (csrf_protect), so an API client needs no CSRF token.
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The signed-in user is the audit log's actor for the web UI's changes (API requests have no session).
    "automation.webui.middleware.AdminActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [Path(__file__).resolve().parent / "webui" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
LOGIN_URL = "/admin/login/"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = os.environ.get("AUTOMATION_SECURE_COOKIES", "") == "1"
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Behind a proxy that serves the UI under another origin (https://ops.example.com): the admin's forms are
# accepted from these origins, comma-separated.
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("AUTOMATION_CSRF_TRUSTED_ORIGINS", "").split(",") if o]
STATIC_URL = "/static/"
#: The admin's stylesheets and scripts are served by the API server itself (whitenoise is not a
#: dependency); set AUTOMATION_SERVE_STATIC=0 when a proxy in front serves /static/ instead.
AUTOMATION_SERVE_STATIC = os.environ.get("AUTOMATION_SERVE_STATIC", "1") != "0"

_embedded_db = f"sqlite:///{STATE_DIR / 'automation.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(os.environ.get("DATABASE_URL") or _embedded_db, conn_max_age=600)
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The embedded store has a worker thread beside the caller: a transaction that reads, then writes
    # (a row lock, then the update) must take the write lock at its start, or SQLite refuses the upgrade
    # at once ("database is locked") instead of waiting.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"transaction_mode": "IMMEDIATE", "timeout": 30})

# --- Celery (read through config_from_object with the CELERY namespace) ---
BROKER_URL = os.environ.get("AUTOMATION_BROKER_URL", "")
EMBEDDED = not BROKER_URL
CELERY_BROKER_URL = BROKER_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = os.environ.get("AUTOMATION_RESULT_BACKEND") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "cache+memory://"
)
# Coordination (fleet-wide action semaphore, step leases): Redis when we have one.
AUTOMATION_REDIS_URL = os.environ.get("AUTOMATION_REDIS_URL") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else ""
)

# At-least-once delivery: a message is acknowledged only after its task finished, and requeued when the
# worker process dies. Every time limit must stay below the visibility timeout, or Redis redelivers a
# message that is still being worked on.
VISIBILITY_TIMEOUT = int(os.environ.get("AUTOMATION_VISIBILITY_TIMEOUT", "3600"))
CELERY_TASK_ACKS_LATE = True
# Keep each worker process's database connection across tasks (Celery's Django fixup would otherwise
# reconnect for every task); a broken or expired connection is still replaced before the next task.
CELERY_DB_REUSE_MAX = 10_000
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_RESULT_EXTENDED = True
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, float] = {
    "visibility_timeout": VISIBILITY_TIMEOUT,
    # How often a worker looks for messages of dead workers that are past the visibility timeout.
    "unacked_restore_interval": int(os.environ.get("AUTOMATION_RESTORE_INTERVAL", "10")),
    "unacked_restore_throttle": int(os.environ.get("AUTOMATION_RESTORE_THROTTLE", "10")),
}
if EMBEDDED:
    CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"] = 0.01
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": VISIBILITY_TIMEOUT}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker restart must never end a worker: reconnect for as long as it takes.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# A message refused while the broker restarts is retried for about 15 s; past that, a step's successors are
# marked in PostgreSQL and sent again by the recovery job (automation/runs/handoff.py).
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 10, "interval_start": 0, "interval_step": 0.5, "interval_max": 2
}
CELERY_RESULT_BACKEND_ALWAYS_RETRY = True
CELERY_RESULT_BACKEND_MAX_RETRIES = 10
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Kombu's Redis transport, hardened: malformed messages set aside, unacknowledged messages restored
    # from memory after a broker restart (automation/broker/redis.py).
    CELERY_BROKER_TRANSPORT = "automation.broker.redis:Transport"
# Messages the worker cannot run are set aside where an operator sees them (automation/broker/consumer.py).
CELERY_WORKER_CONSUMER = "automation.broker.consumer:Consumer"
CELERY_RESULT_EXPIRES = int(os.environ.get("AUTOMATION_RESULT_EXPIRES", str(7 * 24 * 3600)))
# JSON only: a message from the network is never unpickled.
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = DEFAULT_QUEUE
# INTAKE_QUEUE ("celery") is where a plain `Celery(broker=URL).send_task(...)` from another service lands.
CELERY_TASK_QUEUES = [Queue(name) for name in (*PRIORITY_QUEUE_NAMES, INTAKE_QUEUE)]
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_BEAT_SCHEDULER = "automation.schedules:AutomationScheduler"
CELERY_TIMEZONE = "UTC"

# --- Engine defaults (an AutomationConfig given to AutomationEngine overrides them) ---
# Bootstrap administrator tokens (retire them once a stored admin token exists: README, "Roles and tokens").
AUTOMATION_API_TOKENS = [t for t in os.environ.get("AUTOMATION_API_TOKENS", "").split(",") if t]
# Set by `automation serve` beyond loopback: no request is served without a token, whatever is stored.
AUTOMATION_API_REQUIRE_AUTH = os.environ.get("AUTOMATION_API_REQUIRE_AUTH", "") == "1"
AUTOMATION_SERVICES_FILE = os.environ.get("AUTOMATION_SERVICES_FILE", "services.yml")
# Incident pages: the API's public address (unset: a page names the incident by id, and its acknowledgement
# link is a path), the secret its acknowledgement links are signed with (default: SECRET_KEY), and how long
# such a link stays valid (seconds after the page was due).
AUTOMATION_BASE_URL = os.environ.get("AUTOMATION_BASE_URL", "").rstrip("/")
AUTOMATION_ACK_SECRET = os.environ.get("AUTOMATION_ACK_SECRET") or SECRET_KEY
#: Acknowledgement links are sent and honoured only with a secret of the deployment's own (anyone can sign
#: with the public development key), or in debug mode.
AUTOMATION_ACK_LINKS = AUTOMATION_ACK_SECRET != INSECURE_SECRET_KEY or DEBUG
AUTOMATION_ACK_LINK_TTL = int(os.environ.get("AUTOMATION_ACK_LINK_TTL", str(24 * 3600)))
# A run none of whose steps moved for this long (plus its longest action's time limit) is dispatched again.
AUTOMATION_STALL_AFTER = int(os.environ.get("AUTOMATION_STALL_AFTER", "300"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"automation": {"level": os.environ.get("AUTOMATION_LOG_LEVEL", "INFO")}},
}
