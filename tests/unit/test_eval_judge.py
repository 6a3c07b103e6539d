"""eval-judge: metrics checked by hand / against the krippendorff package, and the stage's
records (schema of docs/records.md, Markdown, per-item file, resume) with scripted backends."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from judgelab.evaluation.judge_eval import (
    BootstrapSettings,
    compute_pairwise_row,
    compute_pointwise_row,
    render_judge_eval_md,
)
from judgelab.stages.eval_judge import EvalJudgeConfig, run_eval_judge
from judgelab.textblocks import extract_block
from judgelab.types import Completion

OPENAI = {"kind": "openai", "model": "fake", "base_urls": ["http://127.0.0.1:1/v1"]}
FAST = BootstrapSettings(n_resamples=200)


# ---------------------------------------------------------------------------- metrics
def test_pairwise_metrics_by_hand():
    gold = ["A", "A", "B", "B"]
    first = ["A", "B", "B", None]  # right, wrong, right, invalid
    second = ["A", "A", "A", "B"]  # mapped back: right, right, wrong, right
    row = compute_pairwise_row(gold, first, second, bootstrap=FAST)
    # per item: (1+1)/2, (0+1)/2, (1+0)/2, (0+1)/2 → mean 0.625
    assert row["accuracy"] == pytest.approx(0.625)
    assert row["accuracy_both_orders"] == pytest.approx(0.25)  # only item 0
    assert row["position_consistency"] == pytest.approx(0.25)  # item 0 only (item 3 invalid)
    lo, hi = row["accuracy_ci"]
    assert 0.0 <= lo <= 0.625 <= hi <= 1.0
    # shown-first choices: order 1 picks A (pos 1) in items 0, 2? first = A,B,B → A counts 1 of 3;
    # order 2 (swapped) maps back: a mapped "B" means the judge picked position 1 → 1 of 4
    assert row["choice_rate_first_position"] == pytest.approx(2 / 7)
    assert row["gold_rate_a"] == 0.5 and row["alpha"] is None and row["ece"] is None
    single = compute_pairwise_row(gold, first, None, bootstrap=FAST)
    assert single["accuracy"] == 0.5 and single["position_consistency"] is None


def test_arena_choices_count_as_their_side():
    row = compute_pairwise_row(["A", "B"], ["A>>B", "A=B"], ["A>B", "B>>A"], bootstrap=FAST)
    assert row["accuracy"] == pytest.approx(0.75)  # item 2's first order is a tie: wrong
    assert row["position_consistency"] == pytest.approx(0.5)


def test_pointwise_metrics_match_krippendorff_and_hand_ece():
    krippendorff = pytest.importorskip("krippendorff")
    gold = [0, 2, 4, 6, 8, 9, 3, 5]
    expected = [0.5, 2.5, 3.0, 6.5, 7.0, 8.5, None, 5.0]  # item 6: no read-out (invalid)
    verdicts = [0, 3, 3, 7, 7, 9, None, 5]
    row = compute_pointwise_row(gold, verdicts, expected, expected, low=0, high=9, n_bins=3, bootstrap=FAST)
    ref = krippendorff.alpha(
        reliability_data=np.array([[np.nan if x is None else x for x in expected], gold], dtype=float),
        level_of_measurement="interval",
    )
    assert row["alpha"] == pytest.approx(ref, abs=1e-9) and row["alpha_source"] == "expected"
    ref_v = krippendorff.alpha(
        reliability_data=np.array([[np.nan if x is None else x for x in verdicts], gold], dtype=float),
        level_of_measurement="interval",
    )
    assert row["alpha_verdict"] == pytest.approx(ref_v, abs=1e-9)
    lo, hi = row["alpha_ci"]
    assert lo <= row["alpha"] <= hi
    # ECE by hand, bins [0,3) [3,6) [6,9]: {0.5,2.5} vs {0,2}; {3.0,5.0} vs {4,5}; {6.5,7,8.5} vs {6,8,9}
    ece = (2 * abs(1.5 - 1.0) + 2 * abs(4.0 - 4.5) + 3 * abs(22 / 3 - 23 / 3)) / 7
    assert row["ece"] == pytest.approx(ece)
    assert row["n_expected"] == 7 and row["mean_gold_score"] == pytest.approx(37 / 8)


def test_pointwise_all_invalid_is_null_not_a_number():
    row = compute_pointwise_row([1, 2, 3], [None] * 3, [None] * 3, [None] * 3, low=0, high=9, bootstrap=FAST)
    assert row["alpha"] is None and row["alpha_ci"] is None and row["ece"] is None
    assert row["alpha_source"] is None


def test_markdown_table_shows_cis_and_dashes():
    rows = [{"name": "j|1", "kind": "proxy", "n": 3, "alpha": 0.5, "alpha_ci": [0.25, 0.75], "accuracy": None,
             "invalid_rate": 0.125, "mean_reasoning_tokens": 12.4, "ece": None}]
    md = render_judge_eval_md(rows, notes=["note"])
    assert "| j\\|1 | proxy | 3 | 0.500 [0.250, 0.750] | — | — | 12.5% | 12 | — |" in md
    assert md.rstrip().endswith("note")


# ---------------------------------------------------------------------------- stage
class Scripted:
    """Pointwise: score = len(response) % 10; pairwise: 'first' always A, 'longer' the longer one."""

    def __init__(self, how: str) -> None:
        self.how = how
        self.calls = 0

    @property
    def identity(self):
        return {"kind": "fake", "model": self.how}

    async def complete_many(self, requests, sampling, progress=None):
        out = []
        for msgs in requests:
            self.calls += 1
            user = msgs[-1]["content"]
            resp = extract_block(user, "response")
            if resp is not None:
                text = "garbage" if "bad" in resp else f"Score: {len(resp) % 10}"
                out.append(Completion(text=text, reasoning="one two three", finish_reason="stop"))
                continue
            a, b = extract_block(user, "response_a"), extract_block(user, "response_b")
            choice = "A" if self.how == "first" or len(a) >= len(b) else "B"
            out.append(Completion(text=f"Verdict: [[{choice}]]", finish_reason="stop"))
        return out

    async def aclose(self):
        pass


def write_pairwise(tmp_path, n=8):
    rows = []
    for i in range(n):
        long, short = "a" * (10 + i), "b"
        pair, pref = ([long, short], "A") if i % 2 else ([short, long], "B")
        rows.append({"id": f"r{i}", "prompt": f"p{i}", "responses": pair, "source": "t",
                     "labels": {"preference": pref}})
    rows.append({"id": "tie", "prompt": "p", "responses": ["x", "y"], "source": "t", "labels": {"preference": "tie"}})
    path = tmp_path / "gold.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def econfig(data, judges, **kw):
    return EvalJudgeConfig.model_validate(
        {"data": str(data), "judges": judges, "bootstrap": {"n_resamples": 100}, "chunk_size": 3, **kw})


def test_pairwise_stage_records(tmp_path):
    data = write_pairwise(tmp_path)
    judges = [{"name": "longer", "judge": {"backend": OPENAI, "template": "pairwise-v1"}},
              {"name": "first", "kind": "base", "judge": {"backend": OPENAI, "template": "pairwise-v1"}}]
    backends = {"longer": Scripted("longer"), "first": Scripted("first")}
    res = run_eval_judge(econfig(data, judges), tmp_path / "run", backends=backends)
    doc = json.loads((tmp_path / "run" / "judge_eval.json").read_text())
    assert doc["schema"] == "judgelab.judge_eval/v1" and doc["gold_ties_dropped"] == 1 and doc["n_items"] == 8
    longer, first = doc["judges"]
    for row in doc["judges"]:  # every documented key is present
        for key in ("name", "kind", "protocol", "n", "alpha", "alpha_ci", "accuracy", "accuracy_ci",
                    "position_consistency", "invalid_rate", "mean_reasoning_tokens", "ece"):
            assert key in row
    assert (longer["accuracy"], longer["position_consistency"], longer["invalid_rate"]) == (1.0, 1.0, 0.0)
    assert (first["accuracy"], first["position_consistency"], first["choice_rate_first_position"]) == (0.5, 0.0, 1.0)
    assert first["kind"] == "base" and longer["protocol"] == "pairwise" and longer["n_judgements"] == 16
    assert longer["mean_reasoning_tokens"] is None and longer["mean_reasoning_words"] == 0.0
    assert res.rows == doc["judges"]
    items = [json.loads(x) for x in (tmp_path / "run" / "eval_items.jsonl").read_text().splitlines()]
    assert len(items) == 16 and items[0]["schema"] == "judgelab.judge_eval_item/v1"
    assert {i["first_choice"] for i in items if i["judge"] == "first"} == {"A"}
    md = (tmp_path / "run" / "judge_eval.md").read_text()
    assert "| longer | proxy | 8 | — | 1.000 [1.000, 1.000] | 1.000 [1.000, 1.000] | 0.0% |" in md
    calls = backends["longer"].calls
    again = run_eval_judge(econfig(data, judges), tmp_path / "run", backends=backends)
    assert again.already_completed and again.rows == res.rows and backends["longer"].calls == calls


def test_pointwise_stage_with_invalid_verdicts_and_cache(tmp_path):
    rows = [{"id": f"r{i}", "prompt": "p", "responses": ["x" * i + ("bad" if i == 3 else "")], "source": "t",
             "labels": {"score": i % 10}} for i in range(1, 7)]
    path = tmp_path / "gold.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    judges = [{"name": "len", "judge": {"backend": OPENAI, "template": "pointwise-v1", "mode": "reasoning"}}]
    backend = Scripted("len")
    res = run_eval_judge(econfig(path, judges), tmp_path / "run", backends={"len": backend})
    [row] = res.rows
    assert row["invalid_rate"] == pytest.approx(1 / 6)
    assert row["alpha"] == pytest.approx(1.0) and row["alpha_source"] == "verdict"  # valid items agree exactly
    assert row["mean_reasoning_words"] == 3.0 and row["ece"] is None
    # a second run dir with the same cache re-judges nothing
    again = run_eval_judge(econfig(path, judges, cache_path=str(tmp_path / "run" / "judge_cache.sqlite")),
                           tmp_path / "run2", backends={"len": backend})
    assert backend.calls == 6 and again.rows[0]["alpha"] == row["alpha"]


def test_protocol_mismatch_and_config_errors(tmp_path):
    from judgelab.errors import ConfigError

    data = write_pairwise(tmp_path)
    with pytest.raises(ConfigError, match="pointwise template"):
        run_eval_judge(econfig(data, [{"name": "p", "judge": {"backend": OPENAI}}]), tmp_path / "run")
    with pytest.raises(ValidationError, match="exactly one of"):
        econfig(data, [{"name": "p"}])
    with pytest.raises(ValidationError, match="unique"):
        econfig(data, [{"name": "p", "from_run": "a"}, {"name": "p", "from_run": "b"}])


def test_breakdown_by_a_meta_key_gives_per_variant_means(tmp_path):
    """issue 11: MICRO_STUDY_RESULTS' per-variant means come from `eval-judge breakdown=variant`."""
    variants = [None, "fixed", "fixed", "truncated", None, "truncated"]
    rows = [{"id": f"r{i}", "prompt": "p", "responses": ["x" * i + ("bad" if i == 4 else "")], "source": "t",
             "labels": {"score": (2 * i) % 10}, "meta": {} if v is None else {"variant": v}}
            for i, v in zip(range(1, 7), variants)]
    path = tmp_path / "gold.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    judges = [{"name": "len", "judge": {"backend": OPENAI, "template": "pointwise-v1"}}]
    res = run_eval_judge(econfig(path, judges, breakdown="variant"), tmp_path / "run",
                         backends={"len": Scripted("len")})
    [row] = res.rows
    b = row["breakdown"]
    assert b["key"] == "variant"
    by = {g["value"]: g for g in b["groups"]}
    assert list(by) == ["(none)", "fixed", "truncated"]  # first-seen order; no meta.variant = (none)
    # judge score = len(response) % 10: r1 → 1, r2 → 2, r3 → 3, r4 invalid ("bad"), r5 → 5, r6 → 6
    assert by["(none)"] == {"value": "(none)", "n": 2, "n_valid": 2, "mean_judge_score": 3.0,
                            "mean_gold_score": 1.0, "invalid_rate": 0.0}  # r1, r5: gold 2, 0
    assert by["fixed"]["mean_judge_score"] == 2.5 and by["fixed"]["mean_gold_score"] == 5.0
    assert by["truncated"]["n_valid"] == 1 and by["truncated"]["mean_judge_score"] == 6.0
    assert by["truncated"]["invalid_rate"] == 0.5 and by["truncated"]["mean_gold_score"] == 5.0  # gold 8, 2
    items = [json.loads(x) for x in (tmp_path / "run" / "eval_items.jsonl").read_text().splitlines()]
    assert [i["group"] for i in items] == ["(none)", "fixed", "fixed", "truncated", "(none)", "truncated"]
    md = (tmp_path / "run" / "judge_eval.md").read_text()
    assert "## By meta.variant" in md and "| fixed | 2 | 2.50 | 5.00 | 0% |" in md
    # without breakdown nothing changes in the rows
    plain = run_eval_judge(econfig(path, judges), tmp_path / "run2", backends={"len": Scripted("len")})
    assert "breakdown" not in plain.rows[0]


def test_pairwise_breakdown_reports_accuracy_per_group(tmp_path):
    data = write_pairwise(tmp_path)
    rows = [json.loads(x) for x in data.read_text().splitlines()]
    for i, r in enumerate(rows):
        r["meta"] = {"variant": "odd" if i % 2 else "even"}
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    judges = [{"name": "first", "judge": {"backend": OPENAI, "template": "pairwise-v1"}}]
    res = run_eval_judge(econfig(data, judges, breakdown="variant"), tmp_path / "run",
                         backends={"first": Scripted("first")})
    by = {g["value"]: g for g in res.rows[0]["breakdown"]["groups"]}
    # 'first' always says A: right in exactly one of the two orders of every battle → 0.5 everywhere
    assert by == {"even": {"value": "even", "n": 4, "accuracy": 0.5}, "odd": {"value": "odd", "n": 4, "accuracy": 0.5}}
