"""GPU (CUDA) check and throughput of judgelab's own training and hf-backend paths, with raw baselines.

    python benchmarks/bench_gpu.py                          # 135m and 1.7b, every part
    python benchmarks/bench_gpu.py --sizes 135m --parts backend --json out.json
    python benchmarks/bench_gpu.py --smoke-cpu              # plumbing check on CPU, 2-layer model

Without CUDA it prints why and exits 0 (``make bench`` runs every ``bench_*.py``); it is not a test.

Models are RANDOMLY INITIALISED from a config (seed 0) with SmolLM2's tokenizer and chat template,
so nothing is downloaded: the numbers are throughput and memory only, never quality.
``135m`` = SmolLM2-135M's Llama shape (30 layers, d 576), ``1.7b`` = SmolLM2-1.7B's (24 layers,
d 2048). The tokenizer comes from ``--tokenizer DIR`` (default: the prepared
``smollm2-135m-instruct`` alias folder).

Parts (each timed through judgelab's public code path, one row per measurement):

- ``sft``: ``judgelab.training.sft.train_sft`` with ``SFTTrainSpec()``'s default ``precision: auto``
  (the check: auto must pick bf16 on a bf16 GPU; the run records what the trainer got). Steps/s
  and tokens/s over the steps after the first two, peak ``torch.cuda.max_memory_allocated``.
- ``grpo``: ``judgelab.stages.train_policy.run_train_policy`` (the ``train-policy`` stage): a
  random policy, a random in-process ``hf`` proxy judge (expected-score read-out, bf16, on the same
  GPU), the rules gold, held-out tracking with KL at step 0 and the last step. Step time (rollouts
  + judge + update; tracking and checkpoint saving are outside the step), peak memory.
- ``backend``: ``HFBackend.complete_many`` greedy generation tok/s at batch 1 / 8 / 32 (and a
  seeded temperature-0.7 row with top-5 logprobs) next to a plain ``model.generate`` over the same
  prompts, chunks and loaded model; ``HFBackend.next_token_probs`` judgements/s (P('0'..'9') after
  ``Score: ``) next to one plain left-padded forward pass per chunk; ratio = judgelab / raw.
  The probabilities of both are compared (max |Δp|) as a sanity check. judgelab and raw run
  alternately ``--repeats`` times on the same shapes; the medians are compared. The raw timings
  exclude chat-template rendering and tokenisation (done before the clock starts); judgelab's
  include them (that is most of the next_token_probs gap once the GPU part is equal).

cuDNN attention: torch 2.11 on an H100 runs HF's masked SDPA with cuDNN kernels, whose execution
graphs are built per shape (~100 ms each) and cached per *thread*. The hf backend runs every model
call on one persistent worker thread (``HFBackend._worker``), so its cache survives across calls
like the raw baseline's (main thread). The numbers in docs/scaling.md were measured before that,
when each call ran on an ``asyncio.to_thread`` worker (a fresh thread per ``asyncio.run``, a cold
cache every call), which is why its "default" columns are low. ``--no-cudnn-sdpa`` turns cuDNN SDPA
off for the whole run (flash / memory-efficient kernels, nothing to build).

Output: a table (judgelab value, raw value, ratio side by side), then notes; ``--json`` also writes
every number. A part that fails is reported with its error and the exit code is 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# SmolLM2's shapes (config.json of HuggingFaceTB/SmolLM2-135M-Instruct and -1.7B-Instruct).
_SMOLLM2_COMMON: dict[str, Any] = {
    "vocab_size": 49152, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2,
    "tie_word_embeddings": True, "max_position_embeddings": 8192, "rms_norm_eps": 1e-5,
    "hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "initializer_range": 0.02,
}
SIZES: dict[str, dict[str, Any]] = {
    "135m": {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
             "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64,
             "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"}},
    "1.7b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 24,
             "num_attention_heads": 32, "num_key_value_heads": 32, "head_dim": 64,
             "rope_parameters": {"rope_theta": 130000.0, "rope_type": "default"}},
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
             "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"}},
}

WORDS = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "seven",
         "wizards", "quietly", "judge", "every", "response", "for", "clarity", "accuracy", "style",
         "and", "the", "hidden", "rules", "of", "the", "task")
TOPICS = ("a lighthouse keeper", "a lost robot", "a dragon who cannot fly", "a baker in Paris",
          "a river that talks", "an astronaut's first day", "a clockmaker's apprentice",
          "a city under the sea")
JUDGE_SYSTEM = "You are a strict judge. Rate the response from 0 to 9. End with 'Score: N'."


# ------------------------------------------------------------------------------------ inputs
def story_prompts(n: int) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": f"Write a long story about {TOPICS[i % len(TOPICS)]}."
              + " Make it vivid." * (i % 5)}] for i in range(n)]


def filler(i: int, n_words: int) -> str:
    return " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(n_words))


def judge_messages(n: int) -> list[list[dict[str, str]]]:
    """Judge prompts of varied length (~60-250 tokens), so left padding is exercised."""
    return [[{"role": "system", "content": JUDGE_SYSTEM},
             {"role": "user", "content": f"Instruction: write about {TOPICS[i % len(TOPICS)]}.\n"
              f"Response: {filler(i, 40 + (i * 37) % 160)}"}] for i in range(n)]


# ------------------------------------------------------------------------------------ models
def build_random_model(size: str, tokenizer_dir: Path, dest: Path, device: str) -> Path:
    """A randomly initialised Llama of ``size`` (seed 0), fp32, with the tokenizer, saved to ``dest``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LlamaConfig

    if (dest / "config.json").exists():
        return dest
    cfg = LlamaConfig(**_SMOLLM2_COMMON, **SIZES[size])
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    model.generation_config = GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=2)
    model.save_pretrained(str(dest))
    AutoTokenizer.from_pretrained(str(tokenizer_dir)).save_pretrained(str(dest))
    del model
    return dest


def n_params(path: Path) -> int:
    from safetensors import safe_open

    total = 0
    for f in path.glob("*.safetensors"):
        with safe_open(str(f), "pt") as st:
            for k in st.keys():  # noqa: SIM118 (safe_open is not iterable)
                n = 1
                for dim in st.get_slice(k).get_shape():
                    n *= int(dim)
                total += n
    return total


# ------------------------------------------------------------------------------------ GPU helpers
def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _reset_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**30, 2)


def _step_timer() -> Any:
    """A TrainerCallback recording each optimizer step's wall time (and the trainer's bf16 flag)."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.bf16: bool | None = None
            self.param_dtype: str | None = None
            self.device: str | None = None
            self._t0 = 0.0

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.bf16 = bool(args.bf16)
            if model is not None:
                p = next(model.parameters())
                self.param_dtype, self.device = str(p.dtype), str(p.device)

        def on_step_begin(self, args, state, control, **kwargs):
            _sync()
            self._t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            _sync()
            self.times.append(time.perf_counter() - self._t0)

    return StepTimer()


def _steady(times: Sequence[float], skip: int = 2) -> list[float]:
    return list(times[skip:]) if len(times) > skip else list(times)


# ------------------------------------------------------------------------------------ parts
def bench_sft(model_dir: Path, work: Path, steps: int, batch: int, seq_len: int) -> dict[str, Any]:
    from judgelab.training.config import SFTTrainSpec
    from judgelab.training.model_setup import resolve_precision
    from judgelab.training.sft import SFTExample, train_sft

    examples = [SFTExample(messages=m, completion=f"Score: {i % 10}")
                for i, m in enumerate(judge_messages(batch * (steps + 1)))]
    spec = SFTTrainSpec(  # precision left at its default (auto): the point of the check
        learning_rate=1e-5, max_steps=steps, per_device_train_batch_size=batch, max_length=seq_len,
        logging_steps=1, save_steps=10**6, trl={"save_strategy": "no"},
    )
    timer = _step_timer()
    _reset_peak()
    result = train_sft(str(model_dir), examples, spec, work / "sft", resume="never", callbacks=[timer])
    steady = _steady(timer.times)
    losses = [h["loss"] for h in result.log_history if "loss" in h]
    tokens_per_step = _sft_tokens_per_step(model_dir, examples[:batch])
    s_per_step = sum(steady) / len(steady)
    return {
        "precision_auto_resolved": resolve_precision(spec),
        "trainer_bf16": timer.bf16, "param_dtype": timer.param_dtype, "device": timer.device,
        "steps": result.global_step, "batch": batch,
        "s_per_step": round(s_per_step, 4), "steps_per_s": round(1 / s_per_step, 2),
        "tokens_per_step": tokens_per_step, "tokens_per_s": round(tokens_per_step / s_per_step),
        "peak_gib": _peak_gib(), "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None, "trainable_params": result.trainable_params,
    }


def _sft_tokens_per_step(model_dir: Path, examples: Sequence[Any]) -> int:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    n = 0
    for ex in examples:
        msgs = [*ex.messages, {"role": "assistant", "content": ex.completion}]
        n += len(tok.apply_chat_template(msgs, tokenize=True, return_dict=True)["input_ids"])
    return n


def bench_grpo(policy_dir: Path, judge_dir: Path, work: Path, steps: int, completion_len: int,
               save_only_model: bool) -> dict[str, Any]:
    from judgelab.data.records import save_records
    from judgelab.data.world.generate import WorldConfig, family_ids, generate_prompts
    from judgelab.stages.train_policy import TrainPolicyConfig, run_train_policy
    from judgelab.store.jsonl import iter_jsonl

    work.mkdir(parents=True, exist_ok=True)
    recs = generate_prompts(WorldConfig(), 24, family_ids(), seed="bench-gpu")
    save_records(work / "train.jsonl", recs[:16])
    save_records(work / "test.jsonl", recs[16:])
    train: dict[str, Any] = {
        "num_generations": 8, "per_device_train_batch_size": 16, "max_completion_length": completion_len,
        "learning_rate": 1e-6, "max_steps": steps, "save_steps": steps, "logging_steps": 1,
    }
    if save_only_model:
        train["trl"] = {"save_only_model": True}
    cfg = TrainPolicyConfig.model_validate({
        "policy": {"name": str(policy_dir)},
        "prompts": str(work / "train.jsonl"), "eval_prompts": str(work / "test.jsonl"),
        "reward": {"kind": "pointwise", "invalid": "penalty", "judge": {
            "name": "proxy-random",
            "backend": {"kind": "hf", "model": {"name": str(judge_dir), "dtype": "auto"}, "batch_size": 32},
            # a random judge puts ~1e-4 of its mass on the digits: read the renormalised expectation
            "readout": "expected_only", "min_valid_mass": 0.0}},
        "gold": {"name": "gold-rules", "backend": {"kind": "rules", "world": "easy"}},
        "train": train,
        "tracking": {"every_steps": steps, "limit": 8},
    })
    timer = _step_timer()
    _reset_peak()
    res = run_train_policy(cfg, work / "policy", callbacks=[timer])
    log = [r for r in iter_jsonl(work / "policy" / "train_log.jsonl") if "loss" in r]
    steady = _steady(timer.times, skip=1)
    judge_s = [r["judge/seconds"] for r in log if r.get("judge/seconds") is not None]
    s_per_step = sum(steady) / len(steady)
    return {
        "trainer_bf16": timer.bf16, "param_dtype": timer.param_dtype, "device": timer.device,
        "steps": res.global_step, "rollouts_per_step": 16, "completion_len": completion_len,
        "s_per_step": round(s_per_step, 3), "steps_per_s": round(1 / s_per_step, 3),
        "step_times": [round(t, 3) for t in timer.times],
        "judge_s_per_step": round(sum(judge_s) / len(judge_s), 3) if judge_s else None,
        "mean_completion_len": log[-1].get("completions/mean_length") if log else None,
        "frac_reward_zero_std": [r.get("frac_reward_zero_std") for r in log],
        "peak_gib": _peak_gib(), "tracked_steps": res.tracked_steps,
        "kl_last": res.final_metrics.get("kl/policy_init"),
        "train_seconds_total": round(res.stats["train/seconds"], 1),
    }


def _ab(jl: Callable[[], tuple[float, float]], raw: Callable[[], tuple[float, float]],
        repeats: int) -> dict[str, Any]:
    """Run judgelab and raw alternately ``repeats`` times; each returns (units, seconds)."""
    jl_rates: list[float] = []
    raw_rates: list[float] = []
    for _ in range(repeats):
        for fn, out in ((jl, jl_rates), (raw, raw_rates)):
            units, seconds = fn()
            out.append(units / seconds)
    j, r = statistics.median(jl_rates), statistics.median(raw_rates)
    return {"judgelab": round(j, 1), "raw": round(r, 1), "ratio": round(j / r, 3),
            "judgelab_all": [round(x, 1) for x in jl_rates], "raw_all": [round(x, 1) for x in raw_rates]}


def bench_backend(model_dir: Path, batches: Sequence[int], max_tokens: int,
                  n_judge: int, repeats: int) -> dict[str, Any]:
    import torch

    from judgelab.backends.hf import HFBackend
    from judgelab.config.specs import HFBackendSpec, ModelSpec, SamplingSpec

    _reset_peak()
    model_spec = ModelSpec(name=str(model_dir), dtype="auto")  # auto: bf16 on a bf16 GPU
    loaded = HFBackend(HFBackendSpec(model=model_spec)).load()
    model, tok = loaded.model, loaded.tokenizer
    rows: list[dict[str, Any]] = []
    greedy = SamplingSpec(temperature=0.0, max_tokens=max_tokens, seed=0)
    sampled = SamplingSpec(temperature=0.7, max_tokens=max_tokens, seed=0)
    logprobs = SamplingSpec(temperature=0.7, max_tokens=max_tokens, seed=0, logprobs=True, top_logprobs=5)
    big = max(batches)
    cases = [("generate greedy", b, greedy) for b in batches] + [
        ("generate T0.7", big, sampled), ("generate T0.7+top5 logprobs", big, logprobs)]
    for label, b, sampling in cases:
        prompts = story_prompts(max(2, b))
        backend = HFBackend.from_loaded(HFBackendSpec(model=model_spec, batch_size=b), loaded)
        asyncio.run(backend.complete_many(prompts[:b], SamplingSpec(temperature=0.0, max_tokens=8)))

        def jl(backend: Any = backend, prompts: Any = prompts, sampling: Any = sampling) -> tuple[float, float]:
            _sync()
            t0 = time.perf_counter()
            outs = asyncio.run(backend.complete_many(prompts, sampling))
            return sum(o.usage.completion_tokens for o in outs), time.perf_counter() - t0

        def raw(prompts: Any = prompts, b: int = b, t: float = sampling.temperature) -> tuple[float, float]:
            return _raw_generate(model, tok, prompts, b, max_tokens, t)

        rows.append({"op": label, "batch": b, "unit": "tok/s", "requests": len(prompts),
                     **_ab(jl, raw, repeats)})
    requests = [(m, "Score: ") for m in judge_messages(n_judge)]
    digits = [str(d) for d in range(10)]
    for b in batches:
        backend = HFBackend.from_loaded(HFBackendSpec(model=model_spec, batch_size=b), loaded)
        probs = asyncio.run(backend.next_token_probs(requests, digits))
        raw_probs, _ = _raw_digit_probs(model, tok, requests, b, digits)
        diff = max(abs(p[d] - q[k]) for p, q in zip(probs, raw_probs) for k, d in enumerate(digits))

        def jl_probs(backend: Any = backend) -> tuple[float, float]:
            _sync()
            t0 = time.perf_counter()
            asyncio.run(backend.next_token_probs(requests, digits))
            return len(requests), time.perf_counter() - t0

        def raw_probs_fn(b: int = b) -> tuple[float, float]:
            return len(requests), _raw_digit_probs(model, tok, requests, b, digits)[1]

        rows.append({"op": "next_token_probs", "batch": b, "unit": "judgements/s", "requests": len(requests),
                     "max_abs_dp": float(f"{diff:.2e}"), **_ab(jl_probs, raw_probs_fn, repeats)})
    return {"dtype": str(loaded.dtype), "device": loaded.device, "rows": rows,
            "launch_floor_ms": _forward_floor_ms(model), "peak_gib": _peak_gib(),
            "torch_threads": torch.get_num_threads()}


def _forward_floor_ms(model: Any, reps: int = 50) -> float:
    """Median ms of a bare 1-token forward at batch 1 (no cache): the per-step floor of eager decoding."""
    import torch

    x = torch.ones((1, 1), dtype=torch.long, device=next(model.parameters()).device)
    times = []
    with torch.inference_mode():
        for i in range(reps + 5):
            _sync()
            t0 = time.perf_counter()
            model(input_ids=x, use_cache=False)
            _sync()
            if i >= 5:
                times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 2)


def _chunks(prompt_ids: list[list[int]], b: int) -> list[list[int]]:
    order = sorted(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i]))
    return [order[s:s + b] for s in range(0, len(order), b)]


def _left_pad(rows: Sequence[Sequence[int]], pad: int, device: str) -> tuple[Any, Any]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(list(r))
        mask[i, width - len(r):] = 1
    return ids.to(device), mask.to(device)


def _raw_generate(model: Any, tok: Any, prompts: Sequence[Any], b: int, max_tokens: int,
                  temperature: float) -> tuple[int, float]:
    """Plain ``model.generate`` over the same prompts in the same length-sorted chunks."""
    import torch

    device = str(next(model.parameters()).device)
    ids = [tok.apply_chat_template(m, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
           for m in prompts]
    kwargs: dict[str, Any] = {"max_new_tokens": max_tokens, "pad_token_id": tok.pad_token_id,
                              "eos_token_id": tok.eos_token_id}
    if temperature > 0:
        kwargs.update(do_sample=True, temperature=temperature, top_k=None, top_p=None)
    else:
        kwargs.update(do_sample=False, temperature=None, top_k=None, top_p=None)
    with torch.inference_mode():  # warm-up
        x, m = _left_pad([ids[0]], tok.pad_token_id, device)
        model.generate(input_ids=x, attention_mask=m, **{**kwargs, "max_new_tokens": 8})
    _sync()
    t0 = time.perf_counter()
    n = 0
    for idx in _chunks(ids, b):
        x, m = _left_pad([ids[i] for i in idx], tok.pad_token_id, device)
        with torch.inference_mode():
            out = model.generate(input_ids=x, attention_mask=m, **kwargs)
        for row in out[:, x.shape[1]:].tolist():
            n += row.index(tok.eos_token_id) + 1 if tok.eos_token_id in row else len(row)
    _sync()
    return n, time.perf_counter() - t0


def _raw_digit_probs(model: Any, tok: Any, requests: Sequence[Any], b: int,
                     digits: Sequence[str]) -> tuple[list[list[float]], float]:
    """One left-padded forward per chunk; P(digit) at the last position (SmolLM2 splits digits)."""
    import torch

    device = str(next(model.parameters()).device)
    digit_ids = [tok.convert_tokens_to_ids(d) for d in digits]
    ids = [tok.encode(tok.apply_chat_template(m, add_generation_prompt=True, tokenize=False) + prefix,
                      add_special_tokens=False) for m, prefix in requests]
    out: list[list[float] | None] = [None] * len(ids)
    _sync()
    t0 = time.perf_counter()
    for idx in _chunks(ids, b):
        x, m = _left_pad([ids[i] for i in idx], tok.pad_token_id, device)
        pos = (m.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = model(input_ids=x, attention_mask=m, position_ids=pos, use_cache=False,
                           logits_to_keep=1).logits[:, -1, :].float()
        p = torch.softmax(logits, dim=-1)[:, digit_ids].cpu().tolist()
        for i, row in zip(idx, p):
            out[i] = row
    _sync()
    return [r for r in out if r is not None], time.perf_counter() - t0


# ------------------------------------------------------------------------------------ report
def environment() -> dict[str, Any]:
    import importlib.metadata as md

    import torch

    env: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                           "cuda": torch.version.cuda, "cpus": os.cpu_count()}
    for pkg in ("transformers", "trl", "peft", "accelerate", "datasets"):
        try:
            env[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            env[pkg] = None
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        env.update(gpu=p.name, gpu_mem_gib=round(p.total_memory / 2**30, 1),
                   bf16_supported=torch.cuda.is_bf16_supported(),
                   sdpa_cudnn=torch.backends.cuda.cudnn_sdp_enabled(),
                   sdpa_flash=torch.backends.cuda.flash_sdp_enabled(),
                   sdpa_mem_efficient=torch.backends.cuda.mem_efficient_sdp_enabled())
    return env


def render(results: dict[str, Any]) -> str:
    lines = [f"environment: {json.dumps(results['environment'])}", ""]
    table = [["size", "op", "batch", "judgelab", "raw", "ratio", "unit"]]
    for size, parts in results["sizes"].items():
        rows = parts.get("backend", {}).get("rows", [])
        for r in rows:
            table.append([size, r["op"], str(r["batch"]), str(r["judgelab"]), str(r["raw"]),
                          str(r["ratio"]), r["unit"]])
    if len(table) > 1:
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in table]
        lines.insert(3, "  ".join("-" * w for w in widths))
        lines.append("")
    for size, parts in results["sizes"].items():
        lines.append(f"== {size} ({parts.get('params', '?')} params, randomly initialised)")
        for part, res in parts.items():
            if part in ("params",):
                continue
            if "error" in res:
                lines.append(f"  {part}: FAILED {res['error']}")
                continue
            if part == "backend":
                lines.append(f"  backend: {res['dtype']} on {res['device']}, peak {res['peak_gib']} GiB, "
                             f"bare 1-token forward {res['launch_floor_ms']} ms; "
                             "next_token_probs max |dp| vs raw: "
                             + ", ".join(str(r.get("max_abs_dp")) for r in res["rows"] if "max_abs_dp" in r))
            else:
                lines.append(f"  {part}: " + ", ".join(f"{k}={v}" for k, v in res.items()))
    return "\n".join(lines)


def run_part(fn: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        out = fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 (a benchmark reports a broken part, goes on with the rest)
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="135m,1.7b", help=f"comma list of {sorted(SIZES)}")
    parser.add_argument("--parts", default="sft,grpo,backend", help="comma list of sft, grpo, backend")
    parser.add_argument("--tokenizer", type=Path, default=None,
                        help="folder with SmolLM2's tokenizer files (default: the prepared alias)")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--max-tokens", type=int, default=64, help="generation rows")
    parser.add_argument("--judge-requests", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="judgelab/raw alternations (median)")
    parser.add_argument("--grpo-completion-len", type=int, default=128)
    parser.add_argument("--sft-steps", type=int, default=12)
    parser.add_argument("--sft-batch", type=int, default=8)
    parser.add_argument("--grpo-steps", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None, help="also write every number here")
    parser.add_argument("--no-cudnn-sdpa", action="store_true",
                        help="torch.backends.cuda.enable_cudnn_sdp(False) for the whole run (see docs/scaling.md)")
    parser.add_argument("--smoke-cpu", action="store_true",
                        help="no GPU: run a 2-layer model on CPU, tiny settings (plumbing check only)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    import torch

    if args.smoke_cpu:
        device, sizes = "cpu", ["tiny"]
        args.batches, args.max_tokens, args.judge_requests, args.repeats = "1,4", 8, 8, 1
        args.grpo_completion_len = 8
        args.sft_steps, args.sft_batch, args.grpo_steps = 3, 2, 2
    elif not torch.cuda.is_available():
        sys.stdout.write("bench_gpu: no CUDA device here (torch.cuda.is_available() is False); "
                         "nothing to measure. Run it on a GPU machine, or --smoke-cpu to check the "
                         "script itself.\n")
        return 0
    else:
        device, sizes = "cuda", [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown size(s) {unknown}; choose from {sorted(SIZES)}")
    if args.no_cudnn_sdpa:
        torch.backends.cuda.enable_cudnn_sdp(False)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    batches = [int(b) for b in args.batches.split(",")]
    tokenizer_dir = args.tokenizer
    if tokenizer_dir is None:
        from judgelab.models.resolve import resolve_model

        tokenizer_dir = Path(resolve_model("smollm2-135m-instruct"))
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_gpu_"))
    results: dict[str, Any] = {"environment": environment(), "sizes": {}, "settings": vars(args) | {
        "tokenizer": str(tokenizer_dir), "work": str(work)}}

    def save() -> None:
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")

    judge_dir = build_random_model(sizes[0] if args.smoke_cpu else "135m", tokenizer_dir,
                                   work / "models" / ("tiny" if args.smoke_cpu else "135m"), device)
    for size in sizes:
        model_dir = build_random_model(size, tokenizer_dir, work / "models" / size, device)
        out: dict[str, Any] = {"params": n_params(model_dir)}
        results["sizes"][size] = out
        big = size == "1.7b"
        if "sft" in parts:
            out["sft"] = run_part(bench_sft, model_dir, work / size, args.sft_steps, args.sft_batch, 512)
            save()
        if "backend" in parts:
            out["backend"] = run_part(bench_backend, model_dir, batches, args.max_tokens,
                                      args.judge_requests, args.repeats)
            save()
        if "grpo" in parts:
            out["grpo"] = run_part(bench_grpo, model_dir, judge_dir, work / size / "grpo",
                                   args.grpo_steps, args.grpo_completion_len, save_only_model=big)
            save()
        import gc

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    sys.stdout.write("\n" + render(results) + "\n")
    save()
    failed = any("error" in r for parts_ in results["sizes"].values() for r in parts_.values()
                 if isinstance(r, dict))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
