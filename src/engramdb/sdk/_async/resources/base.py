"""What every resource namespace shares: the client its calls go through."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engramdb.sdk._async.http import AsyncHTTP

Fields = Any  # keyword fields of the operation's request model


class Resource:
    def __init__(self, client: AsyncHTTP) -> None:
        self._client = client
