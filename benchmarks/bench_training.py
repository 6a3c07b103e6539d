"""Seconds per optimizer step of judge training on SmolLM2-135M-Instruct (CPU), side by side.

    .venv/bin/python benchmarks/bench_training.py                  # all rows, 4 steps each
    .venv/bin/python benchmarks/bench_training.py --steps 6 --only sft-score-lora grpo

Rows (batch 8, fp32, ``torch.set_num_threads(--threads)``), all through the library's own entry
points (``judgelab.training.sft.train_sft`` / ``judgelab.training.grpo.train_grpo``):

- SFT score-only (target ``Score: N``) vs trace+score (the rules gold's checklist trace, then the
  score), each with full fine-tuning, the top 10 layers only, and LoRA r=32 on all linear layers;
- score-only LoRA with the regression-aware loss (``score_regression_weight``): ``-reg`` is
  judgelab's trainer (TRL's fused NLL + the score rows of the LM head on the hooked hidden state),
  ``-regnaive`` the same loss through TRL's ``compute_loss_func`` (full-vocabulary logits, and TRL
  runs a second, no-grad forward for its metrics); the table's last column is each row's step time
  relative to plain ``sft-score-lora``;
- one GRPO step: 8 rollouts (2 prompts × 4) of up to 48 new tokens, judge-GRPO reward (the rules
  gold's score as ``gold_score``, the completion's parsed ``Score: N``).

Judge prompts are real: synthetic-world instructions (``judgelab.data.world``) with canned
responses, rendered by the shipped ``pointwise-v1`` template and the full checklist trace, or with
``--prompt brief`` by ``pointwise-brief-v1`` and the gold's brief trace (the CPU configs' choice:
~340 instead of ~480 prompt tokens, ~115 instead of ~260 trace tokens). The first step of each row is a warm-up and is not timed;
the table shows the median of the others, the tokens per sequence, and the load average, because
on a shared machine the numbers scale with the load.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROWS = [
    "sft-score-full", "sft-score-top10", "sft-score-lora",
    "sft-score-lora-reg", "sft-score-lora-regnaive",
    "sft-trace-full", "sft-trace-top10", "sft-trace-lora",
    "grpo",
]
RESPONSES = [
    "<<A Quiet Morning>>\nThe kettle sings while the cat stretches by the window. What a calm way to start the day?",
    "i walked to the market and bought fresh bread, then sat by the river and watched the boats drift past.",
    "- Pack light\n- Check the weather\n- Bring water",
    "The garden was full of roses and the bees were busy all afternoon, humming between the flowers",
]


def judge_items(n: int, trace: str = "full") -> list[dict[str, Any]]:
    from judgelab.data.world import WorldConfig, family_ids, generate_prompts, score_response

    recs = generate_prompts(WorldConfig(), n, family_ids(), "bench-training")
    items = []
    for i, r in enumerate(recs):
        resp = RESPONSES[i % len(RESPONSES)]
        g = score_response(r.prompt, resp, world="easy", trace=trace)
        items.append({"instruction": r.prompt, "response": resp, "score": g.score, "trace": g.trace})
    return items


def messages(item: dict[str, Any], prompt: str, mode: str) -> list[dict[str, str]]:
    from judgelab.judges.templates import get_template

    name = "pointwise-brief-v1" if prompt == "brief" else "pointwise-v1"
    return list(get_template(name, mode).render(
        {"instruction": item["instruction"], "response": item["response"]}
    ))


class StepTimer:
    """A TrainerCallback recording wall seconds per optimizer step."""

    def __new__(cls) -> Any:
        from transformers import TrainerCallback

        class _Timer(TrainerCallback):
            def __init__(self) -> None:
                self.times: list[float] = []
                self._t = 0.0

            def on_step_begin(self, args, state, control, **kw):
                self._t = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                self.times.append(time.perf_counter() - self._t)

        return _Timer()


def run_sft(row: str, model: str, items: list[dict[str, Any]], steps: int, prompt: str) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from judgelab.training.config import LoraSpec, SFTTrainSpec
    from judgelab.training.sft import SFTExample, train_sft

    _, target, mode, *loss = row.split("-")
    reasoning = target == "trace"
    examples = [
        SFTExample(
            messages(it, prompt, "reasoning" if reasoning else "non_reasoning"),
            f"{it['trace']}\nScore: {it['score']}" if reasoning else f"Score: {it['score']}",
        )
        for it in items
    ]
    tok = AutoTokenizer.from_pretrained(model)
    lengths = [
        len(tok.apply_chat_template(list(ex.messages) + [{"role": "assistant", "content": ex.completion}],
                                    tokenize=True, return_dict=True)["input_ids"])
        for ex in examples[:16]
    ]
    kw: dict[str, Any] = {"finetune": "lora" if mode == "lora" else "full"}
    if mode == "lora":
        kw["lora"] = LoraSpec(r=32, alpha=64)
    if mode == "top10":
        kw["train_top_layers"] = 10
    if loss == ["reg"]:
        kw["score_regression_weight"] = 20.0
    spec = SFTTrainSpec(
        learning_rate=1e-5, max_steps=steps, per_device_train_batch_size=8, save_steps=10**6,
        logging_steps=10**6, max_length=1024, **kw,
    )
    timer = StepTimer()
    with tempfile.TemporaryDirectory(prefix="bench-sft-") as out:
        if loss == ["regnaive"]:
            res = naive_regression_sft(model, examples, spec, out, timer)
        else:
            res = train_sft(model, examples, spec, out, resume="never", callbacks=[timer], score_range=(0, 9))
    return {"times": timer.times, "tokens": statistics.mean(lengths), "trainable": res.trainable_params}


def naive_regression_sft(model: str, examples: list[Any], spec: Any, out: str, timer: Any) -> Any:
    """The same NLL + 20·((E[s] − s)/9)² loss through TRL's ``compute_loss_func`` (the baseline)."""
    import torch
    from datasets import Dataset
    from trl import SFTTrainer

    from judgelab.training.model_setup import (
        build_peft_config,
        count_params,
        load_model_for_training,
        train_and_save,
    )
    from judgelab.training.score_loss import score_tokens, verdict_positions
    from judgelab.training.sft import build_sft_config, sft_rows

    lm, tok, _ = load_model_for_training(model)
    st = score_tokens(tok, 0, 9)
    ids = torch.tensor(st.ids)

    def loss_func(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
        logits = outputs.logits[:, :-1].float()
        target = labels[:, 1:]
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1),
                                                ignore_index=-100, reduction="sum")
        nll = nll / (num_items_in_batch if num_items_in_batch is not None else (target != -100).sum())
        rows, pos, gold = verdict_positions(labels, st, tok)
        p = torch.softmax(outputs.logits[rows, pos][:, ids].float(), -1)
        expected = (p * torch.arange(10.0)).sum(-1)
        return nll + 20.0 * (((expected - gold) / 9) ** 2).mean()

    trainer = SFTTrainer(model=lm, args=build_sft_config(spec, Path(out)),
                         train_dataset=Dataset.from_list(sft_rows(examples)), processing_class=tok,
                         peft_config=build_peft_config(spec), callbacks=[timer], compute_loss_func=loss_func)
    return train_and_save(trainer, tok, spec, Path(out), None, *count_params(trainer.model))


def run_grpo(model: str, items: list[dict[str, Any]], steps: int, prompt: str) -> dict[str, Any]:
    from judgelab.rewards.judge_rewards import make_pointwise_judge_reward
    from judgelab.training.config import GRPOTrainSpec
    from judgelab.training.grpo import train_grpo

    def parse(text: str, finish_reason: str | None = None) -> int | None:
        found = re.findall(r"Score:\s*(\d)\b", text)
        return int(found[-1]) if found else None

    rows = [{"prompt": messages(it, prompt, "non_reasoning"), "gold_score": it["score"]} for it in items]
    spec = GRPOTrainSpec(
        finetune="full", learning_rate=1e-6, max_steps=steps, per_device_train_batch_size=8,
        num_generations=4, max_completion_length=48, save_steps=10**6, logging_steps=10**6,
    )
    timer = StepTimer()
    with tempfile.TemporaryDirectory(prefix="bench-grpo-") as out:
        res = train_grpo(model, rows, [make_pointwise_judge_reward(parse)], spec, out,
                         resume="never", callbacks=[timer])
    return {"times": timer.times, "tokens": float("nan"), "trainable": res.trainable_params}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4, help="steps per row; the first is not timed")
    ap.add_argument("--only", nargs="*", default=None, choices=ROWS)
    ap.add_argument("--prompt", choices=["template", "brief"], default="template")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="smollm2-135m-instruct", help="alias, folder or hub id")
    args = ap.parse_args(argv)
    if args.steps < 2:
        ap.error("--steps must be >= 2 (the first step is a warm-up)")

    import torch

    from judgelab.models.resolve import resolve_model

    torch.set_num_threads(args.threads)
    model = resolve_model(args.model)
    items = judge_items(64, trace="brief" if args.prompt == "brief" else "full")
    results: dict[str, dict[str, Any]] = {}
    for row in args.only or ROWS:
        sys.stdout.write(f"running {row} ...\n")
        sys.stdout.flush()
        t0 = time.perf_counter()
        r = run_grpo(model, items, args.steps, args.prompt) if row == "grpo" else run_sft(
            row, model, items, args.steps, args.prompt)
        r["load"] = os.getloadavg()[0]
        r["wall"] = time.perf_counter() - t0
        results[row] = r

    sys.stdout.write(
        f"\nSmolLM2-135M judge training, batch 8, fp32, {args.threads} threads, prompt={args.prompt}\n"
    )
    sys.stdout.write(
        f"{'row':<24}{'s/step':>9}{'min':>8}{'max':>8}{'tok/seq':>9}{'trainable':>12}{'load':>7}{'vs lora':>9}\n"
    )
    base = results.get("sft-score-lora")
    for row, r in results.items():
        timed = r["times"][1:]
        ratio = (f"{statistics.median(timed) / statistics.median(base['times'][1:]):>8.2f}x"
                 if base and row.startswith("sft-score-lora") else f"{'':>9}")
        sys.stdout.write(
            f"{row:<24}{statistics.median(timed):>9.1f}{min(timed):>8.1f}{max(timed):>8.1f}"
            f"{r['tokens']:>9.0f}{r['trainable'] / 1e6:>11.1f}M{r['load']:>7.1f}{ratio}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
