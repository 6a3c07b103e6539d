"""Frozen-trunk judge training (L3): the bottom decoder layers run once per example, the top train.

Why: on 2 CPU cores a TRL step runs forward and backward through all 30 SmolLM2 layers and the LM
head over every position — ~23 s per 8 examples, ~80 examples in 5 minutes, and the judges stay
at α ≈ 0. Here the bottom ``trunk.frozen_layers`` layers (and the embeddings) are frozen: their
output is computed once per example under ``no_grad`` and cached (``judgelab.training.trunk_cache``);
each training step runs only the layers above them and the final norm, forward and backward, over
the cached states, and applies the LM head only where there is loss. An epoch then costs a fraction
of one TRL epoch, and a judge sees thousands of examples in the minutes TRL spends on a hundred.

How the model is split: the top pass is the model's own backbone forward (its rotary embeddings,
its causal/padding mask, its attention implementation) called on ``inputs_embeds`` = the cached
states with the backbone's layer list swapped for the top layers; the cache pass is the same
forward with the bottom layers and the final norm swapped for the identity. No model code is
re-implemented, so the split computes exactly what the full model computes. A self-check on one
example at start-up (full forward vs. cache + top, in fp32) refuses model families whose backbone
does anything else to ``inputs_embeds`` (e.g. Gemma's embedding scale).

Losses, by what the judge is read by:

- ``verdict`` (pointwise non-reasoning judges, read by their expected score): the input is exactly
  what ``Judge(readout: expected_only)`` feeds the model — the rendered prompt + ``Score: `` — as
  planned by ``HFBackend.readout_positions``; at that one position, cross-entropy of the gold score
  over the score tokens (``verdict_loss: score_tokens``, the distribution the read-out
  renormalises over) or over the vocabulary (``full_vocab``), plus ``score_regression_weight`` ×
  ((E[s] − s)/(max − min))² as in ``judgelab.training.score_loss``. Optionally the score tokens'
  head rows train too (``train_score_rows``; the saved head is then untied from the embeddings).
- ``completion`` (distill, and pairwise verdicts): next-token cross-entropy on every completion
  token (prompt + completion rendered by the chat template as TRL renders a prompt-completion
  row), the head applied at those positions only; ``decision_weight`` up-weights the decision
  tokens (PASS / FAIL and the verdict).

Training (``judgelab.training.trunk_train``): AdamW over the top layers (+ norm, + score rows),
the usual schedulers, gradient clipping, seeded epoch permutations, optional bf16 autocast;
``precision: auto`` on a CPU picks bf16 only where the CPU reports bf16 units (avx512_bf16 /
amx_bf16) and a probe on the first batch measures it faster. Checkpoints every ``save_steps``; a
rerun resumes from the newest and reuses the cache. The trained layers are the model's own
modules, so the final model is an ordinary HF checkpoint (``OUT/final``, with the tokenizer) that
every backend loads as before.

torch / transformers are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from judgelab.errors import ConfigError, DataError
from judgelab.training.config import SFTTrainSpec, TrunkSpec
from judgelab.training.trunk_cache import TrunkCache, tokens_key
from judgelab.types import ChatMessage

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

LossKind = Literal["verdict", "completion"]
DECISION_PATTERNS = (r"\bPASS\b", r"\bFAIL\b", r"(?<=Score: )\d+", r"(?<=\[\[)[AB](?=\]\])")


# ------------------------------------------------------------------------------------ inputs
@dataclass(frozen=True)
class TrunkInput:
    """One judge-training example as the frozen-trunk trainer sees it.

    ``messages`` + ``target``: the judge prompt and its assistant completion (``Score: 7``, or the
    gold trace + verdict); ``score``: the gold score of a pointwise verdict example.
    """

    messages: Sequence[ChatMessage]
    target: str
    score: int | None = None
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrunkExample:
    ids: list[int]
    key: str
    positions: list[int]  # hidden-state positions that carry loss
    targets: list[int]  # the token each of them predicts
    weights: list[float]
    score: float | None = None


@dataclass(frozen=True)
class VerdictReadout:
    """Where a pointwise judge's score distribution is read: the answer prefix and score range."""

    prefix: str
    score_min: int
    score_max: int

    @property
    def candidates(self) -> tuple[str, ...]:
        return tuple(str(x) for x in range(self.score_min, self.score_max + 1))


@dataclass
class TrunkState:
    """What a step callback sees: the step, training seconds so far, the in-memory model (eval
    mode during the callback) and a way to save the judge as an HF folder."""

    step: int
    epoch: float
    train_seconds: float
    loss: float
    model: Any
    save_model: Callable[[Path], Path]
    stop: bool = False  # a callback sets it to end training after this step


# ------------------------------------------------------------------------------------ the split
class SplitModel:
    """A causal LM cut after ``n_frozen`` decoder layers (see the module docstring)."""

    def __init__(self, lm: Any, n_frozen: int) -> None:
        import torch

        self.lm = lm
        self.base = getattr(lm, lm.base_model_prefix, None)
        layers = getattr(self.base, "layers", None)
        if layers is None or not hasattr(self.base, "norm"):
            raise ConfigError(
                f"trunk: cannot find the decoder layers and final norm of {type(lm).__name__}",
                "use the TRL path (drop recipe.train.trunk) for this model",
            )
        n = len(layers)
        if not 1 <= n_frozen < n:
            raise ConfigError(f"trunk.frozen_layers={n_frozen} but the model has {n} decoder layers",
                              f"use 1..{n - 1}")
        self.n_frozen = n_frozen
        self.all_layers = layers
        self.bottom = torch.nn.ModuleList(list(layers)[:n_frozen])
        self.top = torch.nn.ModuleList(list(layers)[n_frozen:])
        self.norm = self.base.norm
        self.head = lm.get_output_embeddings()
        for p in lm.parameters():
            p.requires_grad_(False)
        for p in [*self.top.parameters(), *self.norm.parameters()]:
            p.requires_grad_(True)

    def frozen_named_parameters(self) -> list[tuple[str, Any]]:
        names = {id(p) for p in self.top.parameters()} | {id(p) for p in self.norm.parameters()}
        return [(n, p) for n, p in self.lm.named_parameters() if id(p) not in names
                and (n.startswith(f"{self.lm.base_model_prefix}.embed") or ".layers." in n)]

    @contextlib.contextmanager
    def _swapped(self, layers: Any, norm: Any) -> Iterator[None]:
        base = self.base
        base.layers, base.norm = layers, norm
        try:
            yield
        finally:
            base.layers, base.norm = self.all_layers, self.norm

    def trunk(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Hidden states after the frozen layers (no final norm), no grad."""
        import torch

        with torch.no_grad(), self._swapped(self.bottom, torch.nn.Identity()):
            return self.base(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state

    def upper(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The top layers + final norm over cached states (with grad)."""
        with self._swapped(self.top, self.norm):
            return self.base(inputs_embeds=states, attention_mask=mask, use_cache=False).last_hidden_state

    def self_check(self, ids: list[int]) -> float:
        """Max |full forward − top(trunk)| over the last hidden state of one example (fp32)."""
        import torch

        x = torch.tensor([ids])
        m = torch.ones_like(x)
        with torch.no_grad():
            full = self.base(input_ids=x, attention_mask=m, use_cache=False).last_hidden_state
            split = self.upper(self.trunk(x, m), m)
        return float((full - split).abs().max())


# ------------------------------------------------------------------------------------ examples
def build_examples(
    inputs: Sequence[TrunkInput], tokenizer: Any, model_name: str, loss: LossKind,
    readout: VerdictReadout | None, decision_weight: float, max_length: int,
) -> tuple[list[TrunkExample], int]:
    """Token ids + loss positions for each input; returns (examples, dropped as too long)."""
    if loss == "verdict":
        if readout is None:
            raise ConfigError("verdict loss needs the judge's score read-out")
        return _verdict_examples(inputs, tokenizer, model_name, readout, max_length)
    return _completion_examples(inputs, tokenizer, decision_weight, max_length)


def _verdict_examples(inputs: Sequence[TrunkInput], tokenizer: Any, model_name: str,
                      readout: VerdictReadout, max_length: int) -> tuple[list[TrunkExample], int]:
    from judgelab.backends.hf import HFBackend
    from judgelab.config.specs import HFBackendSpec, ModelSpec
    from judgelab.models.loading import LoadedModel

    out: list[TrunkExample] = []
    dropped = 0
    backends: dict[str, HFBackend] = {}
    for i, x in enumerate(inputs):
        if x.score is None or not readout.score_min <= x.score <= readout.score_max:
            raise DataError(f"verdict example {i}: gold score {x.score!r} outside "
                            f"{readout.score_min}..{readout.score_max}")
        think = x.chat_template_kwargs.get("enable_thinking")
        key = json.dumps(x.chat_template_kwargs, sort_keys=True)
        if key not in backends:  # the judge's own prompt rendering and read-out plan
            spec = HFBackendSpec(model=ModelSpec(name=model_name), enable_thinking=think)
            backends[key] = HFBackend.from_loaded(spec, LoadedModel(None, tokenizer, model_name, "cpu", None))  # type: ignore[arg-type]
        ids, plan = backends[key].readout_positions(x.messages, readout.prefix, readout.candidates)
        if len({pos for pos, _ in plan}) != 1:
            raise ConfigError(
                f"the score tokens after {readout.prefix!r} are read at different positions for this "
                "tokenizer", "use the TRL path (drop recipe.train.trunk) for this model",
            )
        if len(ids) > max_length:
            dropped += 1
            continue
        pos = plan[0][0]
        gold = plan[x.score - readout.score_min][1]
        out.append(TrunkExample(ids=ids, key=tokens_key(ids), positions=[pos], targets=[gold], weights=[1.0],
                            score=float(x.score)))
    return out, dropped


def _completion_examples(inputs: Sequence[TrunkInput], tokenizer: Any, decision_weight: float,
                         max_length: int) -> tuple[list[TrunkExample], int]:
    patterns = [re.compile(p) for p in DECISION_PATTERNS]
    out: list[TrunkExample] = []
    dropped = 0
    for i, x in enumerate(inputs):
        msgs = [dict(m) for m in x.messages]
        prompt = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False,
                                               **x.chat_template_kwargs)
        full = tokenizer.apply_chat_template([*msgs, {"role": "assistant", "content": x.target}],
                                             tokenize=False, **x.chat_template_kwargs)
        if not full.startswith(prompt):
            raise DataError(f"completion example {i}: the chat template renders the prompt differently "
                            "with and without the completion", "use the TRL path for this model")
        enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
        ids: list[int] = enc["input_ids"]
        n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        if ids[:n_prompt] != tokenizer(prompt, add_special_tokens=False)["input_ids"]:
            raise DataError(f"completion example {i}: prompt tokens change when the completion follows",
                            "use the TRL path for this model")
        if len(ids) > max_length:
            dropped += 1
            continue
        start = len(prompt)
        spans = [(start + m.start(), start + m.end()) for p in patterns for m in p.finditer(x.target)]
        offsets = enc["offset_mapping"]
        positions, targets, weights = [], [], []
        for t in range(n_prompt, len(ids)):
            a, b = offsets[t]
            decisive = any(a < e and s < b for s, e in spans)
            positions.append(t - 1)
            targets.append(ids[t])
            weights.append(decision_weight if decisive else 1.0)
        out.append(TrunkExample(ids=ids, key=tokens_key(ids), positions=positions, targets=targets, weights=weights))
    return out, dropped


# ------------------------------------------------------------------------------------ batches
def _pad(examples: Sequence[TrunkExample], cache: TrunkCache, device: str) -> tuple[Any, Any]:
    import torch

    states = [cache.get(ex.key) for ex in examples]
    t = max(s.shape[0] for s in states)
    h = torch.zeros(len(states), t, cache.hidden)
    mask = torch.zeros(len(states), t, dtype=torch.long)
    for i, s in enumerate(states):
        h[i, : s.shape[0]] = s
        mask[i, : s.shape[0]] = 1
    return h.to(device), mask.to(device)


@dataclass
class LossParts:
    loss: Any
    ce: float
    mse: float | None = None


class TrunkObjective:
    """The training loss over a batch of examples, given the top layers' output."""

    def __init__(self, split: SplitModel, loss: LossKind, spec: SFTTrainSpec, trunk: TrunkSpec,
                 readout: VerdictReadout | None, score_ids: list[int] | None) -> None:
        import torch

        self.split, self.kind, self.trunk = split, loss, trunk
        self.reg_weight = spec.score_regression_weight
        self.readout = readout
        self.score_ids = score_ids
        self.score_rows: torch.nn.Parameter | None = None
        if loss == "verdict" and trunk.train_score_rows:
            assert score_ids is not None
            self._untie_head()
            w = split.head.weight.detach()[torch.tensor(score_ids)].clone()
            self.score_rows = torch.nn.Parameter(w)
        if getattr(split.head, "bias", None) is not None:
            raise ConfigError("trunk: models whose LM head has a bias are not supported",
                              "use the TRL path (drop recipe.train.trunk)")
        from judgelab.training.score_loss import check_plain_logits

        check_plain_logits(split.lm.config)

    def _untie_head(self) -> None:
        """Give the LM head its own (frozen) copy of a tied embedding matrix, so the trained score
        rows change the head only; the model is saved untied."""
        import torch

        lm, head = self.split.lm, self.split.head
        emb = lm.get_input_embeddings()
        if head.weight is emb.weight or head.weight.data_ptr() == emb.weight.data_ptr():
            head.weight = torch.nn.Parameter(emb.weight.detach().clone(), requires_grad=False)
        lm.config.tie_word_embeddings = False
        if hasattr(lm.config, "get_text_config"):
            lm.config.get_text_config().tie_word_embeddings = False

    def sync(self) -> None:
        """Write the trained score rows into the model's head (after each optimizer step)."""
        import torch

        if self.score_rows is not None:
            with torch.no_grad():
                self.split.head.weight[torch.tensor(self.score_ids)] = self.score_rows.detach()

    def parameters(self) -> list[Any]:
        return [self.score_rows] if self.score_rows is not None else []

    def __call__(self, hidden: Any, examples: Sequence[TrunkExample]) -> LossParts:
        import torch
        import torch.nn.functional as F

        rows = torch.tensor([b for b, ex in enumerate(examples) for _ in ex.positions])
        pos = torch.tensor([p for ex in examples for p in ex.positions])
        h = hidden[rows, pos].float()
        if self.kind == "completion":
            logits = h @ self.split.head.weight.float().T
            tgt = torch.tensor([t for ex in examples for t in ex.targets])
            w = torch.tensor([x for ex in examples for x in ex.weights])
            ce = F.cross_entropy(logits, tgt, reduction="none")
            loss = (ce * w).sum() / w.sum().clamp(min=1e-8)
            return LossParts(loss, float(ce.mean()))
        assert self.readout is not None and self.score_ids is not None
        ids = torch.tensor(self.score_ids)
        score_w = self.score_rows if self.score_rows is not None else self.split.head.weight[ids]
        s_logits = h @ score_w.float().T
        gold = torch.tensor([ex.score for ex in examples], dtype=torch.float32)
        gold_idx = (gold - self.readout.score_min).long()
        if self.trunk.verdict_loss == "score_tokens":
            ce = F.cross_entropy(s_logits, gold_idx)
        else:
            full = h @ self.split.head.weight.float().T
            if self.score_rows is not None:
                full = full.index_copy(1, ids, s_logits)
            ce = F.cross_entropy(full, ids[gold_idx])
        p = torch.softmax(s_logits, dim=-1)
        values = torch.arange(self.readout.score_min, self.readout.score_max + 1, dtype=torch.float32)
        err = (p * values).sum(-1) - gold
        loss = ce
        span = self.readout.score_max - self.readout.score_min
        if self.reg_weight > 0:
            loss = loss + self.reg_weight * ((err / span) ** 2).mean()
        return LossParts(loss, float(ce.detach()), float((err.detach() ** 2).mean()))



def score_token_ids(tokenizer: Any, model_name: str, first: TrunkInput, readout: VerdictReadout) -> list[int]:
    """The token id of each score as the read-out plans it (score_min first)."""
    from judgelab.backends.hf import HFBackend
    from judgelab.config.specs import HFBackendSpec, ModelSpec
    from judgelab.models.loading import LoadedModel

    spec = HFBackendSpec(model=ModelSpec(name=model_name), enable_thinking=first.chat_template_kwargs.get("enable_thinking"))
    backend = HFBackend.from_loaded(spec, LoadedModel(None, tokenizer, model_name, "cpu", None))  # type: ignore[arg-type]
    _, plan = backend.readout_positions(first.messages, readout.prefix, readout.candidates)
    return [tid for _, tid in plan]


def loss_on_batch(split: SplitModel, objective: TrunkObjective, cache: TrunkCache, examples: Sequence[TrunkExample],
                  device: str = "cpu") -> LossParts:
    """The training loss of ``examples`` from their cached trunk states (what one step optimises)."""
    h, m = _pad(examples, cache, device)
    return objective(split.upper(h, m), examples)


__all__ = [
    "DECISION_PATTERNS",
    "LossKind",
    "LossParts",
    "SplitModel",
    "TrunkExample",
    "TrunkInput",
    "TrunkObjective",
    "TrunkState",
    "VerdictReadout",
    "build_examples",
    "loss_on_batch",
    "score_token_ids",
]
