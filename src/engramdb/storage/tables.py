"""SQLAlchemy Core descriptions of the tables the migrations create (queries only: DDL lives in migrations/).

tests/storage/test_schema_rules.py checks that these tables, columns, types and nullability match the migrated
database, both ways.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Double,
    Identity,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, REGCONFIG, TSVECTOR, UUID
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import func
from sqlalchemy.types import UserDefinedType

from engramdb.storage.vector_type import Embedding

metadata = MetaData()


class VectorList(UserDefinedType[list[list[float]]]):
    """``vector[]``: written from a list of float lists; read back only in SQL (as the raw array text)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "vector[]"

    def bind_processor(self, dialect: Dialect) -> Callable[[list[list[float]] | None], str | None]:
        def process(value: list[list[float]] | None) -> str | None:
            if value is None:
                return None
            return "{" + ",".join('"[' + ",".join(repr(float(x)) for x in v) + ']"' for v in value) + "}"

        return process


def _uuid(name: str, *, nullable: bool = True, primary_key: bool = False) -> Column[object]:
    return Column(name, UUID(as_uuid=True), nullable=nullable, primary_key=primary_key)


def _ts(name: str, *, nullable: bool = True) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


def _scope() -> list[Column[object]]:
    """The team, user, agent and app a session, message or memory belongs to."""
    return [_uuid("team_id"), _uuid("user_id"), _uuid("agent_id"), _uuid("app_id")]


def _meta() -> Column[object]:
    return Column("metadata", JSONB, nullable=False)


organization = Table(
    "organization",
    metadata,
    _uuid("org_id", primary_key=True),
    Column("name", Text, nullable=False),
    _meta(),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    Column("isolation", Text, nullable=False),
)

team = Table(
    "team",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text),
    _meta(),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    Column("isolation", Text, nullable=False),
)

user_account = Table(
    "user_account",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    Column("external_id", Text),
    _uuid("team_id"),
    Column("display_name", Text),
    Column("email", Text),
    _meta(),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

agent = Table(
    "agent",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text),
    _uuid("team_id"),
    _uuid("user_id"),
    _meta(),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    Column("type", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("config", JSONB, nullable=False),
    Column("metrics", JSONB, nullable=False),
    Column("capabilities", ARRAY(Text), nullable=False),
    Column("heartbeat_interval_s", Integer, nullable=False),
    _ts("last_heartbeat_at"),
)

app = Table(
    "app",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text),
    Column("is_active", Boolean, nullable=False),
    _meta(),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    Column("isolation", Text, nullable=False),
)

api_key = Table(
    "api_key",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    Column("name", Text, nullable=False),
    Column("prefix", Text, nullable=False),
    Column("secret_hash", Text, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False),
    _uuid("team_id"),
    _uuid("user_id"),
    _uuid("agent_id"),
    _ts("expires_at"),
    _ts("revoked_at"),
    _ts("last_used_at"),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

session = Table(
    "session",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    *_scope(),
    Column("title", Text),
    Column("status", Text, nullable=False),
    Column("tags", ARRAY(Text), nullable=False),
    _meta(),
    Column("message_count", Integer, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("extracted_seq", BigInteger, nullable=False),
    Column("summary", Text),
    Column("summary_seq", BigInteger, nullable=False),
    _ts("summary_updated_at"),
    _ts("last_message_at"),
    _ts("closed_at"),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    _ts("expires_at"),
)

message = Table(
    "message",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    _uuid("session_id", nullable=False),
    Column("seq", BigInteger, nullable=False),
    _uuid("parent_id"),
    *_scope(),
    Column("role", Text, nullable=False),
    Column("name", Text),
    Column("content", Text, nullable=False),
    Column("channel", Text),
    Column("tags", ARRAY(Text), nullable=False),
    _meta(),
    Column("content_hash", LargeBinary, nullable=False),
    Column("embedding", Embedding()),
    Column("part_embeddings", VectorList()),
    Column("context_embedding", Embedding()),
    Column("embedding_model", Text),
    Column("language", REGCONFIG, nullable=False),
    Column("search_tsv", TSVECTOR),
    _ts("occurred_at", nullable=False),
    Column("created_at", DateTime(timezone=True), primary_key=True, server_default=func.now()),
)

memory = Table(
    "memory",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    *_scope(),
    _uuid("session_id"),
    Column("content", Text, nullable=False),
    Column("memory_type", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("importance", REAL, nullable=False),
    Column("access_count", Integer, nullable=False),
    _ts("last_accessed_at"),
    Column("tags", ARRAY(Text), nullable=False),
    Column("categories", ARRAY(Text), nullable=False),
    _meta(),
    Column("source", Text, nullable=False),
    Column("source_message_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
    Column("content_hash", LargeBinary, nullable=False),
    Column("embedding", Embedding()),
    Column("embedding_model", Text),
    Column("language", REGCONFIG, nullable=False),
    Column("search_tsv", TSVECTOR),
    Column("version", Integer, nullable=False),
    Column("speaker", Text),
    _ts("occurred_at"),
    Column("extractor", Text),
    _ts("expires_at"),
    _ts("archived_at"),
    _ts("deleted_at"),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

memory_history = Table(
    "memory_history",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    _uuid("memory_id", nullable=False),
    Column("version", Integer, nullable=False),
    Column("action", Text, nullable=False),
    Column("old_values", JSONB),
    Column("new_values", JSONB),
    _uuid("actor_key_id"),
    Column("actor", Text, nullable=False),
    Column("request_id", Text),
    _ts("changed_at", nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    _uuid("key_id"),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("entity_type", Text, nullable=False),
    _uuid("entity_id"),
    Column("request_id", Text),
    Column("client_addr", Text),
    Column("details", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), primary_key=True, server_default=func.now()),
)

memory_access_log = Table(
    "memory_access_log",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    _uuid("memory_id", nullable=False),
    Column("access_type", Text, nullable=False),
    _uuid("key_id"),
    Column("request_id", Text),
    Column("score", REAL),
    Column("accessed_at", DateTime(timezone=True), primary_key=True, server_default=func.now()),
)

job = Table(
    "job",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False),
    _uuid("session_id"),
    _uuid("user_id"),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("error", Text),
    Column("result", JSONB, nullable=False),
    Column("provider", Text),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("llm_calls", Integer, nullable=False),
    Column("queue_job_id", BigInteger),
    _ts("created_at", nullable=False),
    _ts("started_at"),
    _ts("finished_at"),
    _ts("updated_at", nullable=False),
)

entity = Table(
    "entity",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    _uuid("user_id"),
    Column("name", Text, nullable=False),
    Column("normalized_name", Text, nullable=False),
    Column("entity_type", Text, nullable=False),
    Column("aliases", ARRAY(Text), nullable=False),
    Column("alias_keys", ARRAY(Text), nullable=False),
    Column("alias_text", Text, nullable=False),
    Column("summary", Text),
    Column("mention_count", Integer, nullable=False),
    _meta(),
    Column("embedding", Embedding()),
    Column("embedding_model", Text),
    _uuid("merged_into"),
    Column("language", REGCONFIG, nullable=False),
    Column("search_tsv", TSVECTOR),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

fact = Table(
    "fact",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    _uuid("user_id"),
    _uuid("agent_id"),
    _uuid("session_id"),
    _uuid("subject_id", nullable=False),
    _uuid("object_id"),
    Column("subject", Text, nullable=False),
    Column("predicate", Text, nullable=False),
    Column("object", Text, nullable=False),
    Column("statement", Text, nullable=False),
    Column("confidence", REAL, nullable=False),
    Column("single_valued", Boolean, nullable=False),
    Column("weight", REAL, nullable=False),
    _ts("valid_from"),
    _ts("valid_until"),
    _ts("recorded_at", nullable=False),
    _ts("superseded_at"),
    _uuid("replaces_id"),
    _uuid("invalidated_by"),
    Column("source", Text, nullable=False),
    Column("extractor", Text),
    Column("speaker", Text),
    Column("source_message_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
    _meta(),
    Column("embedding", Embedding()),
    Column("embedding_model", Text),
    Column("language", REGCONFIG, nullable=False),
    Column("search_tsv", TSVECTOR),
)

memory_entity = Table(
    "memory_entity",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("memory_id", primary_key=True),
    _uuid("entity_id", primary_key=True),
)

category = Table(
    "category",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

user_narrative = Table(
    "user_narrative",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    _uuid("user_id", nullable=False),
    Column("version", Integer, nullable=False),
    Column("content", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("memory_count", Integer, nullable=False),
    Column("fact_count", Integer, nullable=False),
    _ts("created_at", nullable=False),
)

repository = Table(
    "repository",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text),
    Column("source", Text),
    _uuid("user_id"),
    _uuid("agent_id"),
    _uuid("app_id"),
    Column("tags", ARRAY(Text), nullable=False),
    _meta(),
    Column("document_count", Integer, nullable=False),
    _ts("last_synced_at"),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

document = Table(
    "document",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    _uuid("repository_id"),
    Column("path", Text),
    Column("title", Text),
    Column("content_type", Text, nullable=False),
    Column("code_language", Text),
    Column("source_url", Text),
    _uuid("user_id"),
    _uuid("agent_id"),
    _uuid("app_id"),
    Column("tags", ARRAY(Text), nullable=False),
    _meta(),
    Column("content", Text, nullable=False),
    Column("content_hash", LargeBinary, nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("chunk_count", Integer, nullable=False),
    Column("page_count", Integer),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

chunk = Table(
    "chunk",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    _uuid("document_id", nullable=False),
    _uuid("repository_id"),
    _uuid("user_id"),
    _uuid("agent_id"),
    _uuid("app_id"),
    Column("ordinal", Integer, nullable=False),
    Column("content", Text, nullable=False),
    Column("content_hash", LargeBinary, nullable=False),
    Column("heading_path", ARRAY(Text), nullable=False),
    Column("heading", Text, nullable=False),
    Column("start_line", Integer),
    Column("end_line", Integer),
    Column("page", Integer),
    Column("char_start", Integer, nullable=False),
    Column("char_end", Integer, nullable=False),
    Column("token_count", Integer),
    Column("embedding", Embedding()),
    Column("embedding_model", Text),
    Column("language", REGCONFIG, nullable=False),
    Column("search_tsv", TSVECTOR),
    _ts("created_at", nullable=False),
)

webhook_endpoint = Table(
    "webhook_endpoint",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    Column("url", Text, nullable=False),
    Column("description", Text),
    Column("event_types", ARRAY(Text), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text),
    _ts("previous_secret_expires_at"),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

webhook_delivery = Table(
    "webhook_delivery",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    _uuid("endpoint_id", nullable=False),
    _uuid("event_id", nullable=False),
    Column("event_type", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer),
    Column("replays", Integer, nullable=False),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    _ts("last_attempt_at"),
    _ts("next_attempt_at"),
    _ts("delivered_at"),
    Column("attempt_log", JSONB, nullable=False),
    Column("queue_job_id", BigInteger),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

idempotency_key = Table(
    "idempotency_key",
    metadata,
    _uuid("org_id", primary_key=True),
    Column("key", Text, primary_key=True),
    Column("request_hash", LargeBinary, nullable=False),
    Column("state", Text, nullable=False),
    Column("status_code", Integer),
    Column("content_type", Text),
    Column("body", LargeBinary),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

# --- agents at work (0009_agents) ------------------------------------------------------------------------

stream_seq = Table(
    "stream_seq",
    metadata,
    _uuid("org_id", primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
)

task = Table(
    "task",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    _uuid("user_id"),
    Column("queue", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text),
    Column("priority", Integer, nullable=False),
    Column("required_capabilities", ARRAY(Text), nullable=False),
    Column("state", Text, nullable=False),
    _uuid("created_by"),
    _uuid("assigned_to"),
    _uuid("claimed_by"),
    _uuid("lease_id"),
    _ts("lease_expires_at"),
    _ts("due_at"),
    Column("session_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
    Column("memory_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
    Column("document_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
    _meta(),
    Column("result", JSONB),
    Column("error", Text),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    _uuid("result_memory_id"),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    _ts("completed_at"),
)

task_dependency = Table(
    "task_dependency",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("task_id", primary_key=True),
    _uuid("depends_on_id", primary_key=True),
)

# 0016_agents_throughput: ``id`` is the key, ``seq`` is null until the event is numbered (history.sequence).
task_event = Table(
    "task_event",
    metadata,
    _uuid("org_id", primary_key=True),
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("seq", BigInteger),
    _uuid("task_id", nullable=False),
    Column("queue", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("from_state", Text),
    Column("to_state", Text, nullable=False),
    _uuid("agent_id"),
    _uuid("key_id"),
    Column("actor", Text, nullable=False),
    Column("details", JSONB, nullable=False),
    _ts("created_at", nullable=False),
)

agent_message = Table(
    "agent_message",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    Column("seq", BigInteger, nullable=False),
    _uuid("from_agent_id"),
    _uuid("to_agent_id"),
    _uuid("to_team_id"),
    Column("broadcast", Boolean, nullable=False),
    Column("message_type", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    _uuid("reply_to"),
    _uuid("thread_id", nullable=False),
    _uuid("task_id"),
    _uuid("key_id"),
    Column("created_at", DateTime(timezone=True), primary_key=True, server_default=func.now()),
)

agent_message_delivery = Table(
    "agent_message_delivery",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("agent_id", primary_key=True),
    _uuid("message_id", primary_key=True),
    Column("seq", BigInteger, nullable=False),
    _ts("message_created_at", nullable=False),
    _ts("delivered_at"),
    _ts("acked_at"),
)

# --- rate limits and usage (0010_rate_limits) ------------------------------------------------------------

rate_limit = Table(
    "rate_limit",
    metadata,
    _uuid("org_id", primary_key=True),
    Column("route_class", Text, primary_key=True),
    Column("per_key", Integer),
    Column("per_org", Integer),
    _ts("updated_at", nullable=False),
)

rate_counter = Table(
    "rate_counter",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("key_id", primary_key=True),
    Column("route_class", Text, primary_key=True),
    _ts("tat", nullable=False),
    Column("refused", Boolean, nullable=False),
)

request_tally = Table(
    "request_tally",
    metadata,
    _uuid("org_id", primary_key=True),
    Column("day", Date, primary_key=True),
    Column("route_class", Text, primary_key=True),
    Column("requests", BigInteger, nullable=False),
    Column("refused", BigInteger, nullable=False),
)

# --- background document ingests (0011_document_ingest) ------------------------------------------------

document_upload = Table(
    "document_upload",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("job_id", primary_key=True),
    Column("request", JSONB, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("size_bytes", Integer, nullable=False),
    _ts("created_at", nullable=False),
)

# --- the predicate catalogue (0012_predicates) ---------------------------------------------------------

predicate = Table(
    "predicate",
    metadata,
    _uuid("org_id", primary_key=True),
    Column("name", Text, primary_key=True),
    Column("cardinality", Text, nullable=False),
    Column("description", Text),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

# --- retention policies, legal holds and runs (0013_retention) --------------------------------------------

retention_policy = Table(
    "retention_policy",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    Column("name", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("basis", Text, nullable=False),
    Column("after_days", Integer, nullable=False),
    Column("keep_latest", Integer),
    _uuid("app_id"),
    _uuid("team_id"),
    _uuid("user_id"),
    Column("memory_type", Text),
    Column("state", Text),
    Column("enabled", Boolean, nullable=False),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

legal_hold = Table(
    "legal_hold",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    _uuid("user_id"),
    Column("reason", Text, nullable=False),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    _ts("released_at"),
)

retention_run = Table(
    "retention_run",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    _uuid("policy_id"),
    Column("trigger", Text, nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("counts", JSONB, nullable=False),
    Column("steps", JSONB, nullable=False),
    Column("error", Text),
    _ts("started_at", nullable=False),
    _ts("finished_at"),
)

# --- sharing: access grants (0014_grants) --------------------------------------------------------------

access_grant = Table(
    "access_grant",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    Column("permission", Text, nullable=False),
    Column("resource", Text, nullable=False),
    _uuid("grantee_team_id"),
    _uuid("grantee_user_id"),
    _uuid("grantee_agent_id"),
    _uuid("grantee_key_id"),
    _uuid("owner_user_id"),
    _uuid("app_id"),
    _uuid("repository_id"),
    _uuid("session_id"),
    Column("memory_type", Text),
    Column("tags", ARRAY(Text), nullable=False),
    Column("categories", ARRAY(Text), nullable=False),
    Column("description", Text),
    _ts("expires_at"),
    _ts("revoked_at"),
    _uuid("created_by"),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

# --- decay per organization (0020_decay_policies) ------------------------------------------------------

decay_policy = Table(
    "decay_policy",
    metadata,
    _uuid("org_id", primary_key=True),
    Column("memory_type", Text, primary_key=True),
    Column("half_life_days", Double, nullable=False),
    _ts("updated_at", nullable=False),
)

# --- offloaded contexts (0018_offloaded_contexts) ------------------------------------------------------

offloaded_context = Table(
    "offloaded_context",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    *_scope(),
    _uuid("session_id"),
    _uuid("task_id"),
    Column("title", Text),
    Column("filename", Text),
    Column("content_type", Text, nullable=False),
    Column("tags", ARRAY(Text), nullable=False),
    _meta(),
    Column("data", LargeBinary, nullable=False),
    Column("compression", Text, nullable=False),
    Column("compression_level", Integer, nullable=False),
    Column("original_bytes", BigInteger, nullable=False),
    Column("stored_bytes", BigInteger, nullable=False),
    Column("compression_ratio", REAL, nullable=False),
    Column("content_sha256", LargeBinary, nullable=False),
    Column("is_text", Boolean, nullable=False),
    Column("summary", Text, nullable=False),
    Column("summary_source", Text, nullable=False),
    Column("embedding", Embedding()),
    Column("embedding_model", Text),
    Column("language", REGCONFIG, nullable=False),
    Column("search_tsv", TSVECTOR),
    _ts("expires_at"),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

# --- federated insights (0019_federated_insights) ------------------------------------------------------

federated_session = Table(
    "federated_session",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    Column("topic", Text, nullable=False),
    Column("description", Text),
    Column("query", Text, nullable=False),
    Column("buckets", ARRAY(Text), nullable=False),
    Column("bound", Integer, nullable=False),
    Column("epsilon", Double, nullable=False),
    Column("min_participants", Integer, nullable=False),
    Column("invited_org_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
    Column("status", Text, nullable=False),
    _uuid("created_by"),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    _ts("closed_at"),
)

federated_participant = Table(
    "federated_participant",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    _uuid("session_org_id", nullable=False),
    _uuid("session_id", nullable=False),
    _uuid("team_id"),
    Column("definition", JSONB, nullable=False),
    Column("session_status", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("epsilon_budget", Double),
    Column("epsilon_spent", Double, nullable=False),
    Column("releases", Integer, nullable=False),
    _uuid("joined_by"),
    _ts("joined_at"),
    _ts("left_at"),
    _ts("last_released_at"),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

federated_contribution = Table(
    "federated_contribution",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    _uuid("participant_id", nullable=False),
    _uuid("session_org_id", nullable=False),
    _uuid("session_id", nullable=False),
    _uuid("insight_id", nullable=False),
    Column("epsilon", Double, nullable=False),
    Column("buckets_present", Integer, nullable=False),
    Column("clamped_total", BigInteger, nullable=False),
    _ts("created_at", nullable=False),
)

aggregated_insight = Table(
    "aggregated_insight",
    metadata,
    _uuid("org_id", primary_key=True),
    _uuid("id", primary_key=True),
    _uuid("session_org_id", nullable=False),
    _uuid("session_id", nullable=False),
    Column("topic", Text, nullable=False),
    Column("query", Text, nullable=False),
    Column("histogram", JSONB, nullable=False),
    Column("mechanism", Text, nullable=False),
    Column("epsilon", Double, nullable=False),
    Column("delta", Double, nullable=False),
    Column("bound", Integer, nullable=False),
    Column("sensitivity", Double, nullable=False),
    Column("scale", Double, nullable=False),
    Column("participants", Integer, nullable=False),
    _ts("released_at", nullable=False),
)
