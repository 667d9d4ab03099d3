"""The optional LLM: any OpenAI-compatible ``/v1/chat/completions`` endpoint, asked for JSON only.

Engram never needs free text from a model, only structured answers (extraction, summaries), so the
client has one method, :meth:`ChatClient.complete_json`: messages in, a validated pydantic model out.

Servers differ in how JSON can be forced (OpenAI, vLLM and llama.cpp take a JSON schema; some proxies and
older servers only take ``json_object``; others reject ``response_format`` altogether), and models sometimes
answer with fences, prose or a field missing. Three kinds of failure are therefore handled apart:

* the server refuses the structured-output request → the next mode (``auto`` only), remembered on the client;
* the transport fails (timeout, connection, 429, 5xx) → the same request again, after an exponential backoff;
* the reply is not JSON the response model accepts → the conversation goes on with a repair request.

Every completion's token usage is summed and returned, even when the call finally fails (``LLMError.usage``),
so jobs can account for what a failure cost.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from engramdb import metrics
from engramdb.config import Settings
from engramdb.errors import ConfigurationError, EngramError
from engramdb.providers.extraction import Usage

Mode = Literal["json_schema", "json_object", "none"]
StructuredOutput = Literal["auto", "json_schema", "json_object", "none"]
T = TypeVar("T", bound=BaseModel)

_log = logging.getLogger(__name__)
_AUTO_ORDER: tuple[Mode, ...] = ("json_schema", "json_object", "none")
# An error body naming one of these is a refusal of the structured-output request, not of the messages.
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "structured output")
_MAX_RETRY_AFTER_S = 30.0  # a longer Retry-After is ignored: the job queue retries much later anyway
_ERROR_CHARS = 300  # of a server's error body or a validation error, quoted in messages and logs
_ECHO_CHARS = 8000  # of a bad reply, sent back in a repair request
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)  # reasoning models may think aloud, braces included
_FENCE = re.compile(r"```[A-Za-z]*\s*(.*?)```", re.DOTALL)
_REPAIR = (
    "Your previous reply could not be used: {error}. "
    "Reply again with the complete, corrected JSON object only, and no other text."
)


class LLMError(EngramError):
    """The chat model could not produce a usable answer, after every retry and repair it was allowed.

    ``usage`` holds the tokens spent on the way, so a failed job still accounts for them.
    """

    status = 502
    slug = "llm-failed"
    title = "Language model failed"

    def __init__(self, detail: str, *, usage: Usage | None = None) -> None:
        super().__init__(detail)
        self.usage = usage or Usage()


class _FormatRejected(Exception):
    """The server refused the ``response_format`` it was sent."""


class _Failed(Exception):
    """One request failed for good (a 4xx, or every transport retry spent)."""


@dataclass(frozen=True)
class _Retry:
    reason: str
    retry_after: float | None = None


class ChatClient:
    """An async client of one chat model, built on ``httpx.AsyncClient``.

    ``transport`` lets tests (and in-process callers) swap the network; ``backoff_s`` is the first
    wait between transport retries, doubled each time.
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        structured_output: StructuredOutput = "auto",
        temperature: float = 0.0,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff_s: float = 1.0,
    ) -> None:
        self.model = model
        self.name = f"llm:{model}"
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.structured_output: StructuredOutput = structured_output
        self.temperature = temperature
        self.backoff_s = backoff_s
        # The modes still believed to work, best first; a refused mode is dropped for the client's lifetime.
        self._modes: list[Mode] = list(_AUTO_ORDER) if structured_output == "auto" else [structured_output]
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport
        )

    @property
    def mode(self) -> Mode:
        """The structured-output mode the next call will use."""
        return self._modes[0]

    async def aclose(self) -> None:
        await self._client.aclose()

    async def complete_json(
        self, messages: list[dict[str, str]], response_model: type[T], *, schema_name: str
    ) -> tuple[T, Usage]:
        """The model's answer to ``messages``, validated as ``response_model``, and the usage it cost.

        Raises :class:`LLMError` (carrying the usage so far) when the server keeps failing, refuses every
        structured-output mode, or still sends unusable JSON after ``max_retries`` repairs.
        """
        schema, strict = strict_schema(response_model)
        name = re.sub(r"[^A-Za-z0-9_-]", "_", schema_name)[:64]  # the charset OpenAI accepts
        conversation = [dict(m) for m in messages]
        usage = Usage()
        repairs = 0
        while True:
            mode = self.mode
            body = self._body(conversation, mode, name, schema, strict)
            try:
                content, spent = await self._send(body)
            except _FormatRejected as exc:
                if self._fall_back(mode, str(exc)):
                    continue
                raise LLMError(
                    f"{self._where} refused structured output {mode!r}: {exc}. "
                    "Set ENGRAM_LLM_STRUCTURED_OUTPUT=auto (or none) to use plain prompting.",
                    usage=usage,
                ) from None
            except _Failed as exc:
                raise LLMError(f"{self._where} failed: {exc}", usage=usage) from None
            usage += spent
            try:
                return response_model.model_validate(parse_json_object(content)), usage
            except ValueError as exc:  # JSONDecodeError and pydantic's ValidationError are both ValueErrors
                error = _describe(exc)
                if repairs >= self.max_retries:
                    raise LLMError(
                        f"{self._where} sent unusable JSON for {name} {repairs + 1} times; last error: {error}",
                        usage=usage,
                    ) from None
                repairs += 1
                _log.info("%s: unusable JSON for %s (%s), asking for a repair", self.name, name, error)
                conversation.append({"role": "assistant", "content": content[:_ECHO_CHARS]})
                conversation.append({"role": "user", "content": _REPAIR.format(error=error)})

    @property
    def _where(self) -> str:
        return f"the chat model {self.model!r} at {self.base_url}"

    def _fall_back(self, mode: Mode, reason: str) -> bool:
        """Drop ``mode`` after the server refused it; False when there is nothing left to try."""
        if self.structured_output != "auto" or mode == "none":
            return False
        if mode in self._modes and len(self._modes) > 1:
            self._modes.remove(mode)
            _log.warning("%s refused response_format %s (%s); now using %s", self._where, mode, reason, self.mode)
        return self.mode != mode  # a concurrent call may already have moved on

    def _body(
        self, conversation: list[dict[str, str]], mode: Mode, name: str, schema: dict[str, Any], strict: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": _with_json_instructions(conversation, mode, schema),
            "temperature": self.temperature,
        }
        if mode == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": strict},
            }
        elif mode == "json_object":
            body["response_format"] = {"type": "json_object"}
        return body

    async def _send(self, body: dict[str, Any]) -> tuple[str, Usage]:
        """The reply content of one request, retrying transport failures with exponential backoff."""
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            outcome = await self._post_once(body)
            if not isinstance(outcome, _Retry):
                return outcome
            if attempt + 1 == attempts:
                raise _Failed(f"{outcome.reason} (after {attempts} attempts)")
            wait = self.backoff_s * 2**attempt
            if outcome.retry_after is not None and outcome.retry_after <= _MAX_RETRY_AFTER_S:
                wait = max(wait, outcome.retry_after)
            _log.warning("%s: %s; retrying in %.2f s", self._where, outcome.reason, wait)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def _post_once(self, body: dict[str, Any]) -> tuple[str, Usage] | _Retry:
        try:
            response = await self._client.post("/chat/completions", json=body)
        except httpx.TimeoutException:
            return _Retry(f"no answer within {self.timeout_s:g} s")
        except httpx.TransportError as exc:
            return _Retry(f"could not be reached ({type(exc).__name__}: {exc})")
        status = response.status_code
        text = response.text[:_ERROR_CHARS]
        if status == 200:
            try:
                return _read_completion(response)
            except ValueError as exc:
                return _Retry(f"sent a reply that is not a chat completion ({exc})")
        if "response_format" in body and status != 429 and any(w in text.lower() for w in _FORMAT_WORDS):
            raise _FormatRejected(f"HTTP {status}: {text}")
        if status == 429 or status >= 500:
            return _Retry(f"answered HTTP {status}: {text}", _retry_after(response))
        raise _Failed(f"answered HTTP {status}: {text}")


def create_llm(settings: Settings) -> ChatClient | None:
    """The configured chat model, or None when ``ENGRAM_LLM_BASE_URL`` is unset (offline extraction)."""
    if not settings.llm_base_url:
        return None
    if not settings.llm_model:
        raise ConfigurationError(
            "ENGRAM_LLM_BASE_URL is set but ENGRAM_LLM_MODEL is not: name the chat model to use (e.g. gpt-4o-mini)"
        )
    return ChatClient(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key,
        timeout_s=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
        structured_output=settings.llm_structured_output,
        temperature=settings.llm_temperature,
    )


@functools.lru_cache(maxsize=64)
def strict_schema(model: type[BaseModel]) -> tuple[dict[str, Any], bool]:
    """``model``'s JSON schema made acceptable to OpenAI's strict mode, and whether that was possible.

    Strict mode wants every property listed in ``required``, ``additionalProperties: false`` on every
    object, and no ``default``. Response models keep their defaults for validation (a lenient parse loses
    less), so the schema sent says "required" while the model forgives a missing key. A schema with a
    free-form object (a ``dict`` field) cannot be strict; it is then sent as is with ``strict: false``.
    The result is shared: do not mutate it.
    """
    original = model.model_json_schema()
    schema = copy.deepcopy(original)
    return (schema, True) if _make_strict(schema) else (original, False)


def _make_strict(node: dict[str, Any]) -> bool:
    node.pop("default", None)
    ok = True
    props = node.get("properties")
    if node.get("type") == "object" or props is not None:
        if not isinstance(props, dict) or not props or node.get("additionalProperties") not in (None, False):
            ok = False
        else:
            node["additionalProperties"] = False
            node["required"] = list(props)
    children: list[Any] = []
    for key in ("properties", "$defs", "definitions"):
        if isinstance(node.get(key), dict):
            children.extend(node[key].values())
    for key in ("items", "not"):
        children.append(node.get(key))
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(node.get(key), list):
            children.extend(node[key])
    for child in children:
        if isinstance(child, dict) and not _make_strict(child):
            ok = False
    return ok


def parse_json_object(text: str) -> Any:
    """The outermost JSON object in a model's reply, which may be fenced or wrapped in prose."""
    text = _THINK.sub("", text).strip()
    fenced = _FENCE.search(text)
    candidates = ([fenced.group(1).strip()] if fenced else []) + [text]
    error = "the reply holds no JSON object"
    for candidate in candidates:
        start, end = candidate.find("{"), candidate.rfind("}")
        for piece in (candidate, candidate[start : end + 1] if 0 <= start < end else None):
            if piece is None:
                continue
            try:
                value = json.loads(piece)
            except ValueError as exc:
                if "{" in piece:  # otherwise the reply is prose, and "no JSON object" says it better
                    error = f"invalid JSON: {exc}"
                continue
            if isinstance(value, dict):
                return value
            error = f"expected a JSON object, got {type(value).__name__}"
    raise ValueError(error)


def _with_json_instructions(conversation: list[dict[str, str]], mode: Mode, schema: dict[str, Any]) -> list[Any]:
    """``conversation`` with the schema spelled out in the system message, unless the server enforces it."""
    if mode == "json_schema":
        return conversation
    note = "Reply with a single JSON object that conforms to this JSON schema:\n" + json.dumps(
        schema, separators=(",", ":")
    )
    if mode == "none":
        note += "\nReply with the JSON object only: no prose before or after it, no code fences."
    messages = [dict(m) for m in conversation]
    if messages and messages[0].get("role") == "system":
        messages[0]["content"] = f"{messages[0]['content']}\n\n{note}"
    else:
        messages.insert(0, {"role": "system", "content": note})
    return messages


def _read_completion(response: httpx.Response) -> tuple[str, Usage]:
    try:
        data = response.json()
        content = data["choices"][0]["message"].get("content") or ""
        spent = data.get("usage") or {}
        usage = Usage(int(spent.get("prompt_tokens") or 0), int(spent.get("completion_tokens") or 0), 1)
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc
    metrics.LLM_CALLS.inc()
    metrics.LLM_TOKENS.labels("prompt").inc(usage.prompt_tokens)
    metrics.LLM_TOKENS.labels("completion").inc(usage.completion_tokens)
    if not isinstance(content, str):
        raise ValueError("message content is not text")
    return content, usage


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None  # absent, or an HTTP date: fall back to exponential backoff


def _describe(exc: ValueError) -> str:
    """A short, model-readable account of why a reply was refused."""
    if isinstance(exc, ValidationError):
        details = exc.errors(include_url=False)
        parts = [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in details[:5]]
        more = len(details) - len(parts)
        text = "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
    else:
        text = str(exc)
    return text[:_ERROR_CHARS]
