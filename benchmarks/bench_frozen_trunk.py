"""Examples per second of judge training on SmolLM2-135M-Instruct (CPU): TRL LoRA vs the frozen trunk.

    .venv/bin/python benchmarks/bench_frozen_trunk.py                   # all rows
    .venv/bin/python benchmarks/bench_frozen_trunk.py --steps 6 --only trl-score trunk-score-bf16

Every row trains through the library's own entry points on the same judge examples (synthetic-world
instructions with canned responses, rendered by ``pointwise-compact-v1``, the CPU judges' template;
targets ``Score: N`` or the rules gold's brief trace + score), batch 16, in one process, one after
the other, so the ratios are measured side by side:

- ``trl-score`` / ``trl-trace``: today's TRL path (``train_sft``, LoRA r=32 on all linear layers,
  fp32) — the CPU configs' recipe before the frozen trunk;
- ``trunk-score-{fp32,bf16}`` / ``trunk-trace-{fp32,bf16}``: ``train_frozen_trunk`` with 24 of 30
  layers frozen, training steps only (verdict loss at the read-out position / completion loss),
  trained layers in fp32 or under bf16 autocast;
- ``cache-{fp32,bf16}``: the no-grad cache pass through the 24 frozen layers, in fp32 or bf16.

The first timed unit of each row is a warm-up. Columns: examples/s (median over steps), its ratio to
the TRL row of the same target, tokens per example, and the load average while the row ran (on a
shared machine the numbers scale with the load). ``cpu bf16`` says whether the CPU reports bf16 units.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

ROWS = ["trl-score", "trunk-score-fp32", "trunk-score-bf16", "trl-trace", "trunk-trace-fp32",
        "trunk-trace-bf16", "cache-fp32", "cache-bf16"]
RESPONSES = [
    "<<A Quiet Morning>>\nThe kettle sings while the cat stretches by the window. What a calm way to start the day?",
    "i walked to the market and bought fresh bread, then sat by the river and watched the boats drift past.",
    "- Pack light\n- Check the weather\n- Bring water",
    "The garden was full of roses and the bees were busy all afternoon, humming between the flowers",
]
BATCH = 16


def judge_items(n: int) -> list[dict[str, Any]]:
    from judgelab.data.world import WorldConfig, family_ids, generate_prompts, score_response
    from judgelab.judges.templates import get_template

    recs = generate_prompts(WorldConfig(), n, family_ids(), "bench-trunk")
    out = []
    for i, r in enumerate(recs):
        resp = RESPONSES[i % len(RESPONSES)]
        g = score_response(r.prompt, resp, world="easy", trace="brief")
        inputs = {"instruction": r.prompt, "response": resp}
        out.append({"score": g.score, "trace": g.trace,
                    "score_msgs": get_template("pointwise-compact-v1", "non_reasoning").render(inputs),
                    "trace_msgs": get_template("pointwise-compact-v1", "reasoning").render(inputs)})
    return out


def run_trl(model: str, items: list[dict[str, Any]], target: str, steps: int) -> dict[str, Any]:
    from judgelab.training.config import LoraSpec, SFTTrainSpec
    from judgelab.training.sft import SFTExample, train_sft

    sys.path.insert(0, os.path.dirname(__file__))
    from bench_training import StepTimer

    examples = [SFTExample(it[f"{target}_msgs"], _target(it, target)) for it in items]
    spec = SFTTrainSpec(finetune="lora", lora=LoraSpec(r=32, alpha=64), learning_rate=1e-3, max_steps=steps,
                        per_device_train_batch_size=BATCH, save_steps=10**6, logging_steps=10**6, max_length=1024)
    timer = StepTimer()
    with tempfile.TemporaryDirectory(prefix="bench-trl-") as out:
        train_sft(model, examples, spec, out, resume="never", callbacks=[timer], score_range=(0, 9))
    return {"unit_seconds": timer.times, "per_unit": BATCH}


def _target(it: dict[str, Any], target: str) -> str:
    return f"Score: {it['score']}" if target == "score" else f"{it['trace']}\n\nScore: {it['score']}"


def run_trunk(model: str, items: list[dict[str, Any]], target: str, precision: str, steps: int,
              cache_only: bool = False) -> dict[str, Any]:
    from judgelab.training.config import SFTTrainSpec, TrunkSpec
    from judgelab.training.frozen_trunk import TrunkInput, VerdictReadout
    from judgelab.training.trunk_train import train_frozen_trunk

    inputs = [TrunkInput(it[f"{target}_msgs"], _target(it, target), it["score"]) for it in items]
    spec = SFTTrainSpec(learning_rate=1e-4, per_device_train_batch_size=BATCH, max_steps=steps,
                        save_steps=10**6, logging_steps=1, max_length=1024, precision=precision,
                        trunk=TrunkSpec(frozen_layers=24, cache_precision=precision, cache_batch_size=BATCH))
    with tempfile.TemporaryDirectory(prefix="bench-trunk-") as out:
        res = train_frozen_trunk(model, inputs, spec, out, loss="verdict" if target == "score" else "completion",
                                 readout=VerdictReadout("Score: ", 0, 9), progress=False)
        info = json.loads((res.model_path / "judgelab-trunk.json").read_text())
    if cache_only:
        return {"unit_seconds": [info["cache_seconds"] / info["cache_computed"]] * 2, "per_unit": 1}
    seconds = [r["train_seconds"] for r in res.log_history]
    return {"unit_seconds": [b - a for a, b in zip([0.0, *seconds], seconds)], "per_unit": BATCH}


def tokens_per_example(model: str, items: list[dict[str, Any]], target: str) -> float:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    return statistics.mean(
        len(tok.apply_chat_template([*it[f"{target}_msgs"], {"role": "assistant", "content": _target(it, target)}],
                                    tokenize=True, return_dict=True)["input_ids"]) for it in items)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps per row; the first is a warm-up")
    ap.add_argument("--items", type=int, default=160, help="judge examples (the cache rows' sample)")
    ap.add_argument("--only", nargs="*", default=None, choices=ROWS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="smollm2-135m-instruct", help="alias, folder or hub id")
    args = ap.parse_args(argv)
    if args.steps < 2:
        ap.error("--steps must be >= 2 (the first step is a warm-up)")

    import torch

    from judgelab.models.resolve import resolve_model
    from judgelab.training.model_setup import cpu_has_bf16

    torch.set_num_threads(args.threads)
    model = resolve_model(args.model)
    items = judge_items(args.items)
    toks = {t: tokens_per_example(model, items, t) for t in ("score", "trace")}
    results: dict[str, dict[str, Any]] = {}
    for row in args.only or ROWS:
        sys.stdout.write(f"running {row} ...\n")
        sys.stdout.flush()
        kind, *rest = row.split("-")
        t0 = time.perf_counter()
        if kind == "trl":
            r = run_trl(model, items[: BATCH * args.steps], rest[0], args.steps)
        elif kind == "trunk":
            r = run_trunk(model, items[: BATCH * args.steps], rest[0], rest[1], args.steps)
        else:
            r = run_trunk(model, items, "score", rest[0], 2, cache_only=True)
        r["load"] = os.getloadavg()[0]
        r["wall"] = time.perf_counter() - t0
        results[row] = r

    sys.stdout.write(f"\nSmolLM2-135M judge training, batch {BATCH}, {args.threads} threads, "
                     f"cpu bf16 {cpu_has_bf16()}, tokens/example score {toks['score']:.0f} trace {toks['trace']:.0f}\n")
    sys.stdout.write(f"{'row':<20}{'examples/s':>12}{'min':>8}{'max':>8}{'vs TRL':>9}{'load':>7}\n")
    rates = {}
    for row, r in results.items():
        timed = r["unit_seconds"][1:] or r["unit_seconds"]
        per = [r["per_unit"] / t for t in timed if t > 0]
        rates[row] = statistics.median(per)
        target = "trace" if "trace" in row else "score"
        base = rates.get(f"trl-{target}")
        ratio = f"{rates[row] / base:>8.1f}x" if base and not row.startswith("cache") else f"{'':>9}"
        sys.stdout.write(f"{row:<20}{rates[row]:>12.2f}{min(per):>8.2f}{max(per):>8.2f}{ratio}{r['load']:>7.1f}\n")
    for a, b in (("trunk-score-bf16", "trunk-score-fp32"), ("trunk-trace-bf16", "trunk-trace-fp32"),
                 ("cache-bf16", "cache-fp32")):
        if a in rates and b in rates:
            sys.stdout.write(f"{a} / {b}: {rates[a] / rates[b]:.2f}x\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
