"""The procrastinate app, its tasks and the worker loop.

* Retries: a failed job is retried with exponential backoff (2, 4, 8, … s) up to
  ``ENGRAM_JOB_MAX_ATTEMPTS`` attempts in all; each failure is recorded on the tenant's job row.
* Order: jobs of one session share a procrastinate ``lock``, so they run one at a time, in order.
* Crashes: a worker that dies (``kill -9``) stops sending heartbeats; the ``recover`` periodic task of
  any live worker (and every worker as it starts) puts its jobs back in the queue once the dead one
  has been silent for ``ENGRAM_WORKER_STALLED_S``. The handlers are idempotent
  in effect (see ``services.extraction``), so the retry finishes the work exactly once.
* Webhook deliveries retry themselves (``services.webhooks``): a failed attempt defers the next one.
* Retention: every ``ENGRAM_RETENTION_SWEEP_MINUTES`` a sweep applies every organization's retention
  policies and deletes expired memories and sessions (``services/governance/retention.py``).
* Lanes: extraction and narratives (and the upkeep) are worked in ``queue.QUEUE`` with
  ``ENGRAM_WORKER_CONCURRENCY``, webhook deliveries in ``queue.WEBHOOKS`` with
  ``ENGRAM_WEBHOOK_CONCURRENCY``: two procrastinate workers in one process, so a backlog of deliveries
  (a slow receiver, an org with many endpoints) never holds up another org's extraction. Within the
  delivery lane each org has its own line (``delivery.org_lock``). Large document ingests have a third
  lane, ``queue.DOCUMENTS`` with ``ENGRAM_DOCUMENT_CONCURRENCY``, one at a time per organization.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from procrastinate import App, JobContext, PsycopgConnector, RetryStrategy
from procrastinate.exceptions import ConnectorException

from engramdb.config import Settings
from engramdb.services.core import jobs
from engramdb.services.core.runtime import Runtime
from engramdb.services.distill import extraction, narratives
from engramdb.services.document import background as background_ingest
from engramdb.services.governance import retention
from engramdb.services.webhooks import delivery
from engramdb.services.webhooks.sender import Sender
from engramdb.storage import queue

_log = logging.getLogger("engramdb.jobs")
RETENTION_SWEEP = "engram.retention_sweep"
GRACE_S = 10.0
DOCUMENT_GRACE_S = 1.0


def build_app(url: str, settings: Settings) -> App:
    """A procrastinate app on ``url`` (the owner's connection: the queue is not tenant data)."""
    connector = PsycopgConnector(
        conninfo=url,
        kwargs={"options": f"-c search_path={queue.SCHEMA},public"},
        min_size=1,
        max_size=settings.worker_concurrency + settings.webhook_concurrency + settings.document_concurrency + 3,
    )
    app = App(connector=connector)
    # procrastinate reads max_attempts=0 as "no limit": one attempt in all is no retry at all.
    retry: RetryStrategy | bool = (
        RetryStrategy(max_attempts=settings.job_max_attempts - 1, exponential_wait=2)
        if settings.job_max_attempts > 1
        else False
    )

    def _runtime(context: JobContext) -> Runtime:
        runtime: Runtime = context.additional_context["runtime"]
        return runtime

    def _attempt(context: JobContext) -> tuple[int, bool]:
        done = context.job.attempts
        return done + 1, done + 1 >= settings.job_max_attempts

    @app.task(name=queue.EXTRACT, queue=queue.QUEUE, retry=retry, pass_context=True)
    async def extract(context: JobContext, org_id: str, job_id: str) -> dict[str, Any] | None:
        attempt, final = _attempt(context)
        return await extraction.run(
            _runtime(context), uuid.UUID(org_id), uuid.UUID(job_id), attempt=attempt, final=final
        )

    @app.task(name=queue.NARRATE, queue=queue.QUEUE, retry=retry, pass_context=True)
    async def narrate(context: JobContext, org_id: str, job_id: str) -> dict[str, Any] | None:
        attempt, final = _attempt(context)
        return await narratives.run(
            _runtime(context), uuid.UUID(org_id), uuid.UUID(job_id), attempt=attempt, final=final
        )

    @app.task(name=queue.INGEST_DOCUMENT, queue=queue.DOCUMENTS, retry=retry, pass_context=True)
    async def ingest_document(context: JobContext, org_id: str, job_id: str) -> dict[str, Any] | None:
        attempt, final = _attempt(context)
        return await background_ingest.run(
            _runtime(context), uuid.UUID(org_id), uuid.UUID(job_id), attempt=attempt, final=final
        )

    @app.task(name=queue.DELIVER_WEBHOOK, queue=queue.WEBHOOKS, retry=retry, pass_context=True)
    async def deliver_webhook(context: JobContext, org_id: str, delivery_id: str) -> dict[str, Any] | None:
        # Failed HTTP attempts are retried by the delivery itself; ``retry`` covers errors of our own.
        runtime, job = _runtime(context), context.job
        assert job.id is not None, "a running job has an id"
        org, delivery_uuid = uuid.UUID(org_id), uuid.UUID(delivery_id)
        if not delivery.in_line(job.lock):  # deferred by an event, a replay or a retry come due
            return await delivery.line_up(runtime.db, runtime.settings, org, delivery_uuid, queue_job_id=job.id)
        sender: Sender = context.additional_context["webhook_sender"]
        return await delivery.deliver(
            runtime.db, runtime.settings, org, delivery_uuid, queue_job_id=job.id, sender=sender
        )

    @app.periodic(cron="17 3 * * *", periodic_id="webhook_retention")
    @app.task(name="engram.prune_webhook_deliveries", queue=queue.QUEUE, pass_context=True)
    async def prune_webhook_deliveries(context: JobContext, timestamp: int) -> int:
        return await delivery.prune(_runtime(context).db, retention_days=settings.webhook_retention_days)

    @app.periodic(cron="* * * * *", periodic_id="recover")
    @app.task(name="engram.recover", queue=queue.QUEUE, pass_context=True)
    async def recover(context: JobContext, timestamp: int) -> int:
        return await requeue_stalled(context.app, _runtime(context), settings.worker_stalled_s)

    @app.periodic(cron="*/10 * * * *", periodic_id="narratives")
    @app.task(name="engram.queue_narratives", queue=queue.QUEUE, pass_context=True)
    async def queue_narratives(context: JobContext, timestamp: int) -> int:
        return await narratives.queue_stale(_runtime(context))

    del extract, narrate, ingest_document, deliver_webhook, prune_webhook_deliveries, recover, queue_narratives
    if settings.retention_sweep_minutes:
        # One sweep queued at a time: a sweep longer than the interval is not stacked behind itself.
        @app.periodic(cron=sweep_cron(settings.retention_sweep_minutes), periodic_id="retention")
        @app.task(name=RETENTION_SWEEP, queue=queue.QUEUE, queueing_lock=RETENTION_SWEEP, pass_context=True)
        async def retention_sweep(context: JobContext, timestamp: int) -> int:
            return await retention.sweep(_runtime(context))

        del retention_sweep
    return app


def sweep_cron(minutes: int) -> str:
    """The cron line of a sweep every ``minutes`` (1-59, or whole hours that divide a day: see Settings)."""
    if minutes < 60:
        return f"*/{minutes} * * * *"
    hours = minutes // 60
    return "0 0 * * *" if hours == 24 else f"0 */{hours} * * *"


async def requeue_stalled(app: App, runtime: Runtime, silent_s: float) -> int:
    """Put back in the queue the jobs of workers that stopped sending heartbeats ``silent_s`` ago, and the
    unfinished jobs whose queue entry ended without them (cut short in a final attempt)."""
    stalled = list(await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=silent_s))
    requeued = 0
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
        except ConnectorException:  # another worker requeued it first
            continue
        _log.warning("requeued job %s (%s): its worker stopped", job.id, job.task_name)
        requeued += 1
    await app.job_manager.prune_stalled_workers(seconds_since_heartbeat=silent_s)
    requeued += await delivery.requeue_orphans(runtime.db, quiet_s=silent_s)
    return requeued + await jobs.requeue_orphans(runtime.db, quiet_s=silent_s)


async def run_worker(app: App, runtime: Runtime, *, name: str = "engram") -> None:
    """Run jobs until cancelled: one procrastinate worker per lane (``name`` for extraction and narratives,
    ``name.webhooks`` for deliveries, each with its own concurrency), sharing the process's webhook client,
    which is closed when they stop. Jobs cut short by the cancellation are retried (by this or another
    worker) once they are found stalled."""
    settings = runtime.settings
    stalled_s = settings.worker_stalled_s
    # name, concurrency, and how long a stop waits for running jobs before cutting them short: a document
    # ingest may run for minutes and starts over from its bytes anyway, so it is cut at once.
    lanes = {
        queue.QUEUE: (name, settings.worker_concurrency, GRACE_S),
        queue.WEBHOOKS: (f"{name}.webhooks", settings.webhook_concurrency, GRACE_S),
        queue.DOCUMENTS: (f"{name}.documents", settings.document_concurrency, DOCUMENT_GRACE_S),
    }
    async with app.open_async(), Sender(settings) as sender:
        await requeue_stalled(app, runtime, stalled_s)
        context = {"runtime": runtime, "webhook_sender": sender}
        async with asyncio.TaskGroup() as lane_workers:  # one failing stops the other
            for lane, (worker_name, concurrency, grace_s) in lanes.items():
                work = app.run_worker_async(
                    queues=[lane],
                    name=worker_name,
                    concurrency=concurrency,
                    install_signal_handlers=False,
                    additional_context=context,
                    update_heartbeat_interval=min(10.0, stalled_s / 3),
                    stalled_worker_timeout=stalled_s,
                    shutdown_graceful_timeout=grace_s,
                    # Due retries (webhook deliveries) are found by polling: no sooner than the shortest backoff.
                    fetch_job_polling_interval=min(5.0, settings.webhook_retry_base_s),
                )
                lane_workers.create_task(work, name=f"engram-lane-{lane}")
