"""Settings from the environment.

The original service's variable names are kept (``PORT``, ``WORKER_COUNT``,
``AWS_REGION``, ``SQS_QUEUE_URL``, ``SQS_DLQ_URL``, ``DYNAMODB_TABLE``); every new one
is prefixed ``TASKQ_``.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Literal

from pydantic import AliasChoices, Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.limits import (
    DEFAULT_INLINE_LIMIT_BYTES,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_BLOB_BYTES,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MAX_RECEIVE_COUNT,
    DEFAULT_MEMORY_MAX_BACKLOG,
    DEFAULT_SCHEDULER_INTERVAL_SECONDS,
    DEFAULT_UI_REFRESH_SECONDS,
    FLOW_REFRESH_SECONDS,
    MAX_BACKOFF_CAP_SECONDS,
    MAX_INLINE_LIMIT_BYTES,
    MAX_LONG_POLL_SECONDS,
    MAX_MESSAGE_BYTES,
    MAX_QUEUE_DELAY_SECONDS,
    MAX_RECEIVE_COUNT,
    MAX_VISIBILITY_TIMEOUT_SECONDS,
)
from domain.priorities import PriorityWeights

MIN_SESSION_SECRET_LENGTH = 32
"""Shorter secrets could be guessed offline from a session cookie."""


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore")

    backend: Literal["memory", "sqlite", "aws"] = Field(
        "sqlite", validation_alias=_env("TASKQ_BACKEND")
    )
    host: str = Field("127.0.0.1", validation_alias=_env("TASKQ_HOST"))
    port: int = Field(8080, ge=0, le=65535, validation_alias=_env("PORT"))
    worker_count: int = Field(5, ge=1, le=1000, validation_alias=_env("WORKER_COUNT"))
    handlers: str = Field("", validation_alias=_env("TASKQ_HANDLERS"))
    """Comma-separated modules imported at start, registering their task types."""
    log_level: str = Field("INFO", validation_alias=_env("TASKQ_LOG_LEVEL"))
    log_format: Literal["json", "text"] | None = Field(
        None, validation_alias=_env("TASKQ_LOG_FORMAT")
    )
    """One JSON object a line, or readable text; unset: text on a terminal, else json."""
    log_task_events: bool = Field(False, validation_alias=_env("TASKQ_LOG_TASK_EVENTS"))
    """Log submitted, started and completed tasks at INFO (else DEBUG)."""
    access_log: bool = Field(False, validation_alias=_env("TASKQ_ACCESS_LOG"))
    """One log line per HTTP request (never for /health and /metrics)."""
    metrics: bool = Field(True, validation_alias=_env("TASKQ_METRICS"))
    """Prometheus counters and histograms of tasks and HTTP requests (off: no request
    middleware, no event recording; ``/metrics`` keeps its JSON and cluster gauges)."""
    metrics_port: int | None = Field(
        None, ge=0, le=65535, validation_alias=_env("TASKQ_METRICS_PORT")
    )
    """``taskq worker`` serves its own Prometheus metrics on this port (unset: not at all)."""
    metrics_host: str = Field("127.0.0.1", validation_alias=_env("TASKQ_METRICS_HOST"))

    # Processing
    visibility_timeout: float = Field(
        30.0,
        gt=0,
        le=MAX_VISIBILITY_TIMEOUT_SECONDS,
        validation_alias=_env("TASKQ_VISIBILITY_TIMEOUT"),
    )
    heartbeat_interval: float | None = Field(
        None, gt=0, validation_alias=_env("TASKQ_HEARTBEAT_INTERVAL")
    )
    claim_delay_seconds: float | None = Field(  # claim at finish; unset: 1 s on aws, else 0
        None, ge=0, le=3600, validation_alias=_env("TASKQ_CLAIM_DELAY_SECONDS")
    )
    max_receive_count: int = Field(
        DEFAULT_MAX_RECEIVE_COUNT,
        ge=2,
        le=MAX_RECEIVE_COUNT,
        validation_alias=_env("TASKQ_MAX_RECEIVE_COUNT"),
    )
    default_max_attempts: int = Field(
        DEFAULT_MAX_ATTEMPTS, ge=1, validation_alias=_env("TASKQ_DEFAULT_MAX_ATTEMPTS")
    )
    retry_base_seconds: float = Field(1.0, ge=0, validation_alias=_env("TASKQ_RETRY_BASE_SECONDS"))
    retry_cap_seconds: float = Field(
        300.0, ge=0, le=MAX_BACKOFF_CAP_SECONDS, validation_alias=_env("TASKQ_RETRY_CAP_SECONDS")
    )
    poll_wait_seconds: float = Field(
        float(MAX_LONG_POLL_SECONDS),
        ge=0,
        le=MAX_LONG_POLL_SECONDS,
        validation_alias=_env("TASKQ_POLL_WAIT_SECONDS"),
    )
    shutdown_grace_seconds: float = Field(
        30.0, ge=0, validation_alias=_env("TASKQ_SHUTDOWN_GRACE_SECONDS")
    )
    receive_pace_seconds: float | None = Field(
        None, ge=0, le=5, validation_alias=_env("TASKQ_RECEIVE_PACE_SECONDS")
    )
    """Space receives while tasks run (entrypoints/worker.py); unset: 0, on aws a default."""
    worker_ttl_seconds: float = Field(30.0, gt=0, validation_alias=_env("TASKQ_WORKER_TTL_SECONDS"))
    reconcile_stale_after_seconds: float = Field(
        1800.0, gt=0, validation_alias=_env("TASKQ_RECONCILE_STALE_AFTER_SECONDS")
    )
    """A PROCESSING task whose lease ended this long ago is abandoned: the reconciler
    settles it (PENDING tasks are never re-sent: each has its message)."""
    max_queue_delay_seconds: int = Field(
        MAX_QUEUE_DELAY_SECONDS,
        ge=0,
        le=MAX_QUEUE_DELAY_SECONDS,
        validation_alias=_env("TASKQ_MAX_QUEUE_DELAY_SECONDS"),
    )
    """Tasks due further off than this are held without a queue message and sent by
    the reconciler when they come this close (SQS delays a message
    ``MAX_QUEUE_DELAY_SECONDS`` at most)."""
    orphan_grace_seconds: float = Field(
        60.0, ge=0, le=3600, validation_alias=_env("TASKQ_ORPHAN_GRACE_SECONDS")
    )
    """How long a worker keeps a message whose task is not stored (the write after
    the send may still land, or have failed) before acking it as an orphan."""
    reconcile_interval_seconds: float = Field(
        60.0, gt=0, validation_alias=_env("TASKQ_RECONCILE_INTERVAL_SECONDS")
    )
    scheduler: bool = Field(True, validation_alias=_env("TASKQ_SCHEDULER"))
    """Run the periodic schedules' scheduler beside the workers (domain/scheduler.py)."""
    scheduler_interval_seconds: float = Field(
        DEFAULT_SCHEDULER_INTERVAL_SECONDS,
        gt=0,
        validation_alias=_env("TASKQ_SCHEDULER_INTERVAL_SECONDS"),
    )
    flow_refresh_seconds: float = Field(
        FLOW_REFRESH_SECONDS, gt=0, le=60, validation_alias=_env("TASKQ_FLOW_REFRESH_SECONDS")
    )
    """How old a process's copy of the task types' run-time limits and pauses may grow
    before it reads them again (a pause reaches every process within about this)."""

    idempotency_window_seconds: float = Field(
        86400.0, gt=0, validation_alias=_env("TASKQ_IDEMPOTENCY_WINDOW_SECONDS")
    )
    """How long an Idempotency-Key keeps returning the task it first created."""

    # HTTP
    max_body_bytes: int = Field(256 * 1024, ge=1024, validation_alias=_env("TASKQ_MAX_BODY_BYTES"))

    # Authentication and limits (keys are secrets: kept out of the settings' repr)
    api_keys: str = Field("", repr=False, validation_alias=_env("TASKQ_API_KEYS"))
    """Comma-separated API keys. None here and no key file: no authentication."""
    api_key_file: str | None = Field(None, validation_alias=_env("TASKQ_API_KEY_FILE"))
    """A file of sha256 hex digests of API keys, one a line; ``#`` starts a comment."""
    insecure: bool = Field(False, validation_alias=_env("TASKQ_INSECURE"))
    """Serve without API keys on an address other than loopback."""
    session_secret: str = Field("", repr=False, validation_alias=_env("TASKQ_SESSION_SECRET"))
    """Signs the dashboard's session cookies (at least 32 characters). Unset: a random
    one per start, so sessions end with the process; set the same one on every API
    process when several serve the dashboard behind one address."""
    ui_refresh_seconds: float = Field(
        DEFAULT_UI_REFRESH_SECONDS, ge=0.5, le=60, validation_alias=_env("TASKQ_UI_REFRESH_SECONDS")
    )
    """How often the dashboard's overview fetches its figures (one chart interval)."""
    rate_limit_per_second: float | None = Field(
        None, gt=0, validation_alias=_env("TASKQ_RATE_LIMIT")
    )
    """Requests a second per API key (a token bucket); None: no limit."""
    rate_limit_burst: int = Field(20, ge=1, validation_alias=_env("TASKQ_RATE_LIMIT_BURST"))
    max_backlog: int | Literal["unbounded"] | None = Field(
        None, validation_alias=_env("TASKQ_MAX_BACKLOG")
    )
    """PENDING tasks beyond which ``POST /tasks`` answers 503 with Retry-After: a
    positive number, or ``unbounded``; unset: 100,000 on memory, unbounded on sqlite.
    Local backends only (on aws the queue is SQS): ``backlog_bound``."""

    # Connection limits and abuse protection (entrypoints/http/protocol.py and auth.py;
    # the README's "Operating limits" says what a client sees past each one)
    max_header_bytes: int = Field(
        64 * 1024, ge=1024, le=16 * 1024 * 1024, validation_alias=_env("TASKQ_MAX_HEADER_BYTES")
    )
    """Request line and headers of one request, in bytes (431 beyond)."""
    max_header_count: int = Field(
        100, ge=16, le=10_000, validation_alias=_env("TASKQ_MAX_HEADER_COUNT")
    )
    """Headers in one request (431 beyond)."""
    header_timeout_seconds: float = Field(
        10.0, gt=0, le=3600, validation_alias=_env("TASKQ_HEADER_TIMEOUT_SECONDS")
    )
    """Time from a request's first byte (or the connection's start) to its last header."""
    body_idle_timeout_seconds: float = Field(
        30.0, gt=0, le=3600, validation_alias=_env("TASKQ_BODY_IDLE_TIMEOUT_SECONDS")
    )
    """Longest silence while a request body is being received (408 beyond)."""
    max_connections: int = Field(
        4096, ge=1, le=1_000_000, validation_alias=_env("TASKQ_MAX_CONNECTIONS")
    )
    """Open HTTP connections per API process; one more is answered 503 and closed."""
    auth_failures_per_minute: float = Field(
        10.0, gt=0, validation_alias=_env("TASKQ_AUTH_FAILURES_PER_MINUTE")
    )
    """Failed authentications a client address may make a minute, after its burst."""
    auth_failure_burst: int = Field(20, ge=1, validation_alias=_env("TASKQ_AUTH_FAILURE_BURST"))
    trusted_proxies: str = Field("", validation_alias=_env("TASKQ_TRUSTED_PROXIES"))
    """Comma-separated addresses or CIDR networks of the load balancers in front: only
    a peer among them is believed when it names the client in ``X-Forwarded-For``."""

    # SQLite
    sqlite_path: str = Field("./data/taskq.db", validation_alias=_env("TASKQ_SQLITE_PATH"))
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        "NORMAL", validation_alias=_env("TASKQ_SQLITE_SYNCHRONOUS")
    )

    # AWS
    aws_region: str = Field("us-east-1", validation_alias=_env("AWS_REGION"))
    aws_endpoint_url: str | None = Field(None, validation_alias=_env("AWS_ENDPOINT_URL"))
    sqs_queue_name: str = Field("taskq-tasks", validation_alias=_env("TASKQ_SQS_QUEUE_NAME"))
    sqs_queue_url: str | None = Field(None, validation_alias=_env("SQS_QUEUE_URL"))
    sqs_dlq_url: str | None = Field(None, validation_alias=_env("SQS_DLQ_URL"))
    sqs_max_message_bytes: int = Field(
        DEFAULT_MAX_MESSAGE_BYTES,
        ge=1024,
        le=MAX_MESSAGE_BYTES,
        validation_alias=_env("TASKQ_SQS_MAX_MESSAGE_BYTES"),
    )
    dynamodb_table: str = Field("tasks", validation_alias=_env("DYNAMODB_TABLE"))
    auto_provision: bool = Field(False, validation_alias=_env("TASKQ_AUTO_PROVISION"))
    retention_seconds: float | None = Field(
        None, gt=0, validation_alias=_env("TASKQ_RETENTION_SECONDS")
    )
    aws_retry_mode: Literal["standard", "adaptive"] = Field(
        "standard", validation_alias=_env("TASKQ_AWS_RETRY_MODE")
    )
    aws_max_attempts: int = Field(5, ge=1, validation_alias=_env("TASKQ_AWS_MAX_ATTEMPTS"))
    aws_timeout_seconds: float = Field(
        5.0, gt=0, validation_alias=_env("TASKQ_AWS_TIMEOUT_SECONDS")
    )
    # Priorities (README "Priorities"; domain/priorities.py)
    priorities: bool = Field(False, validation_alias=_env("TASKQ_PRIORITIES"))
    """aws: poll ``<queue>-high`` and ``<queue>-low`` too (off: only ``default`` is
    accepted). memory and sqlite keep priorities whatever this says."""
    priority_weights: str = Field(
        "high=6,default=3,low=1", validation_alias=_env("TASKQ_PRIORITY_WEIGHTS")
    )
    sqs_queue_url_high: str | None = Field(None, validation_alias=_env("SQS_QUEUE_URL_HIGH"))
    sqs_queue_url_low: str | None = Field(None, validation_alias=_env("SQS_QUEUE_URL_LOW"))

    # Email (the ``email`` task type; README "Email")
    smtp_host: str | None = Field(None, validation_alias=_env("TASKQ_SMTP_HOST"))
    smtp_port: int | None = Field(None, ge=1, le=65535, validation_alias=_env("TASKQ_SMTP_PORT"))
    """Unset: 465 with ``TASKQ_SMTP_TLS=true``, else 25."""
    smtp_username: str | None = Field(None, validation_alias=_env("TASKQ_SMTP_USERNAME"))
    smtp_password: str | None = Field(
        None, repr=False, validation_alias=_env("TASKQ_SMTP_PASSWORD")
    )
    smtp_tls: bool = Field(False, validation_alias=_env("TASKQ_SMTP_TLS"))
    """Implicit TLS from the first byte (port 465)."""
    smtp_starttls: bool | None = Field(None, validation_alias=_env("TASKQ_SMTP_STARTTLS"))
    """Unset: STARTTLS whenever offered (plain text without it only on loopback);
    true: required; false: never."""
    email_backend: Literal["smtp", "ses", "mailbox"] | None = Field(
        None, validation_alias=_env("TASKQ_EMAIL_BACKEND")
    )
    """Unset: ``smtp`` when ``TASKQ_SMTP_HOST`` is set, else the local ``mailbox``."""
    email_from: str = Field(
        "taskq@localhost",
        pattern=r"^[^@\s<>]+@[^@\s<>]+$",
        validation_alias=_env("TASKQ_EMAIL_FROM"),
    )
    mailbox_path: str | None = Field(None, validation_alias=_env("TASKQ_MAILBOX_PATH"))
    """The mbox the local default delivers to; unset: ``mailbox`` beside the SQLite file
    (``./data/mailbox``), in a temporary directory for the memory backend."""

    # Handlers that must really stop (adapters/stoppable_pool.py)
    cpu_workers: int = Field(
        default_factory=lambda: default_cpu_workers(),
        ge=1,
        le=1024,
        validation_alias=_env("TASKQ_CPU_WORKERS"),
    )
    """Processes of the CPU pool (each runs one CPU-bound call at a time); unset: one
    fewer than the cores (``default_cpu_workers``)."""
    # Blobs (uploads, resized images, exports) and the built-in types' CPU work
    blob_dir: str | None = Field(None, validation_alias=_env("TASKQ_BLOB_DIR"))
    """Where the directory blob store keeps blobs; unset: ``blobs/`` beside the SQLite
    file (``./data/blobs``), a temporary directory on the memory backend."""
    s3_bucket: str | None = Field(None, validation_alias=_env("TASKQ_S3_BUCKET"))
    """Keep blobs in this S3 bucket instead (any backend; `taskq init` creates it)."""
    max_blob_bytes: int = Field(
        DEFAULT_MAX_BLOB_BYTES, ge=1, validation_alias=_env("TASKQ_MAX_BLOB_BYTES")
    )
    """The largest upload ``POST /blobs`` takes, in bytes (413 beyond); also the largest
    payload or result kept as a blob by the claim check (422 past it)."""
    inline_limit: int = Field(
        DEFAULT_INLINE_LIMIT_BYTES,
        ge=0,
        le=MAX_INLINE_LIMIT_BYTES,
        validation_alias=_env("TASKQ_INLINE_LIMIT"),
    )
    """A payload or result whose JSON is larger (bytes) is kept in the blob store, the
    task holding a reference to it (adapters/claim_check.py); at most the largest value
    a task itself can hold."""
    public_url: str | None = Field(None, validation_alias=_env("TASKQ_PUBLIC_URL"))
    """The API's address as clients reach it, for download links in results; unset:
    ``http://127.0.0.1:$PORT``."""

    # Tracing (the otel extra), under the OpenTelemetry SDK's own variable names
    otel_traces_exporter: str = Field("", validation_alias=_env("OTEL_TRACES_EXPORTER"))
    """Comma-separated span exporters (``otlp``, ``console``...); unset or ``none``:
    no tracing, and nothing of OpenTelemetry is imported."""
    otel_sdk_disabled: bool = Field(False, validation_alias=_env("OTEL_SDK_DISABLED"))
    """OpenTelemetry's switch: true turns tracing off whatever the exporter says."""

    @field_validator("max_backlog")
    @classmethod
    def _backlog(
        cls, value: int | Literal["unbounded"] | None, info: ValidationInfo
    ) -> int | Literal["unbounded"] | None:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"TASKQ_MAX_BACKLOG must be at least 1 or 'unbounded', not {value}")
        if value is not None and info.data.get("backend") == "aws":
            raise ValueError(
                "TASKQ_MAX_BACKLOG bounds a local backend's backlog (memory, sqlite); on aws "
                "the queue is SQS and has no bound here: unset it"
            )
        return value

    @property
    def backlog_bound(self) -> int | None:
        """``max_backlog`` resolved for the backend: None is unbounded."""
        if self.max_backlog == "unbounded" or self.backend == "aws":
            return None
        if self.max_backlog is None:
            return DEFAULT_MEMORY_MAX_BACKLOG if self.backend == "memory" else None
        return self.max_backlog

    @field_validator("handlers")
    @classmethod
    def _strip(cls, value: str) -> str:
        return ",".join(part.strip() for part in value.split(",") if part.strip())

    @field_validator("session_secret")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if value and len(value) < MIN_SESSION_SECRET_LENGTH:
            raise ValueError(
                f"TASKQ_SESSION_SECRET must be at least {MIN_SESSION_SECRET_LENGTH} "
                f"characters (it has {len(value)}); `openssl rand -hex 32` makes one"
            )
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        parts = [part.strip() for part in value.split(",") if part.strip()]
        for part in parts:
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(
                    f"{part!r} is not an IP address or CIDR network (10.0.0.0/8, ::1)"
                ) from None
        return ",".join(parts)

    @field_validator("priority_weights")
    @classmethod
    def _weights(cls, value: str) -> str:
        PriorityWeights.parse(value)  # a ValueError that names what is wrong
        return value

    @property
    def weights(self) -> PriorityWeights:
        """``TASKQ_PRIORITY_WEIGHTS``, parsed."""
        return PriorityWeights.parse(self.priority_weights)

    @property
    def priority_queues(self) -> bool:
        """Whether the queue keeps the priorities apart: always on memory and sqlite,
        with ``TASKQ_PRIORITIES`` on aws."""
        return self.backend != "aws" or self.priorities

    @field_validator("smtp_starttls")
    @classmethod
    def _one_tls(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        if value and info.data.get("smtp_tls"):
            raise ValueError("TASKQ_SMTP_TLS=true already encrypts the connection: unset it")
        return value

    @field_validator("email_backend")
    @classmethod
    def _smtp_needs_host(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value == "smtp" and not info.data.get("smtp_host"):
            raise ValueError("needs TASKQ_SMTP_HOST, the SMTP server's name")
        return value

    @property
    def mail_backend(self) -> Literal["smtp", "ses", "mailbox"]:
        """Where emails go: ``TASKQ_EMAIL_BACKEND``, else SMTP when a host is set, else
        the local mailbox file."""
        if self.email_backend is not None:
            return self.email_backend
        return "smtp" if self.smtp_host else "mailbox"

    @property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        parts = [part for part in self.trusted_proxies.split(",") if part]
        return tuple(ipaddress.ip_network(part, strict=False) for part in parts)

    @field_validator("public_url")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an absolute http(s) URL")
        return value.rstrip("/") if value is not None else None

    @property
    def api_url(self) -> str:
        """Where clients reach the API: ``TASKQ_PUBLIC_URL``, else this host's port."""
        return self.public_url or f"http://127.0.0.1:{self.port}"

    @property
    def handler_modules(self) -> list[str]:
        return [m for m in self.handlers.split(",") if m]

    @property
    def trace_exporters(self) -> list[str]:
        """The span exporters named; empty when tracing is off."""
        if self.otel_sdk_disabled:
            return []
        names = [n.strip() for n in self.otel_traces_exporter.split(",")]
        return [n for n in names if n and n != "none"]

    @property
    def max_attempts_limit(self) -> int:
        return self.max_receive_count - 1


def default_cpu_workers() -> int:
    """``TASKQ_CPU_WORKERS`` unset: one process fewer than the cores, at least one. The
    worker's event loop keeps a core: with every core resizing, the p99 of no-op tasks'
    submit → start grew 3.2× on 2 cores; with one left, 1.5× (benchmark 10, target
    2×)."""
    return max(1, (os.cpu_count() or 1) - 1)
