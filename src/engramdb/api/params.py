"""The query string: a route answers only the parameters it declares.

``refuse_unknown`` is a dependency of the ``/v1`` router, so every route has it the day it is added: a
parameter the route does not declare is a 422 naming it (CONVENTIONS.md: the API never silently ignores
a parameter). A list route declares its parameters as one filter model (``Annotated[XFilters, Query()]``,
``extra="forbid"``), whose fields are the names it takes; other routes declare theirs one by one. A
parameter that takes one value given more than once (``?prefix=a&prefix=b``) is a 422 too, rather than
one of its values silently winning; list-typed ones (``?tags=a&tags=b``) repeat.
"""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

from fastapi import Request
from fastapi.dependencies.models import Dependant
from pydantic import BaseModel

from engramdb.errors import ValidationFailed

_SHOWN_CHARS = 100  # of an unknown name, in the answer
_CACHED = "_engram_query_parameters"  # the route's ``declared`` table, kept on the route object


def _repeats(annotation: Any) -> bool:
    """Whether a parameter of this type takes several values (a list, set or tuple, optional or not)."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_repeats(arg) for arg in get_args(annotation) if arg is not type(None))
    return origin in (list, set, tuple, frozenset) or annotation in (list, set, tuple, frozenset)


def declared(dependant: Dependant) -> dict[str, bool]:
    """The query parameters a route takes, its dependencies' included (a query model's fields each), and
    whether each may be repeated."""
    names: dict[str, bool] = {}
    pending = [dependant]
    while pending:
        current = pending.pop()
        for field in current.query_params:
            model = field.field_info.annotation
            if isinstance(model, type) and issubclass(model, BaseModel):
                names.update(
                    {info.alias or name: _repeats(info.annotation) for name, info in model.model_fields.items()}
                )
            else:
                names[field.alias] = _repeats(model)
        pending.extend(current.dependencies)
    return names


async def refuse_unknown(request: Request) -> None:
    """422 for any query parameter the matched route does not declare, before anything else is read."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    allowed: dict[str, bool] | None = getattr(route, _CACHED, None)
    if allowed is None:  # worked out once per route, not on every request
        allowed = declared(dependant)
        setattr(route, _CACHED, allowed)
    unknown = [name[:_SHOWN_CHARS] for name in request.query_params if name not in allowed]
    if not unknown:
        _refuse_repeated(request, allowed)
        return
    for field in dependant.path_params:
        _, errors = field.validate(request.path_params.get(field.alias), {}, loc=("path", field.alias))
        if errors:  # another route's literal path (GET /documents/upload): the route's own checks answer it
            return
    takes = ", ".join(sorted(allowed)) or "no query parameters"
    raise ValidationFailed(
        f"unknown query parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} (this operation takes {takes})",
        errors=[
            {"location": f"query/{name}", "message": "unknown query parameter", "type": "extra_forbidden"}
            for name in unknown
        ],
    )


def _refuse_repeated(request: Request, allowed: dict[str, bool]) -> None:
    repeated = sorted(
        name for name in set(request.query_params) if not allowed[name] and len(request.query_params.getlist(name)) > 1
    )
    if repeated:
        raise ValidationFailed(
            f"query parameter{'s' if len(repeated) > 1 else ''} {', '.join(repeated)} given more than once; "
            f"{'each takes' if len(repeated) > 1 else 'it takes'} one value",
            errors=[
                {"location": f"query/{name}", "message": "given more than once", "type": "repeated"}
                for name in repeated
            ],
        )
