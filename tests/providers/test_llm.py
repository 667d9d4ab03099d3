"""ChatClient against a fake OpenAI-compatible server on loopback: modes, repairs, retries, usage."""

from __future__ import annotations

import json
import socket
import time

import pytest
from pydantic import BaseModel

from engramdb.config import Settings
from engramdb.errors import ConfigurationError, EngramError
from engramdb.providers.extraction import Usage
from engramdb.providers.llm import ChatClient, LLMError, create_llm, parse_json_object, strict_schema
from tests.providers.fake_openai import (
    FakeOpenAI,
    completion,
    error,
    good,
    malformed,
    reject_format,
    slow,
)

MESSAGES = [{"role": "system", "content": "You summarise."}, {"role": "user", "content": "Hello"}]


class Answer(BaseModel):
    summary: str
    count: int = 0


async def ask(chat: ChatClient) -> tuple[Answer, Usage]:
    return await chat.complete_json(MESSAGES, Answer, schema_name="answer")


async def test_good_reply_uses_json_schema(chat: ChatClient, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(good({"summary": "ok", "count": 2}, prompt_tokens=7, completion_tokens=3))
    answer, usage = await ask(chat)
    assert answer == Answer(summary="ok", count=2)
    assert usage == Usage(7, 3, 1)
    (request,) = fake_openai.requests
    assert request["model"] == "fake-model" and request["temperature"] == 0.0
    assert request["messages"] == MESSAGES
    fmt = request["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "answer"
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["required"] == ["summary", "count"]
    assert fmt["json_schema"]["schema"]["additionalProperties"] is False
    assert fake_openai.headers[0]["Authorization"] == "Bearer sk-test"
    assert chat.name == "llm:fake-model" and chat.model == "fake-model"


async def test_rejected_json_schema_falls_back_to_json_object_and_stays(
    chat: ChatClient, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(reject_format(), good({"summary": "a"}), good({"summary": "b"}))
    assert (await ask(chat))[0].summary == "a"
    first, second = fake_openai.requests
    assert first["response_format"]["type"] == "json_schema"
    assert second["response_format"] == {"type": "json_object"}
    assert '"summary"' in second["messages"][0]["content"]  # the schema moved into the system message
    assert second["messages"][0]["content"].startswith("You summarise.")
    assert chat.mode == "json_object"
    assert (await ask(chat))[0].summary == "b"
    assert fake_openai.requests[2]["response_format"] == {"type": "json_object"}


async def test_auto_falls_back_to_plain_prompting(chat: ChatClient, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(reject_format(), reject_format("json_object"), good({"summary": "plain"}))
    answer, usage = await ask(chat)
    assert answer.summary == "plain" and usage.calls == 1
    last = fake_openai.requests[-1]
    assert "response_format" not in last
    assert "JSON object only" in last["messages"][0]["content"]
    assert chat.mode == "none"


async def test_an_explicit_mode_is_not_abandoned(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(reject_format())
    chat = ChatClient(base_url=fake_openai.base_url, model="m", structured_output="json_schema", backoff_s=0.01)
    try:
        with pytest.raises(LLMError, match="ENGRAM_LLM_STRUCTURED_OUTPUT"):
            await ask(chat)
    finally:
        await chat.aclose()
    assert len(fake_openai.requests) == 1


async def test_malformed_reply_is_repaired(chat: ChatClient, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(malformed('{"summary": "oops'), good({"summary": "fixed"}))
    answer, usage = await ask(chat)
    assert answer.summary == "fixed"
    assert usage == Usage(20, 10, 2)  # both calls are paid for
    repair = fake_openai.requests[1]["messages"]
    assert repair[:2] == MESSAGES
    assert repair[2] == {"role": "assistant", "content": '{"summary": "oops'}
    assert repair[3]["role"] == "user" and "invalid JSON" in repair[3]["content"]
    assert "corrected JSON object only" in repair[3]["content"]


async def test_schema_invalid_reply_is_repaired_with_the_field_named(chat: ChatClient, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(good({"count": "many"}), good({"summary": "ok", "count": 1}))
    assert (await ask(chat))[0] == Answer(summary="ok", count=1)
    complaint = fake_openai.requests[1]["messages"][-1]["content"]
    assert "summary: Field required" in complaint and "count:" in complaint


async def test_always_malformed_fails_with_the_usage_spent(chat: ChatClient, fake_openai: FakeOpenAI) -> None:
    fake_openai.always(malformed("I cannot do that."))
    with pytest.raises(LLMError) as caught:
        await ask(chat)
    assert caught.value.usage == Usage(30, 15, 3)  # one call and max_retries=2 repairs
    assert "fake-model" in caught.value.detail and "3 times" in caught.value.detail
    assert isinstance(caught.value, EngramError) and caught.value.status == 502 and caught.value.slug == "llm-failed"


async def test_server_error_is_retried(chat: ChatClient, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(error(500, "boom"), error(503, "busy"), good({"summary": "ok"}))
    answer, usage = await ask(chat)
    assert answer.summary == "ok" and usage == Usage(10, 5, 1)
    assert len(fake_openai.requests) == 3


async def test_rate_limit_honours_a_short_retry_after(chat: ChatClient, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(error(429, "slow down", headers={"Retry-After": "0.2"}), good({"summary": "ok"}))
    started = time.monotonic()
    assert (await ask(chat))[0].summary == "ok"
    assert time.monotonic() - started >= 0.2


async def test_persistent_server_errors_fail_after_the_retries(chat: ChatClient, fake_openai: FakeOpenAI) -> None:
    fake_openai.always(error(502, "bad gateway"))
    with pytest.raises(LLMError, match=r"HTTP 502.*after 3 attempts"):
        await ask(chat)
    assert len(fake_openai.requests) == 3


async def test_slow_reply_times_out_and_is_retried(chat: ChatClient, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(slow(1.5), good({"summary": "in time"}))
    assert (await ask(chat))[0].summary == "in time"
    assert len(fake_openai.requests) == 2


async def test_always_slow_fails(chat: ChatClient, fake_openai: FakeOpenAI) -> None:
    fake_openai.always(slow(1.5))
    started = time.monotonic()
    with pytest.raises(LLMError, match=r"no answer within 0\.3 s \(after 3 attempts\)") as caught:
        await ask(chat)
    assert time.monotonic() - started < 1.5
    assert caught.value.usage == Usage()


async def test_other_client_error_fails_at_once(chat: ChatClient, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(error(400, "This model's maximum context length is 8192 tokens."), good({"summary": "x"}))
    with pytest.raises(LLMError, match="HTTP 400.*maximum context length"):
        await ask(chat)
    assert len(fake_openai.requests) == 1
    assert chat.mode == "json_schema"  # an unrelated 400 says nothing about structured output


async def test_unreachable_server_fails_after_the_retries() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    chat = ChatClient(base_url=f"http://127.0.0.1:{port}/v1", model="m", timeout_s=0.3, backoff_s=0.01)
    try:
        with pytest.raises(LLMError, match=r"could not be reached.*after 3 attempts"):
            await ask(chat)
    finally:
        await chat.aclose()


@pytest.mark.parametrize(
    "content",
    [
        '```json\n{"summary": "fenced"}\n```',
        'Here you go:\n```\n{"summary": "fenced"}\n```\nAnything else?',
        'Sure! {"summary": "fenced"} Hope that helps.',
        '<think>Maybe {"summary": "wrong"}?</think>{"summary": "fenced"}',
    ],
)
async def test_json_wrapped_in_fences_or_prose_is_accepted(
    chat: ChatClient, fake_openai: FakeOpenAI, content: str
) -> None:
    fake_openai.script(completion(content))
    assert (await ask(chat))[0].summary == "fenced"
    assert len(fake_openai.requests) == 1


def test_parse_json_object_takes_the_outermost_object() -> None:
    assert parse_json_object('x {"a": {"b": 1}} y') == {"a": {"b": 1}}
    with pytest.raises(ValueError, match="no JSON object"):
        parse_json_object("no json here")
    with pytest.raises(ValueError, match="expected a JSON object"):
        parse_json_object("[1, 2]")


def test_a_free_form_object_cannot_be_strict() -> None:
    class Loose(BaseModel):
        scores: dict[str, float]

    schema, strict = strict_schema(Loose)
    assert strict is False and "required" in schema and json.dumps(schema)


async def test_create_llm_follows_the_settings() -> None:
    assert create_llm(Settings(llm_base_url=None)) is None
    with pytest.raises(ConfigurationError, match="ENGRAM_LLM_MODEL"):
        create_llm(Settings(llm_base_url="http://127.0.0.1:1/v1", llm_model=None))
    chat = create_llm(
        Settings(
            llm_base_url="http://127.0.0.1:1/v1/",
            llm_model="m",
            llm_timeout_s=5,
            llm_max_retries=4,
            llm_structured_output="json_object",
        )
    )
    assert chat is not None
    try:
        assert (chat.base_url, chat.model, chat.timeout_s, chat.max_retries, chat.mode) == (
            "http://127.0.0.1:1/v1",
            "m",
            5,
            4,
            "json_object",
        )
    finally:
        await chat.aclose()
