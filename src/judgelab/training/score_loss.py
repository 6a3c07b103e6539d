"""Regression-aware SFT for pointwise judges (L3): train the expected score, not just the token.

Plain SFT (NLL on ``Score: 7``) teaches the *most likely* score token. A judge used as a reward is
read by its *expected* score ``E[s] = Σ x·p(x)`` over the valid score tokens, and at small scale
NLL training alone leaves that expectation nearly constant: the judge learns the label marginal and
its per-item expectations vary by a few hundredths while the gold varies by whole points
(measured on SmolLM2: Pearson r ≈ 0.5 with the gold but Krippendorff's α ≈ 0).

Regression-aware fine-tuning (RAFT; Lukasik et al., "Better autoregressive regression with LLMs
via regression-aware fine-tuning", ICLR 2025) adds the squared error of that read-out at the
verdict token:

    loss = NLL  +  w · mean_rows ((E[s] − s) / (max − min))²

with ``E[s]`` computed exactly as the judges read it (softmax over the valid score tokens only,
renormalised), at the position where the teacher-forced completion writes the gold score — after
``Score:`` at the end of the target (for ``distill``, after the gold trace). ``w = 0`` is plain
SFT (the paper's recipe).

How it plugs into TRL without a second forward pass: ``ScoreRegressionSFTTrainer`` (built by
``score_regression_trainer_class``) keeps ``SFTTrainer.compute_loss`` — the fused LM head that
never materialises the vocabulary logits — and captures the backbone's last hidden state with a
forward hook; the score logits are ``h · W[score_ids]ᵀ`` for the ~10 score tokens only. Models
that scale or soft-cap their logits are refused (the captured state would not give their logits).

torch / trl are imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from judgelab.errors import ConfigError

VERDICT_PREFIX = "Score:"


@dataclass(frozen=True)
class ScoreTokens:
    """The token id that writes each score right after the verdict prefix, and the score range."""

    ids: tuple[int, ...]  # ids[i] writes score score_min + i
    score_min: int
    score_max: int
    prefix: str = VERDICT_PREFIX

    @property
    def span(self) -> int:
        return self.score_max - self.score_min


def score_tokens(tokenizer: Any, score_min: int, score_max: int, prefix: str = VERDICT_PREFIX) -> ScoreTokens:
    """Score token ids as they follow ``"Score: "`` in the training targets; ``ConfigError`` if a
    score is not one token there (multi-digit ranges) or two scores share a token."""
    if not 0 <= score_min < score_max <= 9:
        raise ConfigError(
            f"score regression needs a single-digit score range, got {score_min}–{score_max}",
            "use a 0–9 (or narrower) scale, or set score_regression_weight: 0",
        )
    ids: list[int] = []
    heads: set[tuple[int, ...]] = set()
    for x in range(score_min, score_max + 1):
        enc = tokenizer(f"{prefix} {x}", add_special_tokens=False)["input_ids"]
        last = enc[-1]
        if tokenizer.decode([last]).strip() != str(x):
            raise ConfigError(
                f"the score {x} is not one token after {prefix!r} for this tokenizer "
                f"({tokenizer.convert_ids_to_tokens(enc)})",
                "set score_regression_weight: 0 for this model",
            )
        ids.append(last)
        heads.add(tuple(enc[:-1]))
    if len(set(ids)) != len(ids) or len(heads) != 1:
        raise ConfigError(
            f"score tokens after {prefix!r} are not distinct single tokens for this tokenizer",
            "set score_regression_weight: 0 for this model",
        )
    return ScoreTokens(ids=tuple(ids), score_min=score_min, score_max=score_max, prefix=prefix)


def verdict_positions(labels: Any, tokens: ScoreTokens, tokenizer: Any) -> tuple[Any, Any, Any]:
    """Per row, the position (in the *shifted* sequence: hidden state index) that predicts the
    gold score token, and that score. Rows without a verdict (truncated, or no ``Score:`` before
    the last score token) are left out. Returns (row index, position, score) 1-D tensors."""
    import torch

    id_to_value = {tid: tokens.score_min + i for i, tid in enumerate(tokens.ids)}
    rows: list[int] = []
    pos: list[int] = []
    vals: list[float] = []
    lab = labels.tolist()
    for b, row in enumerate(lab):
        # the verdict is the end of the target: the last score token among the completion labels
        for t in range(len(row) - 1, 0, -1):
            if row[t] in id_to_value:
                before = [x for x in row[max(0, t - 4):t] if x != -100]
                if tokenizer.decode(before).rstrip().endswith(tokens.prefix):
                    rows.append(b)
                    pos.append(t - 1)  # the hidden state at t-1 predicts the label at t
                    vals.append(float(id_to_value[row[t]]))
                break
    device = labels.device
    return (
        torch.tensor(rows, dtype=torch.long, device=device),
        torch.tensor(pos, dtype=torch.long, device=device),
        torch.tensor(vals, dtype=torch.float32, device=device),
    )


def expected_score_at(hidden: Any, lm_head: Any, rows: Any, pos: Any, tokens: ScoreTokens) -> Any:
    """E[s] over the valid score tokens from the hidden states at (rows, pos)."""
    import torch

    h = hidden[rows, pos]  # (n, d)
    ids = torch.tensor(tokens.ids, dtype=torch.long, device=lm_head.weight.device)
    w = lm_head.weight[ids]  # (k, d)
    logits = h.to(w.dtype) @ w.T
    if getattr(lm_head, "bias", None) is not None:
        logits = logits + lm_head.bias[ids]
    p = torch.softmax(logits.float(), dim=-1)
    values = torch.arange(tokens.score_min, tokens.score_max + 1, device=p.device, dtype=p.dtype)
    return (p * values).sum(-1)


def check_plain_logits(config: Any) -> None:
    """Refuse models whose logits are not ``h · Wᵀ`` (scaled or soft-capped heads)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for name in ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier",
                 "logits_scaling"):
        value = getattr(text, name, None)
        if value not in (None, 1, 1.0):
            raise ConfigError(
                f"score regression does not support models with {name}={value}",
                "set score_regression_weight: 0 for this model",
            )


def score_regression_trainer_class() -> type:
    """``SFTTrainer`` with the regression term added to its loss (see the module docstring)."""
    from trl import SFTTrainer

    class ScoreRegressionSFTTrainer(SFTTrainer):
        """SFTTrainer + w · ((E[s] − s)/(max − min))² at the verdict token; logs ``score_mse``
        (squared error of E[s] in score units on the training batch) and ``score_rows``."""

        def __init__(self, *args: Any, score_tokens: ScoreTokens, score_weight: float, **kwargs: Any):
            super().__init__(*args, **kwargs)
            if score_weight <= 0:
                raise ConfigError("ScoreRegressionSFTTrainer needs score_weight > 0")
            self._score_tokens = score_tokens
            self._score_weight = float(score_weight)
            causal_lm = self._causal_lm()
            check_plain_logits(causal_lm.config)

        def _causal_lm(self) -> Any:
            model = self.accelerator.unwrap_model(self.model)
            return model.get_base_model() if hasattr(model, "get_base_model") else model

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # type: ignore[override]
            causal_lm = self._causal_lm()
            captured: list[Any] = []

            def hook(_module: Any, _args: Any, output: Any) -> None:
                if not captured:  # the training forward; later no-grad passes are for metrics
                    captured.append(output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0])

            handle = causal_lm.base_model.register_forward_hook(hook)
            try:
                result = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                              num_items_in_batch=num_items_in_batch)
            finally:
                handle.remove()
            loss, outputs = (result if return_outputs else (result, None))
            rows, pos, gold = verdict_positions(inputs["labels"], self._score_tokens, self.processing_class)
            mode = "train" if self.model.training else "eval"
            if len(rows) and captured:
                expected = expected_score_at(captured[0], causal_lm.get_output_embeddings(), rows, pos,
                                             self._score_tokens)
                err = expected - gold
                reg = ((err / self._score_tokens.span) ** 2).mean()
                # like TRL's MoE aux loss: with num_items_in_batch the Trainer leaves gradient
                # accumulation to the loss, so average this per-micro-batch mean over the steps
                steps = self.current_gradient_accumulation_steps if num_items_in_batch is not None else 1
                loss = loss + self._score_weight * reg.to(loss.dtype) / steps
                self._metrics[mode]["score_mse"].append(float((err.detach() ** 2).mean()))
            self._metrics[mode]["score_rows"].append(float(len(rows)))
            return (loss, outputs) if return_outputs else loss

    return ScoreRegressionSFTTrainer


__all__ = [
    "VERDICT_PREFIX",
    "ScoreTokens",
    "check_plain_logits",
    "expected_score_at",
    "score_regression_trainer_class",
    "score_tokens",
    "verdict_positions",
]
