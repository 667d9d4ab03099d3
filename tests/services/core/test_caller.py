import uuid

import pytest

from engramdb.errors import PermissionDenied
from engramdb.services.core.caller import Caller


@pytest.mark.parametrize(
    ("scopes", "allowed"),
    [
        ({"read"}, {"read"}),
        ({"write"}, {"read", "write"}),
        ({"admin"}, {"read", "write", "admin"}),
    ],
)
def test_scope_ranks(scopes: set[str], allowed: set[str]) -> None:
    caller = Caller(org_id=uuid.uuid4(), scopes=frozenset(scopes))
    for scope in ("read", "write", "admin"):
        if scope in allowed:
            caller.require(scope)
        else:
            with pytest.raises(PermissionDenied):
                caller.require(scope)


def test_bind() -> None:
    user = uuid.uuid4()
    bound = Caller(org_id=uuid.uuid4(), scopes=frozenset({"write"}), user_id=user)
    assert bound.bind("user_id", None) == user
    assert bound.bind("user_id", user) == user
    with pytest.raises(PermissionDenied):
        bound.bind("user_id", uuid.uuid4())
    free = Caller(org_id=uuid.uuid4(), scopes=frozenset({"write"}))
    other = uuid.uuid4()
    assert free.bind("user_id", other) == other and not free.bound and bound.bound
