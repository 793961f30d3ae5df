"""OpenAI-compatible backends and the fallback chain, against real servers on 127.0.0.1 with short timeouts."""

from __future__ import annotations

import logging
import stat
import threading
import time

import pytest
from almanac.core import keys
from almanac.core.backends import BackendError, OpenAIBackend, Timeouts
from almanac.core.errors import AlmanacError
from almanac.core.fallback import ChainResult, FallbackChain, NoBackendAnswered, Policy
from servers import chat_server, free_port, silent_server, status_reply, stream_reply

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Passages:\n\nQuestion: hi?"}]
FAST = Timeouts(connect=1.0, first_token=0.8, idle=0.5, total=5.0)
QUICK = Policy(retries=2, backoff_s=0.01, cooldown_after=2, cooldown_s=60)


def backend(url: str, name: str, **kw) -> OpenAIBackend:
    return OpenAIBackend(url, "test-model", name=name, timeouts=kw.pop("timeouts", FAST), **kw)


def run(chain, result=None, cancel=None):
    result = result if result is not None else ChainResult()
    start = time.monotonic()
    text = "".join(chain.stream_chat(MESSAGES, max_tokens=32, result=result, cancel=cancel))
    return text, result, time.monotonic() - start


def outcomes(result: ChainResult):
    return [(a.backend, a.outcome, a.error_category) for a in result.attempts]


def test_streams_an_answer_and_sends_the_key_in_a_header():
    with chat_server(stream_reply(["Paris ", "is the ", "capital [1]."])) as (url, requests):
        b = backend(url, "remote", api_key="sk-test-123")
        result = ChainResult()
        text, result, _ = run(FallbackChain([b]), result)
    assert text == "Paris is the capital [1]."
    assert result.backend == "remote" and result.stopped == "stop"
    assert outcomes(result) == [("remote", "answered", None)]
    assert requests[0]["_authorization"] == "Bearer sk-test-123"
    assert requests[0]["stream"] is True and requests[0]["messages"] == MESSAGES
    assert "sk-test" not in repr(b)


def test_dead_port_is_a_connection_error_retried_then_falls_back():
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with chat_server(stream_reply(["ok"])) as (url, _):
        chain = FallbackChain([backend(dead, "dead"), backend(url, "good")], policy=QUICK)
        text, result, took = run(chain)
    assert text == "ok" and result.backend == "good"
    assert outcomes(result) == [
        ("dead", "retried", "connection"),
        ("dead", "retried", "connection"),
        ("dead", "failed", "connection"),
        ("good", "answered", None),
    ]
    assert took < 2.0


def test_server_that_never_answers_times_out_at_first_token_then_falls_back():
    with silent_server() as hung, chat_server(stream_reply(["ok"])) as (url, _):
        chain = FallbackChain([backend(hung, "hung"), backend(url, "good")], policy=QUICK)
        text, result, took = run(chain)
    assert text == "ok"
    assert outcomes(result) == [("hung", "failed", "timeout"), ("good", "answered", None)]
    assert FAST.first_token <= took < FAST.first_token + 1.5  # timeouts are not retried


def test_server_answering_500_is_retried_with_backoff_then_falls_back():
    with chat_server(status_reply(500, "boom")) as (bad, bad_requests), chat_server(stream_reply(["ok"])) as (
        url,
        _,
    ):
        chain = FallbackChain([backend(bad, "broken"), backend(url, "good")], policy=QUICK)
        text, result, took = run(chain)
    assert text == "ok" and len(bad_requests) == 3
    assert [o for o in outcomes(result)] == [
        ("broken", "retried", "model_error"),
        ("broken", "retried", "model_error"),
        ("broken", "failed", "model_error"),
        ("good", "answered", None),
    ]
    assert took < 2.0


def test_stall_after_the_first_token_ends_the_answer_with_a_note_and_no_fallback():
    stall = stream_reply(["The answer ", "is"], stall_after=1, stall_s=5)
    with chat_server(stall) as (url, _), chat_server(stream_reply(["other"])) as (url2, second):
        chain = FallbackChain([backend(url, "stalls"), backend(url2, "spare")], policy=QUICK)
        text, result, took = run(chain)
    assert text == "The answer "
    assert result.stopped == "timeout" and result.backend == "stalls"
    assert "cut off" in result.note and "stopped sending" in result.note
    assert outcomes(result) == [("stalls", "failed", "timeout")]
    assert second == []  # never asked: the user was already reading the first answer
    assert FAST.idle <= took < FAST.idle + 1.5


def test_all_backends_failing_raises_a_summary_with_categories():
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with chat_server(status_reply(404, "no such model")) as (url, _):
        chain = FallbackChain([backend(dead, "dead"), backend(url, "wrong-model")], policy=Policy(retries=0))
        result = ChainResult()
        with pytest.raises(NoBackendAnswered) as err:
            run(chain, result)
    assert err.value.category == "model_error"
    assert "dead" in str(err.value) and "wrong-model" in str(err.value)
    assert outcomes(result) == [("dead", "failed", "connection"), ("wrong-model", "failed", "model_error")]


def test_context_overflow_retries_the_same_backend_with_a_smaller_prompt():
    long_messages = [
        {"role": "user", "content": "Passages:\n\n" + "long passage " * 50 + "\n\nshort one\n\nQuestion: q?"}
    ]

    def behave(h, body):
        if len(body["messages"][-1]["content"]) > 200:
            status_reply(400, "This model's maximum context length is 128 tokens")(h, body)
        else:
            stream_reply(["fits"])(h, body)

    with chat_server(behave) as (url, requests), chat_server(stream_reply(["other"])) as (url2, second):
        chain = FallbackChain([backend(url, "small-ctx"), backend(url2, "spare")], policy=QUICK)
        result = ChainResult()
        text = "".join(chain.stream_chat(long_messages, max_tokens=8, result=result))
    assert text == "fits" and second == []
    assert outcomes(result) == [("small-ctx", "retried", "context_overflow"), ("small-ctx", "answered", None)]
    assert "long passage" not in requests[1]["messages"][-1]["content"]


def test_rate_limit_is_retried_after_the_servers_delay():
    calls = []

    def behave(h, body):
        calls.append(time.monotonic())
        if len(calls) == 1:
            status_reply(429, "slow down", {"Retry-After": "0.3"})(h, body)
        else:
            stream_reply(["ok"])(h, body)

    with chat_server(behave) as (url, _):
        text, result, _ = run(FallbackChain([backend(url, "busy")], policy=QUICK))
    assert text == "ok"
    assert outcomes(result) == [("busy", "retried", "rate_limit"), ("busy", "answered", None)]
    assert calls[1] - calls[0] >= 0.3


def test_garbage_stream_is_bad_output():
    def behave(h, body):
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.end_headers()
        h.wfile.write(b"data: <html>oops</html>\n\n")

    with chat_server(behave) as (url, _), pytest.raises(BackendError) as err:
        "".join(backend(url, "garbage").stream_chat(MESSAGES, max_tokens=8))
    assert err.value.category == "bad_output"


def test_a_failing_backend_cools_down_is_skipped_and_is_tried_again_later():
    now = [1000.0]
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with chat_server(stream_reply(["ok"])) as (url, _):
        chain = FallbackChain(
            [backend(dead, "dead"), backend(url, "good")], policy=Policy(retries=0, cooldown_after=2, cooldown_s=30),
            clock=lambda: now[0],
        )
        for _ in range(2):
            _, result, _ = run(chain)
            assert outcomes(result)[0] == ("dead", "failed", "connection")
        _, result, took = run(chain)
        assert outcomes(result)[0] == ("dead", "skipped", "connection")
        assert chain.health("dead")[1] == 30
        now[0] += 31
        _, result, _ = run(chain)
    assert outcomes(result)[0] == ("dead", "failed", "connection")  # tried again after the cool-down


def test_cancel_while_waiting_for_the_first_token_stops_at_once_without_fallback():
    flag = threading.Event()
    threading.Timer(0.2, flag.set).start()
    slow = Timeouts(connect=1.0, first_token=10.0, idle=10.0, total=20.0)
    with silent_server() as hung, chat_server(stream_reply(["other"])) as (url, second):
        chain = FallbackChain([backend(hung, "hung", timeouts=slow), backend(url, "spare")], policy=QUICK)
        text, result, took = run(chain, cancel=flag.is_set)
    assert text == "" and result.stopped == "cancelled" and second == []
    assert took < 1.5


def test_api_key_never_reaches_messages_or_logs(caplog, monkeypatch):
    monkeypatch.setenv("ALMANAC_NO_KEYRING", "1")
    secret = "sk-very-secret-42"
    assert keys.set_api_key("remote", secret) == "file"
    assert stat.S_IMODE(keys.keys_path().stat().st_mode) == 0o600
    assert keys.get_api_key("remote") == secret
    caplog.set_level(logging.DEBUG)
    with chat_server(status_reply(401, "invalid key")) as (url, requests), pytest.raises(BackendError) as err:
        "".join(backend(url, "remote", api_key=keys.get_api_key("remote")).stream_chat(MESSAGES, max_tokens=8))
    assert requests[0]["_authorization"] == f"Bearer {secret}"
    assert secret not in str(err.value) and secret not in caplog.text
    keys.delete_api_key("remote")
    assert keys.get_api_key("remote") is None


def test_chain_from_settings_puts_the_local_model_last_and_reads_keys(monkeypatch):
    from almanac.core.fallback import chain_from_settings

    monkeypatch.setenv("ALMANAC_NO_KEYRING", "1")
    keys.set_api_key("office", "sk-office")
    with chat_server(stream_reply(["from office"])) as (url, requests):
        local = backend(f"http://127.0.0.1:{free_port()}/v1", "local-stand-in")
        chain = chain_from_settings(
            [{"name": "office", "base_url": url, "model": "big", "first_token_timeout_s": 2},
             {"name": "off", "base_url": url, "model": "x", "enabled": False}],
            local,
        )
        assert [b.name for b in chain.backends] == ["office", "local-stand-in"]
        text, result, _ = run(chain)
    assert text == "from office" and requests[0]["_authorization"] == "Bearer sk-office"
    with pytest.raises(AlmanacError, match="malformed"):
        chain_from_settings([{"name": "broken"}], local)


def test_pipeline_takes_new_servers_without_reloading_the_local_model(tmp_path):
    from almanac.core.fallback import ChainedModel
    from almanac.core.pipeline import AnswerPipeline
    from almanac.core.settings import Settings

    class Local:  # a stand-in for the local model: only whether it was closed matters here
        name, closed = "local.gguf", False

        def close(self):
            self.closed = True

    local = Local()
    pipeline = AnswerPipeline(tmp_path / "lib.db", None, Settings(), model_factory=lambda s: local)
    model = pipeline.model
    assert isinstance(model, ChainedModel) and [b.name for b in model.chain.backends] == ["local:local.gguf"]
    servers = [{"name": "office", "base_url": "http://127.0.0.1:9/v1", "model": "big"}]
    pipeline.configure(Settings(answer_servers=servers), reload_model=False)
    assert pipeline.model is model and not local.closed
    assert [b.name for b in model.chain.backends] == ["office", "local:local.gguf"]


def test_when_every_backend_fails_the_answer_keeps_its_quick_answer_and_says_why():
    from almanac.core.answer import AnswerConfig, Answerer
    from almanac.core.embedding import HashEmbedder
    from almanac.core.errors import ModelError
    from almanac.core.fallback import ChainedModel
    from test_answer import FakeSearcher, ScriptedModel, make_hit

    class BrokenLocal(ScriptedModel):
        def stream_chat(self, messages, **kw):
            raise ModelError("the model file is damaged")
            yield  # a generator, like the real one

    dead = f"http://127.0.0.1:{free_port()}/v1"
    model = ChainedModel(BrokenLocal(""), [{"name": "office", "base_url": dead, "model": "big"}])
    model.chain.policy = Policy(retries=0)
    hits = [make_hit(0, "The capital of Freedonia is Blorbville.", path="/docs/atlas.md")]
    answer = Answerer(FakeSearcher(hits), model, HashEmbedder(), AnswerConfig(decline=False)).ask(
        "What is the capital of Freedonia?"
    )
    # Nothing was written, so the reply is the quick answer from the files, with the note saying why.
    quick = answer.quick_answer
    assert quick is not None and answer.text == f"{quick.text} [{quick.n}]" and answer.stopped == "model_error"
    assert "No answer backend could answer" in answer.note and "damaged" in answer.note
    assert [(a.backend, a.outcome, a.error_category) for a in answer.attempts] == [
        ("office", "failed", "connection"), ("local:scripted.gguf", "failed", "model_error"),
    ]
    assert answer.quick_answer is not None and "Blorbville" in answer.quick_answer.text
    assert answer.to_json()["attempts"][0]["error_category"] == "connection"
