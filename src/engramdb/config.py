"""Settings: one object, read from ``ENGRAM_*`` environment variables when built, never at import.

Every field is documented in ``docs/configuration.md``; a test fails when one is not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("engramdb", appauthor=False))


class Settings(BaseSettings):
    """Runtime configuration of an Engram process (API server, worker or CLI)."""

    model_config = SettingsConfigDict(env_prefix="ENGRAM_", extra="ignore", frozen=True)

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://user:pass@host:5432/db). Unset: embedded Postgres.",
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
    max_request_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 above it)."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info", description="Log level.")
    key_touch_interval_s: int = Field(
        default=60, ge=0, description="How often (seconds) an API key's last_used_at is refreshed."
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
    worker_in_serve: bool = Field(default=True, description="Run a background job worker inside `engramdb serve`.")
    worker_concurrency: int = Field(default=2, ge=1, le=64, description="Jobs one worker runs at once.")
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
    webhook_block_private: bool = Field(
        default=False,
        description="Refuse to deliver webhooks to loopback, private, link-local or reserved addresses "
        "(set it when organizations you do not trust share the server).",
    )
    extraction: Literal["auto", "offline", "llm", "off"] = Field(
        default="auto",
        description="How messages become memories: auto (the LLM if configured, else offline), offline, llm, off.",
    )

    @field_validator("embedder_api_key", "llm_api_key")
    @classmethod
    def _check_key(cls, value: str | None) -> str | None:
        if value is not None and value.lower() in {"change-me", "changeme", "your-api-key", "sk-..."}:
            raise ValueError("the API key is a placeholder: set the real key or unset it")
        return value or None

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        if not value.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            raise ValueError(
                "ENGRAM_DATABASE_URL must be a PostgreSQL URL such as postgresql://user:pass@host:5432/engram"
            )
        if "change-me" in value or "CHANGEME" in value:
            raise ValueError("ENGRAM_DATABASE_URL still holds a placeholder password: set a real one")
        return value

    @property
    def embedded(self) -> bool:
        return self.database_url is None
