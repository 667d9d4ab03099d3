"""Erasure of a user with 10,000 messages and their derived data: wall time of ``POST /v1/users/{id}/erase``.

Starts its own server on a throw-away embedded database, then writes straight into the tables (extraction of
10,000 messages would take the better part of an hour and measures something else): for each erased user,
50 sessions of 200 messages (each with a vector), 2,000 memories drawn from them (each with two history rows,
two entity links and a vector), 300 entities of their own, 1,000 facts, 5,000 access-log rows, 3 narrative
versions, 50 extraction jobs, an audit row per batch of messages (naming its 100 message ids, as the API
writes them) and per memory, fact and entity, and a delivered ``memory.created`` webhook per memory. Around
them, the same organization holds ``--others`` users of a tenth that size each, which every organization-wide
pass of the erasure (the audit and delivery logs) must read too. Each erasure is timed by the client, over
HTTP, and the receipt's counts are printed. The vector indexes are dropped during the load and built once
after it, as a restore would (inserting 50,000 vectors one by one into HNSW graphs takes far longer).

    .venv/bin/python bench/erasure.py                 # 3 users erased, 20 others
    .venv/bin/python bench/erasure.py --users 1 --messages 10000 --others 50
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
from rich.console import Console
from rich.table import Table

from engramdb.providers.minilm import MiniLMEmbedder
from engramdb.storage.embedded import start_embedded
from engramdb.storage.migrate import migrate, prepare_vectors
from engramdb.storage.vectors import EMBEDDED_TABLES, index_name

sys.path.insert(0, str(Path(__file__).parent))
from _server import engram_server  # noqa: E402

console = Console()
MODEL = MiniLMEmbedder.model
PER_SESSION = 200
VECTOR = "(SELECT array_agg(random() - 0.5)::vector FROM generate_series(1, 384) WHERE {row} IS NOT NULL)"

# One user's rows, as the API and the worker write them. Parameters: org, user, sessions, messages per
# session, memories, entities, facts, accesses, endpoint, model.
SEED = [
    "INSERT INTO user_account (org_id, id, external_id, display_name) VALUES (%(org)s, %(user)s, %(ext)s, 'Bench')",
    """INSERT INTO session (org_id, id, user_id, title, message_count, last_seq, extracted_seq, summary)
       SELECT %(org)s, gen_random_uuid(), %(user)s, 'chat ' || s, %(per)s, %(per)s, %(per)s, 'a summary of chat ' || s
       FROM generate_series(1, %(sessions)s) s""",
    f"""INSERT INTO message (org_id, id, session_id, seq, user_id, role, content, content_hash, occurred_at,
                             embedding, embedding_model)
       SELECT %(org)s, gen_random_uuid(), s.id, g, CASE WHEN g %% 2 = 1 THEN %(user)s END,
              CASE WHEN g %% 2 = 1 THEN 'user' ELSE 'assistant' END,
              'turn ' || g || ' of a long conversation about gardens, trips and the weather', '\\x00',
              now() - make_interval(mins => g), {VECTOR.format(row="g")}, %(model)s
       FROM session s, generate_series(1, %(per)s) g WHERE s.org_id = %(org)s AND s.user_id = %(user)s""",
    f"""INSERT INTO memory (org_id, id, user_id, session_id, content, source, source_message_ids, content_hash,
                            embedding, embedding_model, extractor)
       SELECT %(org)s, gen_random_uuid(), %(user)s, m.session_id, 'the user said ' || m.content, 'extraction',
              ARRAY[m.id], '\\x00', {VECTOR.format(row="m.id")}, %(model)s, 'offline'
       FROM (SELECT id, session_id, content FROM message WHERE org_id = %(org)s AND user_id = %(user)s
             ORDER BY id LIMIT %(memories)s) m""",
    """INSERT INTO memory_history (org_id, id, memory_id, version, action, new_values, actor)
       SELECT %(org)s, gen_random_uuid(), id, v, CASE v WHEN 1 THEN 'created' ELSE 'updated' END,
              jsonb_build_object('content', content, 'session_id', session_id), 'extractor:offline'
       FROM memory, generate_series(1, 2) v WHERE org_id = %(org)s AND user_id = %(user)s""",
    """INSERT INTO entity (org_id, id, user_id, name, normalized_name, entity_type)
       SELECT %(org)s, gen_random_uuid(), %(user)s, 'Entity ' || g, 'entity ' || g, 'other'
       FROM generate_series(1, %(entities)s) g""",
    """INSERT INTO memory_entity (org_id, memory_id, entity_id)
       SELECT DISTINCT %(org)s, m.id, e.id
       FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM memory
             WHERE org_id = %(org)s AND user_id = %(user)s) m
       JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM entity
             WHERE org_id = %(org)s AND user_id = %(user)s) e
         ON e.n IN (m.n %% %(entities)s + 1, (m.n * 7) %% %(entities)s + 1)""",
    f"""INSERT INTO fact (org_id, id, user_id, session_id, subject_id, object_id, subject, predicate, object,
                          statement, source, source_message_ids, embedding, embedding_model)
       SELECT %(org)s, gen_random_uuid(), %(user)s, m.session_id, e1.id, e2.id, e1.name, 'knows', e2.name,
              e1.name || ' knows ' || e2.name, 'extraction', ARRAY[m.id], {VECTOR.format(row="m.id")}, %(model)s
       FROM (SELECT id, session_id, row_number() OVER (ORDER BY id) AS n FROM message
             WHERE org_id = %(org)s AND user_id = %(user)s ORDER BY id LIMIT %(facts)s) m
       JOIN (SELECT id, name, row_number() OVER (ORDER BY id) AS n FROM entity
             WHERE org_id = %(org)s AND user_id = %(user)s) e1 ON e1.n = m.n %% %(entities)s + 1
       JOIN (SELECT id, name, row_number() OVER (ORDER BY id) AS n FROM entity
             WHERE org_id = %(org)s AND user_id = %(user)s) e2 ON e2.n = (m.n + 1) %% %(entities)s + 1""",
    """INSERT INTO memory_access_log (org_id, id, memory_id, access_type, score)
       SELECT %(org)s, gen_random_uuid(), m.id, 'search', 0.5
       FROM (SELECT id FROM memory WHERE org_id = %(org)s AND user_id = %(user)s) m,
            generate_series(1, greatest(1, %(accesses)s / greatest(1, %(memories)s))) g""",
    """INSERT INTO user_narrative (org_id, id, user_id, version, content, provider)
       SELECT %(org)s, gen_random_uuid(), %(user)s, v, 'Bench is a person who gardens (version ' || v || ')', 'offline'
       FROM generate_series(1, 3) v""",
    """INSERT INTO job (org_id, id, kind, status, session_id, user_id, max_attempts, result)
       SELECT %(org)s, gen_random_uuid(), 'engram.extract', 'succeeded', id, %(user)s, 3,
              jsonb_build_object('messages', %(per)s, 'batches', 5)
       FROM session WHERE org_id = %(org)s AND user_id = %(user)s""",
    """INSERT INTO audit_log (org_id, id, actor, action, entity_type, entity_id, details)
       SELECT %(org)s, gen_random_uuid(), 'system', 'messages.added', 'session', b.session_id,
              jsonb_build_object('count', count(*), 'message_ids', jsonb_agg(b.id))
       FROM (SELECT id, session_id, (seq - 1) / 100 AS batch FROM message
             WHERE org_id = %(org)s AND session_id IN (SELECT id FROM session WHERE user_id = %(user)s)) b
       GROUP BY b.session_id, b.batch""",
    """INSERT INTO audit_log (org_id, id, actor, action, entity_type, entity_id, details)
       SELECT %(org)s, gen_random_uuid(), 'extractor:offline', 'memory.created', 'memory', id, '{}'::jsonb
       FROM memory WHERE org_id = %(org)s AND user_id = %(user)s
       UNION ALL
       SELECT %(org)s, gen_random_uuid(), 'extractor:offline', 'fact.add', 'fact', id,
              jsonb_build_object('statement', statement)
       FROM fact WHERE org_id = %(org)s AND user_id = %(user)s
       UNION ALL
       SELECT %(org)s, gen_random_uuid(), 'extractor:offline', 'entity.created', 'entity', id,
              jsonb_build_object('name', name)
       FROM entity WHERE org_id = %(org)s AND user_id = %(user)s""",
    """INSERT INTO webhook_delivery (org_id, id, endpoint_id, event_id, event_type, payload, status, attempts)
       SELECT %(org)s, gen_random_uuid(), %(endpoint)s, gen_random_uuid(), 'memory.created',
              jsonb_build_object('type', 'memory.created', 'timestamp', now(), 'data', jsonb_build_object(
                'object', 'memory', 'action', 'created', 'memory', jsonb_build_object(
                  'id', id, 'user_id', user_id, 'session_id', session_id, 'content', content))),
              'succeeded', 1
       FROM memory WHERE org_id = %(org)s AND user_id = %(user)s""",
]


def seed(url: str, org_id: uuid.UUID, endpoint: uuid.UUID, messages: int, label: str) -> uuid.UUID:
    """One user and their derived rows (sizes scale with ``messages``); returns the user's id."""
    user = uuid.uuid4()
    params = {
        "org": org_id,
        "user": user,
        "ext": f"{label}-{user.hex[:8]}",
        "sessions": max(1, messages // PER_SESSION),
        "per": min(messages, PER_SESSION),
        "memories": max(1, messages // 5),
        "entities": max(2, messages * 3 // 100),
        "facts": max(1, messages // 10),
        "accesses": messages // 2,
        "endpoint": endpoint,
        "model": MODEL,
    }
    with psycopg.connect(url, autocommit=False) as conn:
        for statement in SEED:
            conn.execute(statement, params)
    return user


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=3, help="users erased, one after the other")
    parser.add_argument("--messages", type=int, default=10_000, help="messages of each erased user")
    parser.add_argument("--others", type=int, default=20, help="users who stay, a tenth the size each")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="engram-erasure-"))
    url = start_embedded(data_dir, "engram")
    migrate(url)
    # The vector indexes are dropped for the load and built after it (by this script, not the server).
    with engram_server(None, None, {"ENGRAM_DATABASE_URL": url, "ENGRAM_ORG_INDEX_ROWS": "0"}) as (base, key):
        with psycopg.connect(url, autocommit=True) as conn:
            org_id = conn.execute("SELECT org_id FROM organization WHERE name = 'bench'").fetchone()[0]  # type: ignore[index]
            endpoint = uuid.uuid4()
            conn.execute(
                "INSERT INTO webhook_endpoint (org_id, id, url, event_types, enabled, secret)"
                " VALUES (%s, %s, 'http://127.0.0.1:9/bench', '{memory.created}', false, 'whsec_bench')",
                (org_id, endpoint),
            )
        started = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:  # one build after the load is much faster
            for table in EMBEDDED_TABLES:
                conn.execute(f"DROP INDEX IF EXISTS {index_name(table, MODEL)}")
        for n in range(args.others):
            seed(url, org_id, endpoint, max(PER_SESSION, args.messages // 10), f"other-{n}")
        targets = [seed(url, org_id, endpoint, args.messages, "erased") for _ in range(args.users)]
        prepare_vectors(url, MODEL, MiniLMEmbedder.dimensions, build_memory="1GB")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # as autovacuum would soon after a bulk load
            sizes = {
                table: conn.execute(f"SELECT count(*) FROM {table} WHERE org_id = %s", (org_id,)).fetchone()[0]  # type: ignore[index]
                for table in ("message", "memory", "fact", "audit_log", "webhook_delivery", "memory_access_log")
            }
        console.print(f"seeded in {time.perf_counter() - started:.0f} s; the organization holds {sizes}")

        times: list[float] = []
        table = Table(title=f"POST /v1/users/{{id}}/erase, users of {args.messages:,} messages")
        for column in ("user", "wall s", "messages", "memories", "facts", "entities", "rows in all"):
            table.add_column(column)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=600) as client:
            for n, user in enumerate(targets, 1):
                started = time.perf_counter()
                r = client.post(f"/v1/users/{user}/erase")
                elapsed = time.perf_counter() - started
                r.raise_for_status()
                counts = r.json()["counts"]
                times.append(elapsed)
                table.add_row(
                    str(n),
                    f"{elapsed:.2f}",
                    f"{counts.get('message', 0):,}",
                    f"{counts.get('memory', 0):,}",
                    f"{counts.get('fact', 0):,}",
                    f"{counts.get('entity', 0):,}",
                    f"{sum(counts.values()):,}",
                )
        console.print(table)
        console.print(
            f"wall time: median {statistics.median(times):.2f} s, min {min(times):.2f} s, max {max(times):.2f} s"
        )


if __name__ == "__main__":
    main()
