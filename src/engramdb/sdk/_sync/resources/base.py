# Generated from engramdb/sdk/_async by scripts/unasync.py: edit the async code, then run the script.
"""What every resource namespace shares: the client its calls go through."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engramdb.sdk._sync.http import HTTP

Fields = Any  # keyword fields of the operation's request model


class Resource:
    def __init__(self, client: HTTP) -> None:
        self._client = client
