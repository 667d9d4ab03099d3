"""``wait=true`` that runs out of time says so, and where the job stands in its lane, instead of handing back
a queued job as if that were the answer. No worker runs in this module: every job stays queued."""

from __future__ import annotations

import pytest

from engramdb import limits
from tests.conftest import Org


async def _add(org: Org, session_id: str, text: str, **params: str) -> dict[str, object]:
    body = {"messages": [{"role": "user", "name": "Dana", "content": text}]}
    r = await org.client.post(f"/v1/sessions/{session_id}/messages", params=params, json=body)
    assert r.status_code == 201, r.text
    job: dict[str, object] = r.json()["job"]
    return job


async def test_a_wait_that_runs_out_says_where_the_job_stands(org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "WAIT_TIMEOUT_S", 0.3)
    session = (await org.client.post("/v1/sessions", json={"external_user_id": "dana"})).json()
    first = await _add(org, session["id"], "I moved to Porto.", wait="true")
    assert first["status"] == "queued"
    wait = first["wait"]
    assert isinstance(wait, dict) and wait["finished"] is False and wait["waited_s"] >= 0.3
    place = wait["queue"]
    assert place["lane"] == "engram" and place["state"] == "waiting" and place["age_s"] >= 0.3
    assert place["ahead"] == 0 and place["running"] == 0 and place["behind_earlier_job"] is False

    second = await _add(org, session["id"], "I work as a nurse.", wait="true")
    place = second["wait"]["queue"]  # type: ignore[index]
    assert place["state"] == "waiting" and place["ahead"] == 1 and place["behind_earlier_job"] is True

    # Without wait=true there is nothing to report.
    assert (await _add(org, session["id"], "I have a dog."))["wait"] is None

    user_id = (await org.client.get(f"/v1/sessions/{session['id']}")).json()["user_id"]
    r = await org.client.post(f"/v1/users/{user_id}/narrative", params={"wait": "true"})
    assert r.status_code == 202, r.text
    narrative = r.json()
    assert narrative["status"] == "queued" and narrative["wait"]["finished"] is False
    assert narrative["wait"]["queue"]["state"] == "waiting" and narrative["wait"]["queue"]["ahead"] == 3
