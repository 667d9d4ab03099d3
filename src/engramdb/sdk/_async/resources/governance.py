"""Export and import: ``client.data``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import httpx

from engramdb.schemas.export import ImportResult
from engramdb.sdk import _common as c
from engramdb.sdk._async.resources.base import Resource
from engramdb.sdk._common import Id


class Data(Resource):
    """Export and import of an organization or one user as JSON Lines."""

    @c.operation("export_data")
    async def export(
        self,
        *,
        user_id: Id | None = None,
        external_user_id: str | None = None,
        include_embeddings: bool = True,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every record of the org (or of one user), one dict per line, header first, read as it streams."""
        params = {"user_id": user_id, "external_user_id": external_user_id, "include_embeddings": include_embeddings}
        async with self._client.stream("GET", "/v1/export", params=params) as response:
            async for line in response.aiter_lines():
                if line.strip():
                    yield json.loads(line)

    @c.operation("import_data")
    async def import_(self, lines: bytes | Iterable[Mapping[str, Any]]) -> ImportResult:
        """Import an export (bytes of JSON Lines, or its records) into the key's organization; rows whose
        ids are there already are left as they are, so importing twice adds nothing."""
        content = lines if isinstance(lines, bytes) else "".join(json.dumps(x) + "\n" for x in lines).encode()
        headers = {"Content-Type": "application/x-ndjson"}
        # Not repeated on a timeout (a long import may still be running); an hour to read the answer.
        timeout = httpx.Timeout(60.0, read=3600.0)
        return await self._client.call(
            ImportResult, "POST", "/v1/import", content=content, headers=headers, idempotent=False, timeout=timeout
        )
