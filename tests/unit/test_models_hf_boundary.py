"""``HFBackend.next_token_probs`` at the prefix/candidate token boundary, with a merging tokenizer.

SmolLM2 (tested for real in tests/integration/test_hf_backend.py) never merges a space into a digit.
GPT-2/Qwen-style BPE does: ``"Score: 7"`` -> ``[..., ':', ' 7']``. Here a tiny byte-level BPE with
the merge ``Ġ + 7 -> Ġ7`` and a fake model whose logits are a known function of the input token
check that the probability is read for the right token at the right position (with left padding).
"""

from __future__ import annotations

import asyncio
import math
from types import SimpleNamespace
from typing import Any

import pytest

torch = pytest.importorskip("torch")
tokenizers = pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")

from judgelab.backends.hf import HFBackend
from judgelab.config.specs import HFBackendSpec, ModelSpec
from judgelab.errors import ConfigError
from judgelab.models.loading import LoadedModel

TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['content'] }}<|im_end|>{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>{% endif %}"
)


def _tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(alphabet)}
    merges = [("Ġ", "7"), ("Ġ", "8"), ("1", "0")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tk.decoder = decoders.ByteLevel()
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=tk)
    tok.add_special_tokens({"eos_token": "<|im_end|>", "pad_token": "<|im_end|>",
                            "additional_special_tokens": ["<|im_start|>"]})
    tok.chat_template = TEMPLATE
    return tok


class HashModel:
    """logits[b, t, v] = ((7 v + 13 x) mod 17) / 4 with x = input_ids[b, t]: a known function of
    (context token, candidate), so a read at the wrong position or token gives a different value."""

    def __init__(self, vocab: int) -> None:
        self.vocab = vocab
        self.calls: list[dict[str, Any]] = []
        self.training = True  # like a model in the middle of training: the backend must switch
        self.modes_seen: list[bool] = []

    def eval(self) -> HashModel:
        self.training = False
        return self

    def train(self, mode: bool = True) -> HashModel:
        self.training = mode
        return self

    def __call__(self, *, input_ids, attention_mask, position_ids, use_cache, logits_to_keep):  # type: ignore[no-untyped-def]
        self.modes_seen.append(self.training)
        self.calls.append({"input_ids": input_ids, "attention_mask": attention_mask,
                           "position_ids": position_ids, "logits_to_keep": logits_to_keep})
        v = torch.arange(self.vocab)
        logits = ((7 * v[None, None, :] + 13 * input_ids[:, :, None]) % 17).float() / 4.0
        return SimpleNamespace(logits=logits[:, -logits_to_keep:, :])


def _backend(batch_size: int = 8) -> tuple[HFBackend, Any, HashModel]:
    tok = _tokenizer()
    model = HashModel(len(tok))
    spec = HFBackendSpec(model=ModelSpec(name="fake/boundary"), batch_size=batch_size)
    loaded = LoadedModel(model=model, tokenizer=tok, name="fake/boundary", device="cpu",
                         dtype=torch.float32)
    return HFBackend.from_loaded(spec, loaded), tok, model


def _p_next(tok: Any, prev_token: str, want: str) -> float:
    """Hand-computed HashModel probability of token ``want`` right after token ``prev_token``."""
    x = tok.convert_tokens_to_ids(prev_token)
    w = tok.convert_tokens_to_ids(want)
    z = [math.exp(((7 * v + 13 * x) % 17) / 4.0) for v in range(len(tok))]
    return z[w] / sum(z)


def test_tokenizer_merges_space_into_digit() -> None:
    tok = _tokenizer()
    assert tok.convert_ids_to_tokens(tok.encode("Score: 7", add_special_tokens=False))[-1] == "Ġ7"
    assert tok.convert_ids_to_tokens(tok.encode("Score: ", add_special_tokens=False))[-1] == "Ġ"


def test_trailing_space_prefix_reads_merged_token_one_position_earlier() -> None:
    backend, tok, model = _backend()
    msgs = [{"role": "user", "content": "hi"}]
    (probs,) = asyncio.run(backend.next_token_probs([(msgs, "Score: ")], ["7", "8", "x"]))
    # "Score: 7" is [..., ':', 'Ġ7']: P('Ġ7') is read at ':' (one before the prompt's 'Ġ');
    # "x" does not merge: "Score: x" is [..., ':', 'Ġ', 'x'], read at 'Ġ'.
    assert probs["7"] == pytest.approx(_p_next(tok, ":", "Ġ7"), rel=1e-5)
    assert probs["8"] == pytest.approx(_p_next(tok, ":", "Ġ8"), rel=1e-5)
    assert probs["x"] == pytest.approx(_p_next(tok, "Ġ", "x"), rel=1e-5)
    assert model.calls[0]["logits_to_keep"] == 2


def test_prefix_without_space_means_exactly_that_text() -> None:
    backend, tok, _ = _backend()
    msgs = [{"role": "user", "content": "hi"}]
    (probs,) = asyncio.run(backend.next_token_probs([(msgs, "Score:")], ["7", "8"]))
    assert probs["7"] == pytest.approx(_p_next(tok, ":", "7"), rel=1e-5)
    assert probs["8"] == pytest.approx(_p_next(tok, ":", "8"), rel=1e-5)


def test_the_expected_values_discriminate_positions_and_tokens() -> None:
    """Guard for the tests above: a read one position off or of the unmerged token would differ."""
    tok = _tokenizer()
    right = _p_next(tok, ":", "Ġ7")
    for wrong in (_p_next(tok, "Ġ", "Ġ7"), _p_next(tok, ":", "7"), _p_next(tok, "Ġ", "7"),
                  _p_next(tok, ":", "Ġ8")):
        assert abs(wrong - right) > 1e-4


def test_left_padding_positions_with_mixed_lengths() -> None:
    backend, tok, model = _backend(batch_size=8)
    reqs = [
        ([{"role": "user", "content": "hi"}], "Score: "),
        ([{"role": "user", "content": "a much longer question here"}], "Score: "),
        ([{"role": "user", "content": "yo"}], "Score:"),
    ]
    out = asyncio.run(backend.next_token_probs(reqs, ["7"]))
    assert out[0]["7"] == pytest.approx(_p_next(tok, ":", "Ġ7"), rel=1e-5)
    assert out[1]["7"] == pytest.approx(_p_next(tok, ":", "Ġ7"), rel=1e-5)
    assert out[2]["7"] == pytest.approx(_p_next(tok, ":", "7"), rel=1e-5)
    call = model.calls[-1]
    mask = call["attention_mask"]
    assert mask.shape[0] == 3
    assert bool((mask[:, -1] == 1).all())  # left padded: every row ends at the last column
    assert bool((mask[:, 0] == 0).any())
    # position ids count real tokens only
    for row in range(3):
        real = int(mask[row].sum())
        assert call["position_ids"][row, -real:].tolist() == list(range(real))


def test_multi_token_and_duplicate_candidates_are_config_errors() -> None:
    backend, _, _ = _backend()
    msgs = [{"role": "user", "content": "hi"}]
    with pytest.raises(ConfigError, match="'79'"):
        asyncio.run(backend.next_token_probs([(msgs, "Score: ")], ["7", "79"]))
    with pytest.raises(ConfigError, match="duplicate"):
        asyncio.run(backend.next_token_probs([(msgs, "Score: ")], ["7", "7"]))
    with pytest.raises(ConfigError, match="at least one"):
        asyncio.run(backend.next_token_probs([(msgs, "Score: ")], []))
    # "10" merges into one token here, so it is a valid single-token candidate
    (probs,) = asyncio.run(backend.next_token_probs([(msgs, "Score: ")], ["10"]))
    assert 0.0 < probs["10"] < 1.0


def test_forward_runs_in_eval_mode_and_restores_training_flag() -> None:
    backend, _, model = _backend()
    msgs = [{"role": "user", "content": "hi"}]
    asyncio.run(backend.next_token_probs([(msgs, "Score: ")], ["7"]))
    assert model.modes_seen == [False]
    assert model.training is True


def test_reasoning_prefix_does_not_reopen_a_think_block_the_template_already_opened() -> None:
    """issue 11: a chat template that pre-opens ``<think>`` (Qwen3-thinking / R1 style) must not get a
    second ``<think>`` from the judge's reconstructed assistant prefix (judges/judge.py read-out)."""
    backend, tok, model = _backend()
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<think>", "</think>"]})
    model.vocab = len(tok)
    tok.chat_template = TEMPLATE.replace("<|im_start|>{% endif %}", "<|im_start|><think>\n{% endif %}")
    msgs = [{"role": "user", "content": "hi"}]
    prefix = "<think>\nshort and on topic\n</think>\n\nScore: "  # what Judge._read_distributions sends
    asyncio.run(backend.next_token_probs([(msgs, prefix)], ["7"]))
    text = tok.decode(model.calls[-1]["input_ids"][0].tolist())
    assert text.count("<think>") == 1, text
    assert text.endswith("<|im_start|><think>\nshort and on topic\n</think>\n\nScore: ")
    # a template that does not pre-open the block keeps the prefix's own <think>
    tok.chat_template = TEMPLATE
    asyncio.run(backend.next_token_probs([(msgs, prefix)], ["7"]))
    text = tok.decode(model.calls[-1]["input_ids"][0].tolist())
    assert text.count("<think>") == 1 and text.endswith("<|im_start|>" + prefix)
