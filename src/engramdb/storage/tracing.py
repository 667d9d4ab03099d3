"""A span per SQL statement, for the optional tracing (``engramdb.api.tracing``): engine events that open a
client span around each statement, a child of the request's span, with its text (placeholders, never the
bound values). Written here rather than taken from OpenTelemetry's SQLAlchemy instrumentation, which pins
the SQLAlchemy versions it accepts below the one Engram uses. Imported only when tracing is on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from sqlalchemy import event

from engramdb.storage.database import Database

MAX_STATEMENT_CHARS = 4_000


def trace_statements(db: Database, tracer: Tracer) -> Callable[[], None]:
    """Trace every statement of ``db``'s engine from now on; the callable returned stops it."""

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        verb = statement.split(None, 1)[0].upper() if statement.strip() else "SQL"
        attributes = {"db.system.name": "postgresql", "db.query.text": statement[:MAX_STATEMENT_CHARS]}
        context._engram_span = tracer.start_span(verb, kind=SpanKind.CLIENT, attributes=attributes)

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        span = getattr(context, "_engram_span", None)
        if span is not None:
            span.end()

    def failed(exception_context: Any) -> None:
        span = getattr(exception_context.execution_context, "_engram_span", None)
        if span is not None:
            span.set_status(Status(StatusCode.ERROR, type(exception_context.original_exception).__name__))
            span.end()

    engine = db.engine.sync_engine
    hooks: dict[str, Callable[..., None]] = {
        "before_cursor_execute": before,
        "after_cursor_execute": after,
        "handle_error": failed,
    }
    for name, hook in hooks.items():
        event.listen(engine, name, hook)

    def stop() -> None:
        for name, hook in hooks.items():
            event.remove(engine, name, hook)

    return stop
