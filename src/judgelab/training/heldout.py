"""Held-out generation and KL to the initial policy, for gold tracking and ``eval-policy`` (L3).

Both the in-training tracking callback (``judgelab.training.callbacks``) and the offline
re-scoring of checkpoints (``judgelab.evaluation.policy_eval``) sample the held-out prompts with
these functions, so a checkpoint re-scored later is sampled exactly like the tracking did.

Generation (``generate_heldout``)
  Prompts are rendered with the tokenizer's chat template (``add_generation_prompt=True`` plus the
  policy's ``chat_template_kwargs``, as TRL renders rollouts), cut into fixed batches in input
  order, left-padded, and sampled with ``model.generate`` under a neutral generation config (only
  the ``HeldOutSampling`` fields apply; the model's own ``generation_config.json`` defaults such as
  repetition penalty do not). Batch ``b`` is sampled under ``torch.manual_seed(seed + b)`` inside
  ``torch.random.fork_rng``, so every tracking step draws with the same seeds and the training
  RNG stream is left untouched. (Samples depend on the batch composition, which is fixed by the
  prompt order and ``batch_size``.)

KL estimator (``policy_kl``)
  At every completion token of the held-out samples (the eos token included when the sample
  stopped; padding excluded) we take the *exact* token-level KL between the full next-token
  distributions of the current policy π and the initial policy π₀ at that position::

      KL_t = Σ_v π(v | x, y_<t) · (log π(v | x, y_<t) − log π₀(v | x, y_<t))

  ``per_token`` is the mean of KL_t over all those tokens; ``per_sequence`` is Σ_t KL_t per
  sample, averaged over the samples (nats per response: the ``kl/policy_init`` of
  ``tracking.jsonl``, whose square root the report puts on the x-axis).

  Both distributions are the raw softmax of the logits (temperature 1, no top-k/top-p), i.e. the
  policies themselves, not their tempered sampling distributions. The contexts (x, y_<t) come
  from the held-out samples, which are drawn with the tracking sampling settings (temperature
  0.7 by default), so this is "KL along the tracked samples": exact at each visited position
  (no sampling noise over the vocabulary, never negative), with the visited positions as the only
  Monte-Carlo part. With samples drawn from π itself (temperature 1, no truncation)
  ``per_sequence`` would be an unbiased estimate of the sequence-level KL(π‖π₀) (the chain rule of
  KL, Rao-Blackwellised per position); with tempered samples it is KL along a tempered path and
  reads as a divergence indicator, not the exact sequence KL.

  The initial policy is either a frozen copy loaded from the initial weights (full fine-tuning)
  or, for a peft/LoRA model, the same model with its adapters disabled (no second copy).

torch / transformers / peft are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from judgelab.config.specs import StrictModel
from judgelab.errors import BackendError

logger = logging.getLogger(__name__)


class HeldOutSampling(StrictModel):
    """How the held-out prompts are sampled for tracking and ``eval-policy``."""

    max_new_tokens: int | None = Field(
        None, ge=1, description="None = the policy's rollout length (train.max_completion_length)"
    )
    temperature: float = Field(0.7, ge=0.0, description="0 = greedy")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0, description="0 = off")
    seed: int = 0
    batch_size: int = Field(16, ge=1, description="prompts per generate call")
    kl_batch_size: int = Field(4, ge=1, description="samples per KL forward pass (full-vocab logits)")


@dataclass(frozen=True)
class HeldOutPrompt:
    """One held-out prompt: its id and the chat messages the policy sees."""

    prompt_id: str
    messages: tuple[Mapping[str, str], ...]


@dataclass(frozen=True)
class GeneratedSample:
    """One sampled completion with its token ids (for the KL pass)."""

    prompt_id: str
    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]  # sampled tokens up to and including eos (when it stopped)
    text: str  # decoded completion, special tokens removed
    n_tokens: int  # completion length in tokens, eos excluded
    finish_reason: Literal["stop", "length"]


@dataclass(frozen=True)
class KLStats:
    """``kl/policy_init`` (mean per token) and the mean per-sample sum, over ``n_tokens`` tokens."""

    per_token: float
    per_sequence: float
    n_tokens: int


# ------------------------------------------------------------------------------------ generation
def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    ids: set[int] = set()
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(gen_eos, int):
        ids.add(gen_eos)
    elif gen_eos:
        ids.update(int(x) for x in gen_eos)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    if not ids:
        raise BackendError("the policy's tokenizer has no eos token; cannot tell where a sample ends")
    return sorted(ids)


def encode_prompts(
    tokenizer: Any, prompts: Sequence[HeldOutPrompt], chat_template_kwargs: Mapping[str, Any]
) -> list[list[int]]:
    """Token ids of each prompt rendered with the chat template (generation prompt added)."""
    out = []
    for p in prompts:
        text = tokenizer.apply_chat_template(
            [dict(m) for m in p.messages], add_generation_prompt=True, tokenize=False,
            **dict(chat_template_kwargs),
        )
        out.append(tokenizer.encode(text, add_special_tokens=False))
    return out


@contextlib.contextmanager
def _eval_mode(model: Any) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()


def _model_device(model: Any) -> Any:
    return next(model.parameters()).device


def generation_config(sampling: HeldOutSampling, eos: list[int], pad: int) -> Any:
    """The ``GenerationConfig`` for ``sampling``, every sampling field set explicitly.

    transformers fills fields left ``None`` with its global defaults (``top_k=50``!), so "off"
    is written as the neutral value (``top_k=0``, ``top_p=1.0``), never as ``None``.
    """
    from transformers import GenerationConfig

    greedy = sampling.temperature == 0.0
    return GenerationConfig(
        max_new_tokens=sampling.max_new_tokens,
        do_sample=not greedy,
        temperature=1.0 if greedy else sampling.temperature,
        top_p=1.0 if greedy else sampling.top_p,
        top_k=0 if greedy else sampling.top_k,
        min_p=None,
        typical_p=1.0,
        repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        num_beams=1,
        eos_token_id=eos,
        pad_token_id=pad,
        use_cache=True,
    )


def generate_heldout(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[HeldOutPrompt],
    sampling: HeldOutSampling,
    *,
    chat_template_kwargs: Mapping[str, Any] | None = None,
) -> list[GeneratedSample]:
    """Sample one completion per prompt (see the module docstring for seeding and padding)."""
    import torch
    from transformers import GenerationConfig

    if not prompts:
        return []
    if sampling.max_new_tokens is None:
        raise ValueError("HeldOutSampling.max_new_tokens is unresolved (None); resolve it first")
    encoded = encode_prompts(tokenizer, prompts, chat_template_kwargs or {})
    eos = _eos_ids(model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    device = _model_device(model)
    config = generation_config(sampling, eos, pad)
    out: list[GeneratedSample] = []
    fork_devices = [device] if device.type == "cuda" else []
    saved = model.generation_config
    # generate() fills unset fields from model.generation_config: swap in a neutral one.
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=pad,
                                               bos_token_id=getattr(saved, "bos_token_id", None))
    try:
        with _eval_mode(model), torch.no_grad():
            for b, start in enumerate(range(0, len(prompts), sampling.batch_size)):
                rows = encoded[start:start + sampling.batch_size]
                width = max(len(r) for r in rows)
                ids = torch.full((len(rows), width), pad, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for i, r in enumerate(rows):
                    ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
                    mask[i, width - len(r):] = 1
                with torch.random.fork_rng(devices=fork_devices):
                    torch.manual_seed(sampling.seed + b)
                    if device.type == "cuda":
                        torch.cuda.manual_seed_all(sampling.seed + b)
                    seqs = model.generate(
                        input_ids=ids.to(device), attention_mask=mask.to(device),
                        generation_config=config,
                    )
                new = seqs[:, width:].tolist()
                for i, gen in enumerate(new):
                    out.append(_finish(prompts[start + i].prompt_id, rows[i], gen, set(eos), tokenizer))
    finally:
        model.generation_config = saved
    return out


def _finish(prompt_id: str, prompt_ids: list[int], gen: list[int], eos: set[int], tokenizer: Any) -> GeneratedSample:
    n, finish = len(gen), "length"
    for i, t in enumerate(gen):
        if t in eos:
            n, finish = i + 1, "stop"
            break
    completion = gen[:n]
    content = completion[:-1] if finish == "stop" else completion
    text = tokenizer.decode(content, skip_special_tokens=True)
    return GeneratedSample(
        prompt_id=prompt_id,
        prompt_ids=tuple(prompt_ids),
        completion_ids=tuple(completion),
        text=text,
        n_tokens=len(content),
        finish_reason=finish,  # type: ignore[arg-type]
    )


# ------------------------------------------------------------------------------------ KL
def token_kl(policy_logits: Any, reference_logits: Any) -> Any:
    """Σ_v p(v)(log p(v) − log q(v)) per position, p = softmax(policy), q = softmax(reference)."""
    import torch

    logp = torch.log_softmax(policy_logits.float(), dim=-1)
    logq = torch.log_softmax(reference_logits.float(), dim=-1)
    return (logp.exp() * (logp - logq)).sum(dim=-1)


def _completion_logits(model: Any, batch: Sequence[GeneratedSample], device: Any) -> list[Any]:
    """Logits predicting each completion token, one ``[len(completion), vocab]`` tensor per sample."""
    import torch

    rows = [list(s.prompt_ids) + list(s.completion_ids) for s in batch]
    width = max(len(r) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):  # right padding: positions need no correction
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False).logits
    out = []
    for i, s in enumerate(batch):
        p, c = len(s.prompt_ids), len(s.completion_ids)
        out.append(logits[i, p - 1 : p - 1 + c])
    return out


def policy_kl(
    model: Any, reference: ReferencePolicy, samples: Sequence[GeneratedSample], *, batch_size: int = 4
) -> KLStats:
    """``kl/policy_init`` over ``samples`` (see the module docstring for the estimator)."""
    import torch

    total, n_tok = 0.0, 0
    per_seq: list[float] = []
    scored = [s for s in samples if s.completion_ids]
    device = _model_device(model)
    with _eval_mode(model), torch.no_grad():
        for start in range(0, len(scored), batch_size):
            batch = scored[start:start + batch_size]
            cur = _completion_logits(model, batch, device)
            with reference.active(model) as ref_model:
                ref = _completion_logits(ref_model, batch, _model_device(ref_model))
            for a, b in zip(cur, ref):
                kl = token_kl(a, b.to(a.device))
                s = float(kl.sum())
                total += s
                n_tok += int(kl.numel())
                per_seq.append(s)
    if n_tok == 0:
        return KLStats(per_token=math.nan, per_sequence=math.nan, n_tokens=0)
    return KLStats(per_token=total / n_tok, per_sequence=sum(per_seq) / len(per_seq), n_tokens=n_tok)


class ReferencePolicy:
    """The initial policy for KL: adapters disabled on a peft model, else a frozen loaded copy.

    ``initial_model`` (alias, folder or hub id) is loaded lazily, once, on the policy's device and
    dtype, only when the policy is not a peft model.
    """

    def __init__(
        self, initial_model: str | None, *, revision: str | None = None, trust_remote_code: bool = False
    ) -> None:
        self.initial_model = initial_model
        self.revision = revision
        self.trust_remote_code = trust_remote_code
        self._frozen: Any = None

    @staticmethod
    def _is_peft(model: Any) -> bool:
        return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")

    @contextlib.contextmanager
    def active(self, model: Any) -> Iterator[Any]:
        """Yield the model to use as π₀ for ``model``."""
        if self._is_peft(model):
            with model.disable_adapter():
                yield model
            return
        yield self._load_frozen(model)

    def _load_frozen(self, like: Any) -> Any:
        if self._frozen is None:
            if self.initial_model is None:
                raise BackendError(
                    "KL to the initial policy needs the initial weights, and none were given",
                    "pass the initial model, or turn the KL off (tracking.kl: false)",
                )
            from judgelab.training.model_setup import load_model_for_training

            ref, _, _ = load_model_for_training(
                self.initial_model, revision=self.revision, trust_remote_code=self.trust_remote_code
            )
            p = next(like.parameters())
            ref.to(device=p.device, dtype=p.dtype)
            ref.eval()
            for q in ref.parameters():
                q.requires_grad_(False)
            self._frozen = ref
            logger.info("KL reference: frozen copy of %s", self.initial_model)
        return self._frozen

    def release(self) -> None:
        self._frozen = None


# ------------------------------------------------------------------------------------ checkpoints
def load_policy_checkpoint(
    path: str | Path,
    *,
    initial_model: str,
    revision: str | None = None,
    trust_remote_code: bool = False,
    device: str = "auto",
) -> tuple[Any, Any]:
    """Load a policy checkpoint (a full HF folder, or a peft adapter on ``initial_model``).

    ``path`` may also be ``initial_model`` itself (step 0). Returns (model in eval mode, tokenizer).
    """
    import torch

    from judgelab.training.model_setup import load_model_for_training

    dev = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    p = Path(str(path))
    if p.is_dir() and (p / "adapter_config.json").exists():
        from peft import PeftModel

        base, tok, _ = load_model_for_training(
            initial_model, revision=revision, trust_remote_code=trust_remote_code
        )
        model = PeftModel.from_pretrained(base, str(p))
        if (p / "tokenizer_config.json").exists():
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
            if tok.pad_token_id is None:
                tok.pad_token = tok.eos_token
    else:
        same = str(path) == initial_model
        model, tok, _ = load_model_for_training(
            str(path), revision=revision if same else None, trust_remote_code=trust_remote_code
        )
    if dev.startswith("cuda") and torch.cuda.is_bf16_supported():
        model.to(dtype=torch.bfloat16)
    model.to(dev)
    model.eval()
    return model, tok


__all__ = [
    "GeneratedSample",
    "HeldOutPrompt",
    "HeldOutSampling",
    "KLStats",
    "ReferencePolicy",
    "encode_prompts",
    "generate_heldout",
    "generation_config",
    "load_policy_checkpoint",
    "policy_kl",
    "token_kl",
]
