"""Background jobs on procrastinate's PostgreSQL queue: extraction, narratives, and the queue's upkeep.

Jobs are deferred by services inside their own transactions (``storage.queue``); this package only
runs them. A worker runs inside ``engramdb serve`` by default (``ENGRAM_WORKER_IN_SERVE``) and as
``engramdb worker`` processes to scale out; any number of them share the queue.
"""

from engramdb.jobs.worker import build_app, run_worker

__all__ = ["build_app", "run_worker"]
