"""A real OpenAI-compatible server (`python -m llama_cpp.server` with the bundled GGUF) on 127.0.0.1,
answered through OpenAIBackend, and through a fallback chain whose first backend is a dead port."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import pytest
from almanac.core.backends import OpenAIBackend, Timeouts
from almanac.core.fallback import ChainResult, FallbackChain, Policy
from almanac.core.llm import bundled_llm_path
from servers import free_port

pytestmark = pytest.mark.slow
pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python's server extra is not installed")

# The server loads its model with llama.cpp's defaults; wrap them as LocalLLM does, so an AMX build does
# not die with SIGILL on machines where the OS has not enabled AMX.
LAUNCH = (
    "import sys; from almanac.core.llm import _safe_model_params\n"
    "from llama_cpp.server.__main__ import main\n"
    "sys.argv[0] = 'llama_cpp.server'\n"
    "with _safe_model_params(): main()\n"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    log = (tmp_path_factory.mktemp("llama-server") / "server.log").open("w+b")  # a pipe would fill and block it
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "--model", str(bundled_llm_path()), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--seed", "1234"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"llama_cpp.server exited: {log.read().decode(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(base + "/models", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not start within 120 s")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


MESSAGES = [
    {"role": "system", "content": "You answer questions using only the numbered passages. Cite them like [1]."},
    {"role": "user", "content": "Passages:\n\n[1] notes.md\nThe garden gate code is 4512. [1]\n\n"
                                "Question: What is the garden gate code?"},
]


def test_answers_through_a_real_llama_cpp_server(server):
    backend = OpenAIBackend(server, "smollm2", name="llama-server",
                            timeouts=Timeouts(connect=2, first_token=60, idle=30, total=120))
    result = ChainResult()
    pieces = list(FallbackChain([backend]).stream_chat(MESSAGES, max_tokens=48, result=result))
    text = "".join(pieces)
    assert len(pieces) > 1, "the answer was not streamed piece by piece"
    assert text.strip()
    assert result.backend == "llama-server" and result.stopped in ("stop", "length")
    assert result.completion_tokens > 0


def test_falls_back_from_a_dead_port_to_the_real_server(server):
    dead = OpenAIBackend(f"http://127.0.0.1:{free_port()}/v1", "x", name="dead",
                         timeouts=Timeouts(connect=1, first_token=5, idle=5, total=10))
    live = OpenAIBackend(server, "smollm2", name="llama-server")
    result = ChainResult()
    chain = FallbackChain([dead, live], policy=Policy(retries=1, backoff_s=0.05))
    text = "".join(chain.stream_chat(MESSAGES, max_tokens=16, result=result))
    assert text.strip() and result.backend == "llama-server"
    assert [(a.backend, a.outcome, a.error_category) for a in result.attempts] == [
        ("dead", "retried", "connection"), ("dead", "failed", "connection"), ("llama-server", "answered", None),
    ]
