"""Domain operations, one folder per area. No transport code here: no FastAPI, Typer or MCP imports, and
no import of a transport or of the composition root (``tests/test_imports.py`` enforces it).

The map (a new module joins the area whose noun it serves; if none fits, add an area and a line here):

==============  ===========================================================================================
area            what it holds
==============  ===========================================================================================
core            the caller (``caller``), the runtime container (``runtime``), the audit log (``audit``),
                the event outbox that webhooks send from (``events``), who may see what (``visibility``:
                every rule, one function per table family), the job ledger (``jobs``), the batched
                access tracking that feeds the memory access log (``access``), the pseudonym an
                erasure leaves in the logs in place of the ids it erased (``pseudonyms``), an
                organization's usage (``usage``) and what ``/metrics`` reads at scrape time (``readings``)
tenancy         API keys and organizations (``keys``), an organization's own settings (``organizations``);
                teams, users, agents and apps (``directory``);
                rate limits per key and organization (``quotas``)
webhooks        endpoints and their delivery log (``endpoints``); sending, retries and upkeep
                (``delivery``); where webhooks may go (``destinations``); the worker's client (``sender``)
conversation    sessions, messages, and the vectors a message is embedded as (``vectors``)
memory          memories with their history, their access log read back (``accesses``), categories, tags
graph           bi-temporal facts, the predicate catalogue (``predicates``), entities, traversal
                (neighbourhoods and paths)
document        documents, the ingest pipeline, repositories, syncing a repository (``sync``)
contexts        offloaded contexts: blobs moved out of an agent's window, kept compressed (``compression``),
                found by a representative text (``summaries``) and restored byte-exact (``contexts``)
distill         the worker's derivations: extraction, consolidation, narratives
search          the retrievers, hybrid fusion, document and graph search, context assembly
governance      erasure (every delete that cascades across areas: ``erase``; a subject erased with a receipt:
                what it holds, ``subjects``, and how it goes, ``erasure``), export, import, access grants
                (``sharing``; enforced in ``core/visibility``), retention policies and their runs
                (``retention``: which rows each step names, ``steps``; the bulk deletes, ``purge``; the
                logs' export and partition drops, ``archive``) and legal holds (``holds``)
agents          agents at work: heartbeats, tasks on queues claimed with leases (``tasks``, ``claims``), their
                history and the organization's event sequence (``history``), mailboxes, live streams
                (``streams``) and the periodic sweep (offline agents, expired leases)
insights        federated insights: sessions, participations and their budgets (``sessions``,
                ``participants``), the fixed aggregate queries (``queries``), the differential-privacy
                mechanism (``mechanism``) and the one module that reads across organizations (``compute``)
maintenance     the embedding backfill and per-organization vector indexes (may import any area; none
                imports it)
==============  ===========================================================================================

Imports point down this order only: ``core`` ← ``tenancy``, ``webhooks`` ← ``conversation`` ← ``memory`` |
``graph`` | ``document`` | ``contexts`` (siblings never import each other) ← ``distill``, ``search`` ← ``governance``,
``agents``, ``insights``; ``maintenance`` on top. An import inside a function never
crosses areas: a cascade that needs two areas is an operation of the area above both.
"""
