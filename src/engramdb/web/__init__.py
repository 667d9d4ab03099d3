"""The web dashboard: server-rendered pages over the same services as the API, served by ``engramdb serve``
at ``/ui`` (``/`` leads there). Templates, styles and scripts ship inside the package; nothing is fetched
from the network. Why this stack: docs/decisions/0012-web-dashboard.md; how to use it: docs/dashboard.md.
"""

from __future__ import annotations

from engramdb.web.app import Dashboard

__all__ = ["Dashboard"]
