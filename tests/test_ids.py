from engramdb.ids import uuid7


def test_uuid7_is_versioned_and_ordered() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert all(u.version == 7 and u.variant == "specified in RFC 4122" for u in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
