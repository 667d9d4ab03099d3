"""Conversation exports that ``engramdb chat-import`` reads, turned into Engram messages.

- OpenAI messages: a JSON array of ``{"role", "content", …}``, or ``{"messages": [...], "title"?}``;
  ``content`` may be a string or a list of parts (``{"type": "text", "text": …}``).
- JSON Lines: one message per line, or one conversation (``{"messages": [...]}``) per line.
- A ChatGPT data export (``conversations.json``): a list of conversations with a ``mapping`` tree;
  the thread that ends at ``current_node`` is imported.

Timestamps are kept: ``occurred_at``, ``timestamp``, ``created_at`` or ``create_time`` (ISO 8601 or Unix
seconds). Roles other than user / assistant / system / tool (``developer``, ``function``) are mapped;
messages with no text (tool calls, images only) are skipped and counted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROLES = {"user": "user", "human": "user", "assistant": "assistant", "ai": "assistant", "system": "system"}
ROLES |= {"developer": "system", "tool": "tool", "function": "tool"}
TIME_KEYS = ("occurred_at", "timestamp", "created_at", "create_time")


class FormatError(ValueError):
    """The file is not a conversation export this command reads."""


@dataclass
class Conversation:
    title: str | None
    messages: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0


def fingerprint(conversation: Conversation) -> str:
    """A stable id of a conversation's content, to know it was imported before."""
    canonical = json.dumps([conversation.title, conversation.messages], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, dict):  # ChatGPT: {"content_type": "text", "parts": [...]}
        return _text(content.get("parts") or content.get("text") or "")
    if isinstance(content, list):
        parts = [p if isinstance(p, str) else (p.get("text") or "") for p in content if isinstance(p, str | dict)]
        return "\n".join(p for p in parts if isinstance(p, str) and p.strip())
    return ""


def _when(raw: dict[str, Any]) -> str | None:
    for key in TIME_KEYS:
        value = raw.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000 if abs(value) > 1e11 else value  # milliseconds, as JavaScript writes them
            try:
                return datetime.fromtimestamp(seconds, tz=UTC).isoformat()
            except (ValueError, OverflowError, OSError) as exc:
                raise FormatError(f"'{key}': {value!r} is not a time (Unix seconds or milliseconds)") from exc
        if isinstance(value, str) and value.strip():
            try:
                parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError as exc:
                raise FormatError(f"'{key}': {value!r} is not an ISO 8601 time or Unix seconds") from exc
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()
    return None


def _title(raw: dict[str, Any]) -> str | None:
    title = raw.get("title")
    return title.strip() or None if isinstance(title, str) else None


def _message(raw: Any, conversation: Conversation) -> None:
    if not isinstance(raw, dict):
        raise FormatError(f"a message must be an object, not {type(raw).__name__}")
    author = raw.get("author")
    role_name = raw.get("role") or (author.get("role") if isinstance(author, dict) else None)
    role = ROLES.get(str(role_name).lower()) if role_name else None
    if role is None:
        raise FormatError(f"unknown role {role_name!r} (expected user, assistant, system or tool)")
    text = _text(raw.get("content")).strip()
    if not text:
        conversation.skipped += 1
        return
    message: dict[str, Any] = {"role": role, "content": text}
    if when := _when(raw):
        message["occurred_at"] = when
    name = raw.get("name") or (author.get("name") if isinstance(author, dict) else None)
    if isinstance(name, str) and name.strip():
        message["name"] = name.strip()[:200]
    conversation.messages.append(message)


def _chatgpt(raw: dict[str, Any]) -> Conversation:
    conversation = Conversation(title=_title(raw))
    mapping = raw["mapping"]
    if not isinstance(mapping, dict):
        raise FormatError("a ChatGPT conversation's 'mapping' must be an object")
    current = raw.get("current_node")
    node_id = current if isinstance(current, str) else None
    if node_id is None:  # no pointer: the first leaf
        node_id = next((k for k, v in mapping.items() if isinstance(v, dict) and not v.get("children")), None)
    thread: list[dict[str, Any]] = []
    seen: set[str] = set()
    while isinstance(node_id, str) and node_id in mapping and node_id not in seen:
        seen.add(node_id)
        node = mapping[node_id]
        if not isinstance(node, dict):
            raise FormatError(f"mapping node {node_id!r} is not an object")
        if isinstance(node.get("message"), dict):
            thread.append(node["message"])
        node_id = node.get("parent")
    for message in reversed(thread):
        author = message.get("author")
        role = author.get("role") if isinstance(author, dict) else None
        if role == "system" and not _text(message.get("content")).strip():
            continue
        _message(message, conversation)
    return conversation


def _conversation(raw: Any) -> Conversation:
    if isinstance(raw, dict) and isinstance(raw.get("mapping"), dict):
        return _chatgpt(raw)
    if isinstance(raw, dict) and isinstance(raw.get("messages"), list):
        conversation = Conversation(title=_title(raw))
        for message in raw["messages"]:
            _message(message, conversation)
        return conversation
    if isinstance(raw, list):
        conversation = Conversation(title=None)
        for message in raw:
            _message(message, conversation)
        return conversation
    raise FormatError("expected a list of messages, {'messages': [...]}, or a ChatGPT conversations export")


def read(path: Path) -> list[Conversation]:
    """Every conversation in the file, in order; raises ``FormatError`` naming what is wrong and where."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"cannot read {path}: {exc}") from exc
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        return _jsonl(text)
    if isinstance(whole, list) and whole and all(isinstance(x, dict) and "mapping" in x for x in whole):
        return [_chatgpt(x) for x in whole]
    return [_conversation(whole)]


def _jsonl(text: str) -> list[Conversation]:
    loose = Conversation(title=None)
    found: list[Conversation] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            if isinstance(raw, dict) and ("messages" in raw or "mapping" in raw):
                found.append(_conversation(raw))
            else:
                _message(raw, loose)
        except (json.JSONDecodeError, FormatError) as exc:
            raise FormatError(f"line {number}: {exc}") from exc
    if loose.messages or loose.skipped:
        found.insert(0, loose)
    if not found:
        raise FormatError("the file holds no messages")
    return found
