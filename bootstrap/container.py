"""The dependency-injector container: the only place that names concrete adapters.

``Container`` holds what every backend shares (settings, clock, handlers, the use
cases); ``backend`` is the selected backend's sub-container (bootstrap/backends.py),
which ``build_container`` plugs in by ``settings.backend``. Production defaults come
from ``Settings``; tests build a fresh container per test with ``build_container`` and
override providers on it (``container.repository.override(...)``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from dependency_injector import containers, providers
from prometheus_client import CollectorRegistry

from adapters.claim_check import claim_checked
from adapters.clock import SystemClock
from adapters.cron import CroniterCalendar
from adapters.handlers.builtin import register_builtins
from adapters.isolation import ProcessHandlerSandbox
from adapters.observability.flow_metrics import FlowMetrics
from adapters.observability.metrics import (
    ClusterGauges,
    HttpMetrics,
    MetricsExposition,
    PrometheusTaskEvents,
)
from adapters.observability.store_metrics import SqliteWriteLockMetrics
from adapters.observability.task_log import TaskEventLog
from adapters.write_health import QUEUE_WRITES, REPOSITORY_WRITES, WriteTracking
from bootstrap.backends import (
    AwsBackend,
    MemoryBackend,
    SqliteBackend,
    aws_client,
    aws_sqs_poll_client,
)
from bootstrap.blobs import TasksWhenUsed, open_blob_store
from bootstrap.handlers import load_task_types as load_task_types  # its former home
from bootstrap.mail import open_email_sender, open_pool, stoppable_handlers
from bootstrap.settings import Settings
from bootstrap.tracing import open_tracer
from domain.dead_letters import DeadLetterMessages
from domain.events import FanOut, TaskEvents
from domain.flow_gate import FlowGate
from domain.flow_settings import TaskTypeLimits
from domain.health import WriteHealth, store_probe
from domain.limits import TaskDataLimit
from domain.processing import ProcessorSettings, TaskProcessor
from domain.reconcile import Reconciler
from domain.retry import RetryPolicy
from domain.schedule_service import ScheduleService
from domain.scheduler import Scheduler
from domain.services import SubmissionLimits, TaskService
from domain.waiting import CompletionWaiters, TaskWaiting


def thread_pool(max_workers: int) -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="taskq-handler")
    yield executor
    executor.shutdown(wait=False, cancel_futures=True)


def task_observers(
    metrics: bool,
    task_metrics: Callable[[], TaskEvents],
    task_log: TaskEvents,
    waiters: TaskEvents,
) -> list[TaskEvents]:
    """Who hears task events: the log always (failures are always logged), the
    Prometheus counters unless ``TASKQ_METRICS=false`` (then never built), and the
    requests waiting for a task to finish."""
    return [task_metrics(), task_log, waiters] if metrics else [task_log, waiters]


def store_shared(backend: str) -> bool:
    """Whether another process may change the tasks this one reads: every backend but
    memory, whose tasks only this process changes (recording an event each time)."""
    return backend != "memory"


AWS_CLAIM_DELAY_SECONDS = 1.0
"""Claim at finish on aws unless ``TASKQ_CLAIM_DELAY_SECONDS`` says otherwise: a task
shorter than this costs one write fewer (its claim is never written)."""


def claim_delay(settings: Settings) -> float:
    """``TASKQ_CLAIM_DELAY_SECONDS``, or its backend's default: on aws a second, where a
    write is billed; 0 (claim first) on memory and sqlite, where it costs little."""
    if settings.claim_delay_seconds is not None:
        return settings.claim_delay_seconds
    return AWS_CLAIM_DELAY_SECONDS if settings.backend == "aws" else 0.0


class Container(containers.DeclarativeContainer):
    settings = providers.Singleton(Settings)

    clock = providers.Singleton(SystemClock)
    aws_ses = providers.Singleton(aws_client, "ses", settings)
    # Where emails go (bootstrap/mail.py): SMTP, SES, or the local mailbox file.
    mail = providers.Resource(open_email_sender, settings, aws_ses.provider)
    executor = providers.Resource(thread_pool, settings.provided.worker_count)
    # Where a task runs once an attempt of it was lost: a child process of its own.
    sandbox = providers.Singleton(ProcessHandlerSandbox, preload=settings.provided.handler_modules)
    # Warm processes, killed at the timeout or on cancel and replaced: one per worker
    # slot for the handlers of ``stoppable`` types, TASKQ_CPU_WORKERS for CPU-bound work.
    stoppable_pool = providers.Resource(
        open_pool, settings.provided.worker_count, settings.provided.handler_modules, "taskq-slot"
    )
    cpu_pool = providers.Resource(
        open_pool, settings.provided.cpu_workers, settings.provided.handler_modules, "taskq-cpu"
    )
    retry_policy = providers.Singleton(
        RetryPolicy,
        base_seconds=settings.provided.retry_base_seconds,
        cap_seconds=settings.provided.retry_cap_seconds,
    )
    # Spans around task runs, joined to the submitting request (OpenTelemetry when
    # OTEL_TRACES_EXPORTER names an exporter; bootstrap/tracing.py).
    tracer = providers.Resource(open_tracer, settings)
    # How large a payload or result may be: past TASKQ_INLINE_LIMIT, a blob's limit.
    task_data = providers.Singleton(
        TaskDataLimit.with_claim_check,
        inline_limit=settings.provided.inline_limit,
        max_blob_bytes=settings.provided.max_blob_bytes,
    )
    submission_limits = providers.Singleton(
        SubmissionLimits,
        default_max_attempts=settings.provided.default_max_attempts,
        max_attempts_limit=settings.provided.max_attempts_limit,
        idempotency_window_seconds=settings.provided.idempotency_window_seconds,
        max_queue_delay_seconds=settings.provided.max_queue_delay_seconds,
        max_backlog=settings.provided.backlog_bound,
        orphan_grace_seconds=settings.provided.orphan_grace_seconds,
        priorities=settings.provided.priority_queues,
        task_data=task_data,
    )

    # -- the backend ----------------------------------------------------------------
    # The AWS clients are built on first use, which only the aws backend makes; they
    # live here so that a test overrides them once (``container.aws_sqs.override``);
    # the long polls have a client of their own (a longer read timeout): a test that
    # hands in its own SQS client overrides ``aws_sqs_poll`` with it too.
    aws_sqs = providers.Singleton(aws_client, "sqs", settings)
    aws_sqs_poll = providers.Singleton(aws_sqs_poll_client, settings)
    aws_dynamodb = providers.Singleton(aws_client, "dynamodb", settings)
    aws_s3 = providers.Singleton(aws_client, "s3", settings)  # blobs in TASKQ_S3_BUCKET
    # Uploads, what the built-in types make, and the claim check's large task values.
    blobs = providers.Resource(open_blob_store, settings, aws_s3.provider)
    # One sub-container per backend, chosen by settings. Only the chosen one is plugged
    # into ``backend`` (``build_container``): ``init_resources`` starts every resource
    # it can reach, and it reaches no other backend's.
    selected_backend = providers.Selector(
        settings.provided.backend,
        memory=providers.Factory(MemoryBackend, settings=settings.provider, clock=clock.provider),
        sqlite=providers.Factory(
            SqliteBackend,
            settings=settings.provider,
            clock=clock.provider,
            blobs=blobs.provider,
        ),
        aws=providers.Factory(
            AwsBackend,
            settings=settings.provider,
            clock=clock.provider,
            sqs=aws_sqs.provider,
            sqs_poll=aws_sqs_poll.provider,
            dynamodb=aws_dynamodb.provider,
            s3=aws_s3.provider,
        ),
    )
    backend = providers.DependenciesContainer()
    backend_repository = backend.repository
    backend_queue = backend.queue
    workers = backend.workers
    schedules = backend.schedules

    # -- readiness: the outcome of the writes the use cases make (domain/health.py) ---
    # While a dependency is failing, /ready probes it: the task store with a write
    # (a worker heartbeat, removed at once), the queue with its ping.
    write_health = providers.Singleton(
        WriteHealth,
        clock,
        providers.Dict(
            repository=providers.Factory(store_probe, workers, clock),
            queue=backend_queue.provided.ping,
        ),
    )
    # Payloads and results over TASKQ_INLINE_LIMIT kept as blobs, on every backend.
    claim_check = providers.Singleton(
        claim_checked,
        backend_repository,
        blobs.provider,
        inline_limit=settings.provided.inline_limit,
        max_blob_bytes=settings.provided.max_blob_bytes,
    )
    repository = providers.Singleton(
        WriteTracking, claim_check, write_health, "repository", REPOSITORY_WRITES
    )
    queue = providers.Singleton(WriteTracking, backend_queue, write_health, "queue", QUEUE_WRITES)

    # -- the task types: the built-in ones work on blobs, the CPU pool and the tasks --
    task_types = providers.Singleton(
        load_task_types,
        settings.provided.handler_modules,
        settings.provided.max_attempts_limit,
        builtins=providers.Factory(
            functools.partial,
            register_builtins,
            blobs=blobs,
            cpu=cpu_pool,
            mail=mail,
            tasks=providers.Factory(TasksWhenUsed, repository.provider),
            public_url=settings.provided.api_url,
        ),
    )

    # -- observability: a metrics registry per container, never the global one --------
    metrics_registry = providers.Singleton(CollectorRegistry)
    task_metrics = providers.Singleton(
        PrometheusTaskEvents, metrics_registry, task_types.provided.names.call()
    )
    task_log = providers.Singleton(
        TaskEventLog, task_events_at_info=settings.provided.log_task_events
    )
    completion_waiters = providers.Singleton(CompletionWaiters)
    task_events = providers.Singleton(
        FanOut,
        providers.Callable(
            task_observers,
            settings.provided.metrics,
            task_metrics.provider,
            task_log,
            completion_waiters,
        ),
    )
    http_metrics = providers.Singleton(HttpMetrics, metrics_registry)
    # The cluster-wide gauges are the API process's alone (so a sum over processes
    # counts them once): only ``api_metrics`` registers them.
    api_metrics = providers.Singleton(
        MetricsExposition, metrics_registry, providers.Singleton(ClusterGauges, metrics_registry)
    )
    worker_metrics = providers.Singleton(MetricsExposition, metrics_registry)

    # -- use cases -------------------------------------------------------------------
    # What every use case works on (the providers above, so overriding them reaches all);
    # ``_run`` adds what submitting and running tasks share.
    _engine = {"repository": repository, "queue": queue, "clock": clock}
    _run = {**_engine, "task_types": task_types, "tracer": tracer, "events": task_events}
    task_service = providers.Singleton(
        TaskService, **_run, workers=workers, limits=submission_limits
    )
    task_waiting = providers.Singleton(
        TaskWaiting,
        get=task_service.provided.get,
        waiters=completion_waiters,
        poll_store=providers.Callable(store_shared, settings.provided.backend),
    )
    dead_letter_messages = providers.Singleton(DeadLetterMessages, queue=queue)
    processor_settings = providers.Singleton(
        ProcessorSettings,
        visibility_timeout=settings.provided.visibility_timeout,
        heartbeat_interval=settings.provided.heartbeat_interval,
        orphan_grace_seconds=settings.provided.orphan_grace_seconds,
        task_data=task_data,
        claim_delay_seconds=providers.Callable(claim_delay, settings),
    )
    # Flow control (issue 17): per-type limits and pause, shared through the store.
    flow_gate = providers.Singleton(
        FlowGate,
        store=backend.flow_store,
        queue=queue,
        clock=clock,
        task_types=task_types,
        refresh_seconds=settings.provided.flow_refresh_seconds,
        permit_seconds=settings.provided.visibility_timeout,
        extend_every=processor_settings.provided.heartbeat_every,
    )
    task_type_limits = providers.Singleton(
        TaskTypeLimits, store=backend.flow_store, gate=flow_gate, clock=clock
    )
    flow_metrics = providers.Singleton(FlowMetrics, metrics_registry, task_type_limits)
    store_metrics = providers.Singleton(
        SqliteWriteLockMetrics, metrics_registry, backend.write_lock_stats
    )
    process_metrics = providers.List(flow_metrics, store_metrics)
    """The collectors that read this process's state when scraped, registered on first use."""
    processor = providers.Factory(
        TaskProcessor,
        **_run,
        retry_policy=retry_policy,
        settings=processor_settings,
        executor=executor,
        sandbox=sandbox,
        stoppable=providers.Factory(stoppable_handlers, stoppable_pool),
        flow=flow_gate,
    )
    reconciler = providers.Factory(
        Reconciler,
        **_engine,
        stale_after_seconds=settings.provided.reconcile_stale_after_seconds,
        horizon_seconds=settings.provided.max_queue_delay_seconds,
        events=task_events,
    )
    # -- periodic schedules (domain/schedules.py) --------------------------------------
    calendar = providers.Singleton(CroniterCalendar)
    schedule_service = providers.Singleton(
        ScheduleService, schedules=schedules, task_types=task_types, calendar=calendar, clock=clock
    )
    scheduler = providers.Factory(
        Scheduler,
        schedules=schedules,
        service=task_service,
        calendar=calendar,
        interval_seconds=settings.provided.scheduler_interval_seconds,
        declarations=schedule_service,
    )


def build_container(settings: Settings | None = None) -> Container:
    """A fresh container for ``settings`` (the environment's by default), wired to the
    selected backend's sub-container. Nothing is opened until ``init_resources``."""
    container = Container()
    if settings is not None:
        container.settings.override(providers.Object(settings))
    container.backend.override(container.selected_backend())
    return container
