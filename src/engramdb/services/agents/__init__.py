"""Agents at work: heartbeats (``heartbeats``), tasks on queues (``tasks``: create, read, change; ``claims``:
claim with a lease, extend, complete, fail, expired leases), their history and the organization's event
sequence (``history``), mailboxes (``mailboxes``), live streams (``streams``) and the periodic sweep
(``sweep``: offline agents, expired leases).

Nothing here is extracted into memory: heartbeats, task events and agent messages live in tables of
their own, never in ``message``, which is what the extraction reads.
"""
