"""Explicit limits on what one request may carry. Documented in docs/api.md (Limits) and tested."""

from __future__ import annotations

MAX_MESSAGE_CHARS = 32_000
MAX_MEMORY_CHARS = 8_000
MAX_MESSAGES_PER_BATCH = 100
MAX_METADATA_BYTES = 16_384
MAX_METADATA_DEPTH = 32
MAX_TAGS = 32
MAX_TAG_CHARS = 64
MAX_NAME_CHARS = 200
MAX_DESCRIPTION_CHARS = 2_000
MAX_EXTERNAL_ID_CHARS = 256
MAX_SOURCE_MESSAGE_IDS = 100
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_IDEMPOTENCY_KEY_CHARS = 255  # an Idempotency-Key header
MAX_IDEMPOTENT_RESPONSE_BYTES = 1_048_576  # a first answer kept for replays (1 MiB); a larger one is not kept
IDEMPOTENCY_LEASE_S = 300  # a first request silent this long is taken as dead: a retry runs it again
MAX_JSON_QUERY_CHARS = 4_096  # a JSON-valued query parameter (`metadata`), as sent
MAX_QUERY_CHARS = 2_000
MAX_TOP_K = 100
MAX_CANDIDATES = 1_000
MAX_FACT_PART_CHARS = 500  # subject, predicate and object of a fact, each
MAX_ALIASES = 32
MAX_GRAPH_DEPTH = 4
MAX_GRAPH_NODES = 500  # entities one neighbours call may return
MAX_MERGE = 50  # entities merged in one call
MIN_CONTEXT_TOKENS = 50
MAX_CONTEXT_TOKENS = 32_000
MAX_CATEGORIES = 200  # custom categories per organization
MAX_PREDICATES = 500  # predicates an organization defines (its own and its overrides of built-ins)
WAIT_TIMEOUT_S = 60  # longest `wait=true` on a write
MAX_PATH_CHARS = 1_024  # a document's path (file name or path inside a repository)
MAX_URL_CHARS = 2_048  # a document's source_url, a repository's source
MAX_SYNC_FILES = 100  # files in one repository sync call
MAX_SYNC_BYTES = 4_194_304  # their total content, decoded (4 MiB: base64 of it stays under the request limit)
MAX_KEEP_PATHS = 100_000  # paths one prune call may keep
MAX_DOCUMENT_BYTES = 10_485_760  # one document (10 MiB); the parser's own limit, pinned equal by a test
MAX_WEBHOOKS = 20  # webhook endpoints per organization
MAX_WEBHOOK_URL_CHARS = 2_000  # a webhook endpoint's URL
MAX_IMPORT_BYTES = 1_073_741_824  # one import file (1 GiB); every request is also held to ENGRAM_MAX_REQUEST_BYTES
# One line of an import file (64 MiB). The longest record is a document's, which holds its whole text: a
# 10 MiB document is at most 10,485,760 characters, and JSON escapes each in at most 6 bytes (a control
# character as \u00XX; a quote, backslash or newline takes 2), so even text of nothing but control
# characters (60 MiB) fits with the row's other fields.
MAX_IMPORT_LINE_BYTES = 67_108_864
# Offloaded contexts
MAX_CONTEXT_BYTES = 16_777_216  # one offloaded context as received (16 MiB), before compression
# The request that carries one: its JSON-escaped text or its multipart body, with room for the other fields.
MAX_CONTEXT_REQUEST_BYTES = 2 * MAX_CONTEXT_BYTES + 1_048_576
MAX_CONTEXT_SUMMARY_CHARS = 2_000  # a context's representative text (what is embedded and shown)
MAX_CONTEXT_INDEXED_CHARS = 262_144  # the start of a text context that keyword search indexes
MAX_CONTEXT_TTL_S = 315_576_000  # a context's ttl_s (ten years)
# Agents at work
AGENT_OFFLINE_GRACE = 3  # an agent silent for this many heartbeat intervals is offline
MAX_HEARTBEAT_INTERVAL_S = 86_400  # an agent's heartbeat_interval_s (one day)
MIN_LEASE_S = 1  # a task lease, seconds
MAX_LEASE_S = 3_600
DEFAULT_LEASE_S = 60
MAX_TASK_ATTEMPTS = 100  # a task's max_attempts
MAX_TASK_DEPENDENCIES = 100  # tasks one task may wait for
MAX_TASK_CITATIONS = 100  # sessions, memories and documents one task may cite, each
MAX_PAYLOAD_BYTES = 65_536  # an agent message's payload, a task's result (as JSON)
MAX_ACK_IDS = 500  # messages acknowledged in one call
STREAM_KEEPALIVE_S = 15  # a live stream sends a comment this often when idle (and looks again in the DB)
