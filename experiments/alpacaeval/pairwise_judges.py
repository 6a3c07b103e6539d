"""AlpacaEval pairwise judges: non-reasoning (SFT) vs distilled-reasoning SmolLM2, held-out accuracy.

The gold is AlpacaEval 2's GPT-4-Turbo chain-of-thought annotator (``../shared/data/alpacaeval-cot``:
7 models × 805 instructions, each answer against the gpt4_1106_preview baseline). Its written
explanation (model names rewritten to "Response A/B" by the alpacaeval source) is the reasoning
trace the distilled judge learns before its verdict; the SFT judge learns the verdict only. Both go
through the real stages: ``train-judge`` (recipes sft / distill, template pairwise-v1, both orders)
and ``eval-judge`` (accuracy, position consistency, invalid rate, bootstrap CIs), plus the untrained
SmolLM2 as a base judge.

CPU budget: SmolLM2-135M on 2 shared cores. To fit ~15 CPU-minutes, only pairs whose instruction +
both answers are at most ``--max-pair-tokens`` SmolLM2 tokens are used (short answers, so a
*selected* subset: the gold prefers the baseline in ~80 % of them), ties are dropped, the held-out
items come from instructions never seen in training, and both judges train for ``--steps`` steps.

    .venv/bin/python experiments/alpacaeval/pairwise_judges.py --out runs/alpacaeval
    # then: results in runs/alpacaeval/eval/judge_eval.{json,md}

Rerunning with the same --out resumes (completed stages are skipped).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from pathlib import Path

import yaml

from judgelab.data.records import save_records
from judgelab.data.sources import AlpacaEvalSourceConfig, load_alpacaeval_source

log = logging.getLogger("alpacaeval_pairwise")
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "alpacaeval-cot"


def build_split(args: argparse.Namespace, out: Path) -> tuple[Path, Path, dict[str, int]]:
    """Short, tie-free pairs; held-out instructions disjoint from training instructions."""
    from judgelab.models.tokens import count_tokens, load_tokenizer

    train_path, eval_path = out / "data" / "train.jsonl", out / "data" / "eval.jsonl"
    stats_path = out / "data" / "stats.json"
    if train_path.is_file() and eval_path.is_file() and stats_path.is_file():
        return train_path, eval_path, json.loads(stats_path.read_text())
    loaded = load_alpacaeval_source(AlpacaEvalSourceConfig(paths=[str(args.data)], include_ties=False))
    unique = {r.id: r for r in reversed(loaded.records)}  # identical pairs in two files: keep one
    records = [r for r in loaded.records if unique.get(r.id) is r and r.labels and r.labels.reasoning]
    tok = load_tokenizer(args.model)
    lengths = [sum(count_tokens(tok, [r.prompt, *r.responses])) for r in records]
    short = [r for r, n in zip(records, lengths) if n <= args.max_pair_tokens]
    prompts = sorted({r.prompt_hash for r in short})
    random.Random(args.seed).shuffle(prompts)
    held = set(prompts[: int(len(prompts) * args.eval_fraction)])
    rng = random.Random(args.seed)
    train = [r for r in short if r.prompt_hash not in held]
    evals = [r for r in short if r.prompt_hash in held]
    rng.shuffle(train)
    rng.shuffle(evals)
    train, evals = train[: args.train_pairs], evals[: args.eval_pairs]
    (out / "data").mkdir(parents=True, exist_ok=True)
    save_records(train_path, train)
    save_records(eval_path, evals)
    stats = {
        "source_pairs": len(loaded.records), "unique_with_explanation": len(records), "short_pairs": len(short),
        "instructions_short": len(prompts), "train_pairs": len(train), "eval_pairs": len(evals),
        "eval_gold_A": sum(r.labels.preference == "A" for r in evals if r.labels),
        "train_gold_A": sum(r.labels.preference == "A" for r in train if r.labels),
    }
    stats_path.write_text(json.dumps(stats, indent=2))
    return train_path, eval_path, stats


def judge_config(args: argparse.Namespace, recipe: str, data: Path) -> dict:
    train = {
        "finetune": "full", "train_top_layers": args.top_layers, "learning_rate": args.lr,
        "max_steps": args.steps, "per_device_train_batch_size": args.batch_size,
        "max_length": args.max_length, "save_steps": 10, "save_total_limit": 1, "logging_steps": 1,
        "lr_scheduler_type": "constant",
    }
    sampling = (
        {"temperature": 0.0, "max_tokens": 16} if recipe == "sft"
        else {"temperature": 0.0, "max_tokens": args.reason_tokens}
    )
    return {
        "stage": "train_judge", "seed": args.seed, "model": {"name": args.model}, "data": str(data),
        "template": "pairwise-v1", "pairwise_orders": "both", "recipe": {"kind": recipe, "train": train},
        "judge": {"name": f"smollm2-{recipe}", "sampling": sampling, "batch_size": 8, "device": "cpu"},
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "alpacaeval")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--max-pair-tokens", type=int, default=250)
    p.add_argument("--eval-fraction", type=float, default=0.25)
    p.add_argument("--train-pairs", type=int, default=200)
    p.add_argument("--eval-pairs", type=int, default=60)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--top-layers", type=int, default=6)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--max-length", type=int, default=640)
    p.add_argument("--reason-tokens", type=int, default=96)
    p.add_argument("--bootstrap", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads (1 on a busy machine)")
    p.add_argument("--skip-base", action="store_true", help="do not evaluate the untrained SmolLM2")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    from judgelab.stages.eval_judge import EvalJudgeConfig, run_eval_judge
    from judgelab.stages.train_judge import TrainJudgeConfig, run_train_judge

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    train_path, eval_path, stats = build_split(args, out)
    timings["data_s"] = time.perf_counter() - t0
    log.info("data: %s", stats)

    runs = {}
    for recipe in ("sft", "distill"):
        cfg_dict = judge_config(args, recipe, train_path)
        (out / f"train_{recipe}.yaml").write_text(yaml.safe_dump(cfg_dict, sort_keys=False))
        t0 = time.perf_counter()
        res = run_train_judge(TrainJudgeConfig.model_validate(cfg_dict), out / f"judge_{recipe}")
        timings[f"train_{recipe}_s"] = time.perf_counter() - t0
        runs[recipe] = res
        log.info("%s: %d examples, %d steps, %.0fs, skipped %s", recipe, res.n_examples,
                     res.global_step, res.train_seconds, res.skipped)

    judges = [
        {"name": "smollm2-sft (non-reasoning)", "kind": "proxy", "from_run": str(out / "judge_sft")},
        {"name": "smollm2-distill (reasoning)", "kind": "proxy", "from_run": str(out / "judge_distill")},
    ]
    if not args.skip_base:
        judges.append({
            "name": "smollm2 base (non-reasoning)", "kind": "base",
            "judge": {"backend": {"kind": "hf", "model": {"name": args.model, "device": "cpu"}, "batch_size": 8},
                      "template": "pairwise-v1", "mode": "non_reasoning",
                      "sampling": {"temperature": 0.0, "max_tokens": 16}},
        })
    eval_dict = {"stage": "eval_judge", "seed": args.seed, "data": str(eval_path), "judges": judges,
                 "bootstrap": {"n_resamples": args.bootstrap}, "chunk_size": 16}
    (out / "eval.yaml").write_text(yaml.safe_dump(eval_dict, sort_keys=False))
    t0 = time.perf_counter()
    ev = run_eval_judge(EvalJudgeConfig.model_validate(eval_dict), out / "eval")
    timings["eval_s"] = time.perf_counter() - t0
    timings["cpu_s_total"] = time.process_time() - cpu0  # this process's CPU time (all threads)
    (out / "timings.json").write_text(json.dumps(timings, indent=2))

    from rich.console import Console

    from judgelab.evaluation.judge_eval import judge_eval_table

    Console(width=160).print(judge_eval_table(ev.rows, title=f"AlpacaEval held-out pairs: {ev.n_items}"))
    for row in ev.rows:
        sys.stdout.write(
            f"{row['name']}: accuracy {row['accuracy']:.3f} {row['accuracy_ci']}, both orders "
            f"{row['accuracy_both_orders']}, position consistency {row['position_consistency']}, "
            f"first-position rate {row['choice_rate_first_position']}, invalid {row['invalid_rate']:.3f}, "
            f"reasoning tokens {row['mean_reasoning_tokens']}\n"
        )
    sys.stdout.write(f"data: {json.dumps(stats)}\ntimings: {json.dumps(timings)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
