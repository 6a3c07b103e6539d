"""The α-vs-CPU-minutes curve of a judge-training recipe: one train-judge run with snapshots, each
snapshot judged on held-out gold items.

    python experiments/judge_curve.py experiments/judges/cpu_sft.yaml --run-dir runs/curve/sft \
        --data runs/gold/judgements.jsonl --eval runs/gold_eval/judgements.jsonl --minutes 5 10 20 40

The run is ``judgelab train-judge`` with ``snapshot_minutes`` (and ``stop_at_last_snapshot``) set
from ``--minutes``; any other setting can be overridden with dotted ``--set key=value`` pairs
(e.g. ``--set recipe.train.learning_rate=3e-4``). Each snapshot is then read exactly as a study
uses the trained judge (its ``judge.yaml``: hf backend, same template and read-out) on the
``--eval-sample`` held-out items (a seeded random sample; all by default), giving: Krippendorff's α (interval) of the judge's reward value
(expected score, or the parsed score) against the gold with a 95% bootstrap CI over items, Pearson
r, the invalid rate, and for reasoning judges the agreement of their per-check PASS/FAIL lines
with the gold trace's (``judgelab.evaluation.trace_checks``). Minutes count training only; the
cache pass of the frozen-trunk path is reported beside them (``cache s``), so "minutes including
the cache" is the sum. Results: a table on stdout and ``RUN_DIR/curve.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import time
from pathlib import Path

from judgelab.config.loader import load_config
from judgelab.data.labelled import load_labelled_items
from judgelab.evaluation.trace_checks import compute_check_agreement
from judgelab.judges import Judge, PointwiseItem
from judgelab.metrics import compute_alpha_vs_gold, compute_bootstrap_ci, compute_pearson
from judgelab.stages.train_judge import TrainJudgeConfig, load_trained_judge_spec, run_train_judge
from judgelab.training.snapshots import snapshot_dir


def evaluate(run: Path, items: list, batch_size: int) -> dict:
    spec = load_trained_judge_spec(run)
    spec = spec.model_copy(update={"backend": spec.backend.model_copy(update={"batch_size": batch_size})})
    judge = Judge(spec)
    t0 = time.perf_counter()
    try:
        js = asyncio.run(judge.score_pointwise([PointwiseItem(it.instruction, it.responses[0]) for it in items]))
    finally:
        asyncio.run(judge.aclose())
    seconds = time.perf_counter() - t0
    pred = [j.reward if j.verdict.parsed else None for j in js]
    gold = [float(it.score) for it in items]
    ci = compute_bootstrap_ci(lambda p, g: compute_alpha_vs_gold(list(p), list(g)), pred, gold,
                              n_resamples=1000, seed=0)
    out = {"alpha": compute_alpha_vs_gold(pred, gold), "alpha_ci": [ci.low, ci.high],
           "pearson": compute_pearson(pred, gold), "invalid_rate": sum(p is None for p in pred) / len(pred),
           "n": len(items), "eval_seconds": round(seconds, 1)}
    if spec.mode == "reasoning":
        agree = compute_check_agreement((j.reasoning, it.reasoning) for j, it in zip(js, items))
        out["check_agreement"] = agree.agreement
        out["check_lines"] = agree.n_lines
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="a train_judge YAML config")
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--data", help="gold-labelled training data (overrides the config's data:)")
    ap.add_argument("--eval", required=True, help="held-out gold annotations (judgements.jsonl)")
    ap.add_argument("--minutes", type=float, nargs="+", default=[5, 10, 20, 40])
    ap.add_argument("--eval-sample", type=int, default=None,
                    help="judge a seeded random sample of N held-out items (default: all)")
    ap.add_argument("--eval-batch-size", type=int, default=16)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dotted config override")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    overrides = list(args.set) + [f"snapshot_minutes=[{', '.join(f'{m:g}' for m in args.minutes)}]",
                                  "stop_at_last_snapshot=true", f"run_dir={args.run_dir}"]
    if args.data:
        overrides.append(f"data={args.data}")
    config = load_config(args.config, overrides, schema=TrainJudgeConfig)
    run_dir = Path(args.run_dir)
    t0 = time.perf_counter()
    result = run_train_judge(config, run_dir, show_progress=False)
    wall = time.perf_counter() - t0
    trunk_info = run_dir / "final" / "judgelab-trunk.json"
    cache_s = json.loads(trunk_info.read_text())["cache_seconds"] if trunk_info.is_file() else 0.0

    items = load_labelled_items(args.eval).items
    if args.eval_sample is not None and args.eval_sample < len(items):
        keep = sorted(random.Random(0).sample(range(len(items)), args.eval_sample))
        items = [items[i] for i in keep]
    rows = []
    for m in sorted(args.minutes):
        snap = snapshot_dir(run_dir, m)
        if not (snap / "judge.yaml").is_file():
            print(f"{m:g} min: no snapshot (the run ended before)", file=sys.stderr)
            continue
        note = (snap / "judge.yaml").read_text().strip().splitlines()[-1]
        row = {"minutes": m, "snapshot": note.removeprefix("# snapshot: "), **evaluate(snap, items, args.eval_batch_size)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    doc = {"config": args.config, "run_dir": str(run_dir), "recipe": result.recipe, "mode": result.mode,
           "examples": result.n_examples, "global_step": result.global_step,
           "train_seconds": result.train_seconds, "cache_seconds": cache_s, "wall_seconds": wall,
           "overrides": overrides, "rows": rows}
    (run_dir / "curve.json").write_text(json.dumps(doc, indent=2))
    print(f"\n{result.recipe} ({result.mode}), {result.n_examples} examples, cache {cache_s:.0f} s, "
          f"run wall {wall / 60:.1f} min")
    print("| train min | α [95% CI] | r | invalid | check agreement | snapshot |")
    print("|---:|---|---:|---:|---:|---|")
    for r in rows:
        ca = r.get("check_agreement")
        print(f"| {r['minutes']:g} | {r['alpha']:.3f} [{r['alpha_ci'][0]:.3f}, {r['alpha_ci'][1]:.3f}] | "
              f"{r['pearson']:.3f} | {r['invalid_rate']:.3f} | {'–' if ca is None else f'{ca:.3f}'} | {r['snapshot']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
