"""Settings: one object, read from ``ENGRAM_*`` environment variables when built, never at import.

Every field is documented in ``docs/configuration.md``; a test fails when one is not.
"""

from __future__ import annotations

import os
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the platform says, else the machine's)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("engramdb", appauthor=False))


def _split(value: Any) -> Any:
    """A list setting from the environment: comma- or space-separated (a list or tuple passes as it is)."""
    if isinstance(value, str):
        return value.replace(",", " ").split()
    return list(value) if isinstance(value, tuple | list) else value


class Settings(BaseSettings):
    """Runtime configuration of an Engram process (API server, worker or CLI)."""

    model_config = SettingsConfigDict(env_prefix="ENGRAM_", extra="ignore", frozen=True)

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://user:pass@host:5432/db). Unset: embedded Postgres.",
    )
    read_database_url: str | None = Field(
        default=None,
        description="A streaming replica of the database for read-only work (searches, lists, context). Unset: "
        "the primary serves every read.",
    )
    data_dir: Path = Field(default_factory=_default_data_dir, description="Where the embedded Postgres lives.")
    embedded_database: str = Field(default="engram", description="Database name inside the embedded server.")
    host: str = Field(default="127.0.0.1", description="Address `engramdb serve` binds.")
    port: int = Field(default=8420, ge=1, le=65535, description="Port `engramdb serve` binds.")
    workers: int = Field(default=1, ge=1, le=64, description="API worker processes for `engramdb serve`.")
    auto_migrate: bool = Field(default=True, description="Apply pending migrations when the server starts.")
    db_pool_size: int = Field(default=10, ge=1, le=200, description="Connections kept per process.")
    db_max_overflow: int = Field(default=10, ge=0, le=200, description="Extra connections under load.")
    db_statement_timeout_ms: int = Field(
        default=30_000, ge=100, description="Server-side timeout of one statement, in milliseconds."
    )
    db_pool_wait_ms: int = Field(
        default=500,
        ge=10,
        le=60_000,
        description="How long an API request waits for a free database connection before it is answered 503.",
    )
    max_active_requests: int = Field(
        default=0,
        ge=0,
        le=10_000,
        description="API requests one process works on at once (0: one per CPU core); more wait their turn.",
    )
    admission_wait_ms: int = Field(
        default=50,
        ge=0,
        le=60_000,
        description="How long a request waits for its turn before it is answered 503 with Retry-After.",
    )
    max_request_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 above it)."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info", description="Log level.")
    key_touch_interval_s: int = Field(
        default=60, ge=0, description="How often (seconds) an API key's last_used_at is refreshed."
    )
    idempotency_window_s: int = Field(
        default=86_400,
        ge=60,
        le=30 * 86_400,
        description="How long (seconds) the first answer to a POST sent with an Idempotency-Key is replayed.",
    )
    embedder: str = Field(
        default="minilm",
        description="Embedding provider: minilm (bundled, offline), openai (any compatible URL), hash.",
    )
    embedder_url: str | None = Field(default=None, description="Base URL of an OpenAI-compatible embeddings API.")
    embedder_model: str | None = Field(default=None, description="Model name sent to that API.")
    embedder_api_key: str | None = Field(default=None, description="Bearer token for that API, if it needs one.")
    embedder_dimensions: int | None = Field(default=None, ge=1, le=16000, description="Vector length of that model.")
    embed_batch_size: int = Field(default=32, ge=1, le=2048, description="Texts per embedding call.")
    embed_queue_texts: int = Field(
        default=2_048,
        ge=1,
        le=1_000_000,
        description="Texts of API requests waiting to be embedded in one process before new ones are answered 503.",
    )
    embed_threads: int = Field(
        default=0, ge=0, le=256, description="CPU threads for the local model (0: every core the process may use)."
    )
    message_vectors: Literal["turn", "sentences", "sentences+context"] = Field(
        default="sentences+context",
        description="What of a message is embedded: the turn only, each sentence, or also the turn after the previous.",
    )
    search_language: str = Field(
        default="english", pattern=r"^[a-z_]+$", description="PostgreSQL text-search configuration for new rows."
    )
    exact_search_limit: int = Field(
        default=20_000, ge=0, description="Filtered vector searches over at most this many rows scan exactly."
    )
    org_index_rows: int = Field(
        default=50_000,
        ge=0,
        description="An organization with more embedded rows than this in a table gets its own HNSW index (0: never).",
    )
    org_index_check_s: float = Field(
        default=300,
        gt=0,
        description="Seconds between checks for organizations that need their own index.",
    )
    agent_sweep_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="Seconds between sweeps that mark silent agents offline and return tasks whose lease ran out.",
    )
    index_build_memory: str = Field(
        default="256MB", pattern=r"^[0-9]+(kB|MB|GB)$", description="maintenance_work_mem for building vector indexes."
    )

    llm_base_url: str | None = Field(
        default=None,
        description="Base URL of an OpenAI-compatible chat API (…/v1). Unset: no LLM, offline extraction.",
    )
    llm_model: str | None = Field(default=None, description="Chat model name sent to that API.")
    llm_api_key: str | None = Field(default=None, description="Bearer token for the chat API, if it needs one.")
    llm_timeout_s: float = Field(default=60.0, gt=0, le=3600, description="Timeout of one chat completion, seconds.")
    llm_max_retries: int = Field(
        default=2, ge=0, le=10, description="Repairs of malformed output and retries of failed calls per request."
    )
    llm_structured_output: Literal["auto", "json_schema", "json_object", "none"] = Field(
        default="auto",
        description="How JSON is asked for: auto tries json_schema, falls back to json_object, then plain prompting.",
    )
    llm_temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature of chat calls.")
    decay_half_life_days: dict[str, float] = Field(
        default_factory=lambda: {"episodic": 30.0, "task": 14.0, "preference": 180.0, "fact": 0.0, "procedural": 0.0},
        description="Half-life of a memory's importance per type, in days since it was last read or confirmed "
        "(JSON); 0 or a missing type: no decay.",
    )
    worker_in_serve: bool = Field(default=True, description="Run a background job worker inside `engramdb serve`.")
    worker_concurrency: int = Field(
        default=2, ge=1, le=64, description="Extraction and narrative jobs one worker runs at once (the jobs lane)."
    )
    document_concurrency: int = Field(
        default=1, ge=1, le=16, description="Background document ingests one worker runs at once (their own lane)."
    )
    document_inline_bytes: int = Field(
        default=131_072,
        ge=0,
        le=10_485_760,
        description="Documents larger than this (bytes) are ingested by a background job: the write answers "
        "202 with the job. 0 sends every document to the queue.",
    )
    document_queue_per_org: int = Field(
        default=20,
        ge=1,
        le=10_000,
        description="Background document ingests one organization may have queued or running at once (429 beyond).",
    )
    webhook_concurrency: int = Field(
        default=8, ge=1, le=256, description="Webhook deliveries one worker sends at once (their own lane)."
    )
    webhook_org_concurrency: int = Field(
        default=2, ge=1, le=64, description="Deliveries of one organization being sent at once, across all workers."
    )
    worker_stalled_s: float = Field(
        default=30.0, ge=1, le=3600, description="A worker silent this long is gone: its jobs are run again."
    )
    job_max_attempts: int = Field(default=5, ge=1, le=50, description="Attempts of a failing job before it fails.")
    webhook_max_attempts: int = Field(
        default=10,
        ge=1,
        le=50,
        description="Attempts of a webhook delivery (network error, 408, 429, 5xx) before it fails.",
    )
    webhook_retry_base_s: float = Field(
        default=60.0, gt=0, le=86_400, description="Wait before a webhook's second attempt; it doubles after each."
    )
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="Time one webhook attempt may take, in all."
    )
    webhook_retention_days: int = Field(
        default=30, ge=1, le=3650, description="Finished webhook deliveries are deleted after this many days."
    )
    retention_sweep_minutes: int = Field(
        default=10,
        ge=0,
        le=1440,
        description="Minutes between retention sweeps (every organization's policies and expired rows; 0: off). "
        "1-59, or whole hours that divide a day (60, 120, … 1440).",
    )
    retention_batch_rows: int = Field(
        default=1_000,
        ge=1,
        le=100_000,
        description="Rows a retention run archives or deletes per statement; it commits between batches.",
    )
    expired_grace_days: int = Field(
        default=0,
        ge=0,
        le=3650,
        description="Days an expired memory or session is kept (hidden, restorable) before the sweep deletes it.",
    )
    archive_dir: Path | None = Field(
        default=None,
        description="Where audit-log and access-log rows are exported (JSON Lines) before retention removes "
        "them. Unset: `archive` in ENGRAM_DATA_DIR.",
    )
    webhook_allow_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Host names webhooks may reach whatever they resolve to (comma-separated; `*.example.org` "
        "for every subdomain). Internal destinations are refused otherwise.",
    )
    webhook_allow_networks: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = Field(
        default=(),
        description="Address ranges webhooks may reach though internal (comma-separated CIDR, e.g. 10.1.2.0/24).",
    )
    webhook_response_chars: int = Field(
        default=0,
        ge=0,
        le=500,
        description="Characters of each webhook response body kept in the delivery log (0: none, status only).",
    )
    webhook_block_private: bool | None = Field(
        default=None,
        description="Deprecated: internal destinations are refused by default now. `true` is accepted (no "
        "effect); `false` is refused at start-up (use the allow lists).",
    )
    metrics_token: str | None = Field(
        default=None,
        description="Bearer token that lets a scraper read /metrics from another machine (loopback needs none).",
    )
    metrics_loopback: bool = Field(
        default=True, description="Serve /metrics to loopback clients without the token (off behind a local proxy)."
    )
    otel_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP collector that receives traces, e.g. http://127.0.0.1:4318 (`/v1/traces` is added). "
        "Unset (the default): no tracing, nothing sent. Needs `pip install 'engramdb[otel]'`.",
    )
    otel_service_name: str = Field(
        default="engramdb", min_length=1, max_length=200, description="`service.name` of the traces' resource."
    )
    web_secret: str | None = Field(
        default=None,
        description="Key that signs the dashboard's session cookies (at least 32 characters). Unset: a random one "
        "kept in <data dir>/web-secret. Give every server behind one address the same.",
    )
    web_session_hours: int = Field(
        default=12, ge=1, le=720, description="How long a dashboard sign-in lasts (its key is checked on each page)."
    )
    rate_limit_window_s: int = Field(
        default=60, ge=1, le=86_400, description="Rate limits are requests per this many seconds."
    )
    rate_limit_burst: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Share of a limit's allowance a quiet client may use at once (at least one request); the "
        "rest comes back evenly over the window.",
    )
    rate_limit_reads: int = Field(default=0, ge=0, description="Reads per window per API key (0: no limit).")
    rate_limit_writes: int = Field(default=0, ge=0, description="Writes per window per API key (0: no limit).")
    rate_limit_searches: int = Field(default=0, ge=0, description="Searches per window per API key (0: no limit).")
    rate_limit_extraction: int = Field(
        default=0, ge=0, description="Writes that queue extraction, per window per API key (0: no limit)."
    )
    rate_limit_exports: int = Field(default=0, ge=0, description="Exports and imports per window per key (0: none).")
    org_rate_limit_reads: int = Field(default=0, ge=0, description="Reads per window per organization (0: no limit).")
    org_rate_limit_writes: int = Field(default=0, ge=0, description="Writes per window per organization (0: none).")
    org_rate_limit_searches: int = Field(default=0, ge=0, description="Searches per window per organization.")
    org_rate_limit_extraction: int = Field(
        default=0, ge=0, description="Writes that queue extraction, per window per organization (0: no limit)."
    )
    org_rate_limit_exports: int = Field(default=0, ge=0, description="Exports and imports per window per organization.")
    extraction: Literal["auto", "offline", "llm", "off"] = Field(
        default="auto",
        description="How messages become memories: auto (the LLM if configured, else offline), offline, llm, off.",
    )

    @field_validator("web_secret")
    @classmethod
    def _check_web_secret(cls, value: str | None) -> str | None:
        if not value:
            return None
        if len(value) < 32:
            raise ValueError("ENGRAM_WEB_SECRET must be a random string of at least 32 characters")
        return value

    @field_validator("metrics_token")
    @classmethod
    def _check_metrics_token(cls, value: str | None) -> str | None:
        if not value:
            return None
        if value.lower() in {"change-me", "changeme", "secret", "token"} or len(value) < 16:
            raise ValueError("ENGRAM_METRICS_TOKEN must be a random string of at least 16 characters")
        return value

    @field_validator("decay_half_life_days")
    @classmethod
    def _check_half_lives(cls, value: dict[str, float]) -> dict[str, float]:
        from typing import get_args

        from engramdb.schemas.memories import MemoryType

        known = set(get_args(MemoryType))
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown memory types {unknown}: the types are {sorted(known)}")
        if any(not 0 <= days <= 36_500 for days in value.values()):
            raise ValueError("a half-life is 0 (no decay) to 36,500 days")
        return value

    @field_validator("retention_sweep_minutes")
    @classmethod
    def _check_sweep_minutes(cls, value: int) -> int:
        if value < 60 or (value % 60 == 0 and 1440 % value == 0):
            return value
        raise ValueError(
            "ENGRAM_RETENTION_SWEEP_MINUTES is 0 (off), 1 to 59, or whole hours that divide a day "
            "(60, 120, 180, 240, 360, 480, 720, 1440)"
        )

    @field_validator("embedder_api_key", "llm_api_key")
    @classmethod
    def _check_key(cls, value: str | None) -> str | None:
        if value is not None and value.lower() in {"change-me", "changeme", "your-api-key", "sk-..."}:
            raise ValueError("the API key is a placeholder: set the real key or unset it")
        return value or None

    @field_validator("webhook_allow_hosts", mode="before")
    @classmethod
    def _check_allow_hosts(cls, value: Any) -> Any:
        names = _split(value)
        if not isinstance(names, list):
            return names
        hosts = []
        for name in names:
            host = str(name).strip().rstrip(".").lower()
            if not host:
                continue
            try:
                ip_address(host.strip("[]"))
            except ValueError:
                hosts.append(host)
                continue
            raise ValueError(
                f"ENGRAM_WEBHOOK_ALLOW_HOSTS takes host names; put the address {host} in ENGRAM_WEBHOOK_ALLOW_NETWORKS"
            )
        return tuple(hosts)

    @field_validator("webhook_allow_networks", mode="before")
    @classmethod
    def _check_allow_networks(cls, value: Any) -> Any:
        ranges = _split(value)
        if not isinstance(ranges, list):
            return ranges
        try:
            return tuple(ip_network(str(r).strip()) for r in ranges if str(r).strip())
        except ValueError as exc:
            raise ValueError(
                f"ENGRAM_WEBHOOK_ALLOW_NETWORKS takes CIDR ranges such as 10.1.2.0/24 or fd12::/48 ({exc})"
            ) from None

    @field_validator("webhook_block_private")
    @classmethod
    def _check_block_private(cls, value: bool | None) -> bool | None:
        if value is False:
            raise ValueError(
                "ENGRAM_WEBHOOK_BLOCK_PRIVATE=false no longer lets webhooks reach internal addresses: unset it and "
                "name the receivers you trust in ENGRAM_WEBHOOK_ALLOW_HOSTS or ENGRAM_WEBHOOK_ALLOW_NETWORKS "
                "(0.0.0.0/0,::/0 allows every address but cloud metadata endpoints)"
            )
        return value

    @field_validator("database_url", "read_database_url")
    @classmethod
    def _check_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or value.strip() == "":
            return None
        name = f"ENGRAM_{(info.field_name or '').upper()}"
        if not value.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            raise ValueError(f"{name} must be a PostgreSQL URL such as postgresql://user:pass@host:5432/engram")
        if "change-me" in value or "CHANGEME" in value:
            raise ValueError(f"{name} still holds a placeholder password: set a real one")
        return value

    @property
    def active_requests(self) -> int:
        """``max_active_requests``, with 0 read as one per usable core."""
        return self.max_active_requests or usable_cores()

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def archive_path(self) -> Path:
        """Where retention exports log rows before removing them."""
        return self.archive_dir if self.archive_dir is not None else self.data_dir / "archive"
