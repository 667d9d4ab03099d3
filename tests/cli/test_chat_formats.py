"""The conversation exports `engramdb chat-import` reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engramdb.cli.chat_formats import FormatError, read


def _write(tmp_path: Path, name: str, data: object | str) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_openai_messages_with_parts_and_times(tmp_path: Path) -> None:
    data = {
        "title": "Trip",
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": [{"type": "text", "text": "I fly to Oslo"}], "timestamp": 1767225600},
            {"role": "assistant", "content": "Have fun!", "created_at": "2026-01-01T00:01:00"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "x"}]},
            {"role": "developer", "content": "Be brief", "name": "ops"},
        ],
    }
    [conversation] = read(_write(tmp_path, "trip.json", data))
    assert conversation.title == "Trip" and conversation.skipped == 1
    assert [m["role"] for m in conversation.messages] == ["system", "user", "assistant", "system"]
    assert conversation.messages[1] == {
        "role": "user",
        "content": "I fly to Oslo",
        "occurred_at": "2026-01-01T00:00:00+00:00",
    }
    assert conversation.messages[2]["occurred_at"] == "2026-01-01T00:01:00+00:00"
    assert conversation.messages[3]["name"] == "ops"


def test_millisecond_times_odd_titles_and_pointers(tmp_path: Path) -> None:
    [ms] = read(_write(tmp_path, "ms.json", [{"role": "user", "content": "hi", "timestamp": 1700000000000}]))
    assert ms.messages[0]["occurred_at"].startswith("2023-11-14T22:13:20")
    node = {"message": {"author": {"role": "user"}, "content": {"parts": ["yo"]}}, "parent": None, "children": []}
    export = [{"title": 42, "mapping": {"a": node}, "current_node": ["a"]}]
    [odd] = read(_write(tmp_path, "odd.json", export))
    assert odd.title is None and [m["content"] for m in odd.messages] == ["yo"]


def test_jsonl_of_messages_and_of_conversations(tmp_path: Path) -> None:
    lines = "\n".join(json.dumps({"role": r, "content": c}) for r, c in [("user", "hi"), ("assistant", "hello")])
    [loose] = read(_write(tmp_path, "m.jsonl", lines + "\n\n"))
    assert [m["content"] for m in loose.messages] == ["hi", "hello"]
    convs = "\n".join(json.dumps({"messages": [{"role": "user", "content": f"c{i}"}]}) for i in range(3))
    assert [c.messages[0]["content"] for c in read(_write(tmp_path, "c.jsonl", convs))] == ["c0", "c1", "c2"]


def test_chatgpt_export_follows_the_current_thread(tmp_path: Path) -> None:
    def node(role: str, text: str, parent: str | None, children: list[str], t: float) -> dict[str, object]:
        message = {"author": {"role": role}, "content": {"content_type": "text", "parts": [text]}, "create_time": t}
        return {"message": message, "parent": parent, "children": children}

    mapping = {
        "root": {"message": None, "parent": None, "children": ["a"]},
        "a": node("user", "My dog is Rex", "root", ["b1", "b2"], 1700000000),
        "b1": node("assistant", "an abandoned draft", "a", [], 1700000001),
        "b2": node("assistant", "Nice name!", "a", [], 1700000002),
    }
    export = [{"title": "Dogs", "create_time": 1700000000, "mapping": mapping, "current_node": "b2"}]
    [conversation] = read(_write(tmp_path, "conversations.json", export))
    assert conversation.title == "Dogs"
    assert [m["content"] for m in conversation.messages] == ["My dog is Rex", "Nice name!"]
    assert conversation.messages[0]["occurred_at"].startswith("2023-11-14T22:13:20")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"role": "user", "content": "a"}\n{"role": "wizard", "content": "b"}', "line 2: unknown role 'wizard'"),
        ('{"role": "user", "content": "a"}\nnot json', "line 2"),
        ('[{"role": "user", "content": "a", "timestamp": "yesterday"}]', "ISO 8601"),
        ('{"hello": 1}', "expected a list of messages"),
        ('[{"role": "user", "content": "a", "timestamp": NaN}]', "is not a time"),
        ('[{"role": "user", "content": "a", "timestamp": 1e300}]', "is not a time"),
        ('[{"title": 5, "mapping": {"a": 7}, "current_node": "a"}]', "mapping node 'a' is not an object"),
        ('[{"title": "t", "mapping": []}]', "'mapping' must be an object"),
        ("", "no messages"),
    ],
)
def test_bad_files_say_where(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(FormatError, match=says):
        read(_write(tmp_path, "bad.jsonl", text))
