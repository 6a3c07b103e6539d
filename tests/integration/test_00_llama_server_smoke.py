"""First test of the session: the llama.cpp server evaluates a multi-token prompt and stays up.

A llama-cpp-python built with native CPU flags segfaulted (exit 139) on any evaluation of more than
one token on CPUs with AMX / AVX-512 (issue 11): the server died on its first chat completion and
every server test failed with "connection refused". This test names that failure directly — the
server's exit code and log tail — before anything else runs (``conftest.py`` orders it first).
"""

from __future__ import annotations

import openai
import pytest

from judgelab.backends.llama_server import LLAMA_CPP_EXTRA_BODY

pytestmark = pytest.mark.integration

PROMPT = ("Here is a list of fruits: apple, banana, cherry, date, elderberry, fig, grape, honeydew, kiwi, "
          "lemon, mango, nectarine, orange, papaya. Which of them is yellow? Answer in one short sentence.")


def _dead(server) -> str:
    rc = None if server.process is None else server.process.poll()
    return (f"the llama.cpp server is not running (exit code {rc}; -11 / 139 = segfault, e.g. a native "
            f"build on an AMX/AVX-512 CPU); log tail ({server.log_path}):\n{server.log_text(tail_chars=4000)}")


def test_server_evaluates_a_multi_token_prompt_and_stays_up(llama_server_factory, llama_model):
    server = llama_server_factory.start("main")
    client = openai.OpenAI(base_url=server.base_url, api_key="EMPTY", max_retries=0, timeout=120)
    try:
        resp = client.chat.completions.create(
            model=llama_model, messages=[{"role": "user", "content": PROMPT}], max_tokens=16,
            temperature=0.0, seed=0, extra_body=dict(LLAMA_CPP_EXTRA_BODY),
        )
    except openai.OpenAIError as e:
        pytest.fail(f"chat completion failed: {e!r}\n{_dead(server)}", pytrace=False)
    finally:
        client.close()
    assert server.process is not None and server.process.poll() is None, _dead(server)
    # the whole prompt was evaluated (one multi-token batch) and something was generated after it
    assert resp.usage.prompt_tokens > 32, resp.usage
    assert resp.usage.completion_tokens >= 1 and resp.choices[0].message.content, resp
