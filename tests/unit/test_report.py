"""`judgelab report` on fake-but-schema-valid run dirs (docs/records.md) built in tmp_path."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from judgelab.analysis.hacking import compute_hacking_summary
from judgelab.analysis.report import build_report, render_report
from judgelab.analysis.run_records import find_runs, load_policy_run
from judgelab.cli import main
from judgelab.errors import DataError, RunDirError
from judgelab.store.jsonl import write_json_atomic, write_jsonl_atomic

EVIL = "<script>alert('pwned')</script> Score: 9 ``` | pipe"


def make_policy_run(
    path: Path,
    *,
    judge: str = "proxy-reasoning",
    seed: int = 0,
    n_steps: int = 7,
    peak_at: int = 3,
    decline: float = 0.5,
    n_prompts: int = 4,
    noise_seed: int = 0,
    with_samples: bool = True,
) -> Path:
    """A policy run whose gold rises to ``peak_at`` (eval index) then falls; proxy rises throughout."""
    rng = np.random.default_rng(noise_seed)
    path.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        path / "manifest.json",
        {"schema": "judgelab.manifest/v1", "stage": "train_policy", "seed": seed, "status": "completed",
         "policy": {"judge": judge, "seed": seed}, "git_sha": "abc123", "versions": {"trl": "1.16.0"}},
    )
    (path / "config.yaml").write_text("stage: train_policy\n", encoding="utf-8")
    tracking, samples, log = [], [], []
    pids = [f"p{i}" for i in range(n_prompts)]
    for i in range(n_steps):
        step = 10 * i
        gold_mean = 5.0 + 0.4 * min(i, peak_at) - decline * max(0, i - peak_at)
        proxy_mean = 5.0 + 0.6 * i
        gold = [round(gold_mean + rng.normal(0, 0.3), 3) for _ in pids]
        proxy = [round(proxy_mean + rng.normal(0, 0.3), 3) for _ in pids]
        proxy[0] = None if i == 2 else proxy[0]  # an invalid proxy verdict
        pv = [v for v in proxy if v is not None]
        tracking.append(
            {
                "schema": "judgelab.tracking/v1",
                "step": step,
                "metrics": {
                    "reward/proxy": float(np.mean(pv)),
                    "reward/gold": float(np.mean(gold)),
                    "reward/proxy_se": float(np.std(pv, ddof=1) / math.sqrt(len(pv))),
                    "reward/gold_se": float(np.std(gold, ddof=1) / math.sqrt(len(gold))),
                    "kl/policy_init": 0.02 * i * i,
                    "length/mean": 100.0 + 30 * i,
                    "judge/invalid_rate": (len(proxy) - len(pv)) / len(proxy),
                    "gold/invalid_rate": 0.0,
                    "reward/base-judge": proxy_mean - 0.5,
                },
                "per_prompt": {"prompt_ids": pids, "proxy": proxy, "gold": gold},
            }
        )
        if with_samples:
            for pid, p, g in zip(pids, proxy, gold):
                samples.append(
                    {"schema": "judgelab.eval_sample/v1", "step": step, "prompt_id": pid,
                     "prompt": f"Write a note about topic {pid}.",
                     "response": f"response of step {step} to {pid}" + (f" {EVIL}" if i == n_steps - 1 else ""),
                     "proxy": p, "gold": g, "gold_reasoning": f"reasoning <b>{pid}</b> at {step}"}
                )
        log.append({"step": step + 5, "reward": proxy_mean + 0.1, "reward_std": 1.0, "loss": 0.01, "kl": 0.01 * i})
    write_jsonl_atomic(path / "tracking.jsonl", tracking)
    if with_samples:
        write_jsonl_atomic(path / "eval_samples.jsonl", samples)
    write_jsonl_atomic(path / "train_log.jsonl", log + [{"train_runtime": 12.3, "step": 60}])
    return path


JUDGE_EVAL = {
    "schema": "judgelab.judge_eval/v1",
    "judges": [
        {"name": "proxy-reasoning", "kind": "proxy", "protocol": "pointwise", "n": 200, "alpha": 0.612,
         "alpha_ci": [0.55, 0.67], "accuracy": None, "accuracy_ci": None, "position_consistency": None,
         "invalid_rate": 0.015, "mean_reasoning_tokens": 181.0, "ece": 0.41, "extra_field": 1},
        {"name": "proxy-<plain>", "kind": "proxy", "protocol": "pairwise", "n": 150, "alpha": None,
         "alpha_ci": None, "accuracy": 0.733, "accuracy_ci": [0.66, 0.8], "position_consistency": 0.81,
         "invalid_rate": 0.0, "mean_reasoning_tokens": 0.0, "ece": None},
    ],
}


def make_study(root: Path, *, seeds: int = 2) -> Path:
    root.mkdir(parents=True)
    write_json_atomic(root / "manifest.json", {"schema": "judgelab.manifest/v1", "stage": "study", "status": "completed"})
    write_json_atomic(root / "judge_eval" / "judge_eval.json", JUDGE_EVAL)
    for j, (judge, decline) in enumerate((("proxy-reasoning", 0.1), ("proxy-plain", 0.6))):
        for s in range(seeds):
            make_policy_run(root / "policies" / judge / f"seed{s}", judge=judge, seed=s, decline=decline,
                            noise_seed=10 * j + s)
    return root


# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """One hacked policy run, rendered once to RUN_DIR/report (figures are the slow part)."""
    run = make_policy_run(tmp_path_factory.mktemp("single") / "run", decline=0.6)
    return run, render_report(run)


def test_single_run_report(single):
    run, html_path = single
    assert html_path == run / "report" / "report.html"
    html = html_path.read_text(encoding="utf-8")
    # tables
    assert "Reward hacking per run" in html and "How computed" in html and "tracking.jsonl" in html
    # the untrusted output is escaped, never live
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in html
    assert "reasoning &lt;b&gt;" in html
    assert "Content-Security-Policy" in html
    # images are embedded and decode to PNG
    imgs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(imgs) >= 3
    assert all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for b in imgs)
    assert not re.search(r'(src|href)="(https?:|file:|/)', html)  # nothing remote or local to load
    # markdown + png files beside it
    md = (run / "report" / "report.md").read_text(encoding="utf-8")
    assert "## Reward hacking per run" in md and "![" in md
    for name in re.findall(r"\]\((fig_[a-z_]+\.png)\)", md):
        assert (run / "report" / name).read_bytes()[:4] == b"\x89PNG"
    outside_fences = re.sub(r"(`{3,})text\n.*?\n\1", "", md, flags=re.DOTALL)
    assert "<script>" in md and "<script>" not in outside_fences  # raw only inside fenced blocks
    assert "````text" in md  # the response contains ``` so its fence is longer


def test_report_numbers_match_independent_recomputation(single):
    run, html_path = single
    data = json.loads((html_path.parent / "report.json").read_text(encoding="utf-8"))
    assert data["schema"] == "judgelab.report/v1"
    recs = [json.loads(line) for line in (run / "tracking.jsonl").read_text().splitlines()]
    gold = [r["metrics"]["reward/gold"] for r in recs]
    proxy = [r["metrics"]["reward/proxy"] for r in recs]
    s = data["runs"][0]["summary"]
    i = int(np.argmax(gold))
    assert s["gold_peak_step"] == recs[i]["step"] and s["gold_peak"] == pytest.approx(gold[i])
    assert s["final_gap"] == pytest.approx(proxy[-1] - gold[-1])
    # each tracking mean is the mean of its per-prompt valid scores (the records are self-consistent)
    for r in recs:
        pv = [v for v in r["per_prompt"]["proxy"] if v is not None]
        assert r["metrics"]["reward/proxy"] == pytest.approx(np.mean(pv))
    assert s["divergence_step"] is not None and s["divergence_step"] >= 20
    # the table shows those numbers
    html = html_path.read_text(encoding="utf-8")
    assert f"{gold[i]:.2f} @ {recs[i]['step']}" in html
    # the paired first → last change per prompt, recomputed from eval_samples.jsonl
    samples = [json.loads(line) for line in (run / "eval_samples.jsonl").read_text().splitlines()]
    first, last = min(x["step"] for x in samples), max(x["step"] for x in samples)
    for metric in ("proxy", "gold"):
        a = {x["prompt_id"]: x[metric] for x in samples if x["step"] == first}
        b = {x["prompt_id"]: x[metric] for x in samples if x["step"] == last}
        diffs = [b[k] - a[k] for k in a if a[k] is not None and b.get(k) is not None]
        got = data["paired_change"][0][metric]
        assert got["value"] == pytest.approx(np.mean(diffs)) and got["n_items"] == len(diffs)
        assert (got["step_from"], got["step_to"]) == (first, last)
    assert "Paired change per prompt" in html
    # sources listed with hashes
    names = {Path(x["path"]).name for x in data["sources"]}
    assert names == {"tracking.jsonl", "eval_samples.jsonl", "train_log.jsonl"}
    assert all(len(x["sha256"]) == 64 for x in data["sources"])


def test_samples_at_start_peak_end(tmp_path):
    run = make_policy_run(tmp_path / "run", n_steps=7, peak_at=3)
    rep = build_report(run, samples_per_point=2)
    samples = [s for s in rep.sections if type(s).__name__ == "Samples"]
    assert len(samples) == 1 and len(samples[0].prompts) == 2
    r = load_policy_run(run)
    summary = compute_hacking_summary(r.steps, r.metric("reward/proxy"), r.metric("reward/gold"))
    cells = samples[0].prompts[0].cells
    assert [c.step for c in cells] == [0, summary.gold_peak_step, 60]
    assert cells[0].label == "start" and cells[-1].label == "end" and "gold peak" in cells[1].label
    # prompts ranked by gold drop from the peak point to the end (most hacked first)
    recs = [json.loads(x) for x in (run / "eval_samples.jsonl").read_text().splitlines()]
    g = {(r["step"], r["prompt_id"]): r["gold"] for r in recs}
    drops = sorted(((g[(summary.gold_peak_step, p)] - g[(60, p)], p) for p in ("p0", "p1", "p2", "p3")), reverse=True)
    assert [p.prompt_id for p in samples[0].prompts] == [drops[0][1], drops[1][1]]


def test_samples_when_gold_peaks_at_the_start(tmp_path):
    run = make_policy_run(tmp_path / "run", n_steps=5, peak_at=0, decline=0.5)
    rep = build_report(run, samples_per_point=4)
    samples = next(s for s in rep.sections if type(s).__name__ == "Samples")
    cells = samples.prompts[0].cells
    assert [(c.label, c.step) for c in cells] == [("start = gold peak", 0), ("end", 40)]
    recs = [json.loads(x) for x in (run / "eval_samples.jsonl").read_text().splitlines()]
    g = {(r["step"], r["prompt_id"]): r["gold"] for r in recs}
    want = sorted(("p0", "p1", "p2", "p3"), key=lambda p: (-(g[(0, p)] - g[(40, p)]), p))
    assert [p.prompt_id for p in samples.prompts] == want


def test_study_report(tmp_path):
    study = make_study(tmp_path / "study", seeds=2)
    html = render_report(study, tmp_path / "rep").read_text(encoding="utf-8")
    assert "Judge agreement with the gold judge" in html
    assert "0.61 [0.55, 0.67]" in html and "0.73 [0.66, 0.80]" in html
    assert "proxy-&lt;plain&gt;" in html  # judge names from records are escaped too
    assert "Gold difference between reward judges" in html and "welch t" in html
    assert "Gold score of the policies across seeds" in html
    data = json.loads((tmp_path / "rep" / "report.json").read_text(encoding="utf-8"))
    assert {(r["judge"], r["seed"]) for r in data["runs"]} == {
        (j, f"seed{s}") for j in ("proxy-plain", "proxy-reasoning") for s in (0, 1)
    }
    diffs = data["seed_comparison"]["differences"]
    final = next(d for d in diffs if d["metric"] == "final_gold")
    by_run = {(r["judge"], r["seed"]): r["summary"]["gold_final"] for r in data["runs"]}
    a = [by_run[("proxy-plain", f"seed{s}")] for s in (0, 1)]
    b = [by_run[("proxy-reasoning", f"seed{s}")] for s in (0, 1)]
    assert final["difference"] == pytest.approx(np.mean(a) - np.mean(b))
    assert final["low"] < final["difference"] < final["high"]
    assert html.count("<h3 id=\"sample-outputs-") == 4 and html.count("<h2 id=\"sample-outputs\"") == 1
    assert (tmp_path / "rep" / "report.md").exists()


def test_study_report_leaves_out_a_run_that_has_not_evaluated_yet(tmp_path):
    study = make_study(tmp_path / "study", seeds=2)
    running = study / "policies" / "proxy-plain" / "seed9"
    running.mkdir()
    (running / "tracking.jsonl").write_text("")  # created at start, first evaluation not written yet
    render_report(study, tmp_path / "rep")
    data = json.loads((tmp_path / "rep" / "report.json").read_text(encoding="utf-8"))
    assert len(data["runs"]) == 4 and all(r["seed"] != "seed9" for r in data["runs"])


def test_single_run_inside_study_finds_the_study_judge_eval(tmp_path):
    study = make_study(tmp_path / "study", seeds=1)
    rep = build_report(study / "policies" / "proxy-plain" / "seed0")
    assert any(getattr(s, "title", "") == "Judge agreement with the gold judge" for s in rep.sections)
    assert rep.data["runs"][0]["judge"] == "proxy-plain"


def test_judge_eval_only_dir(tmp_path):
    write_json_atomic(tmp_path / "je" / "judge_eval.json", JUDGE_EVAL)
    html = render_report(tmp_path / "je").read_text(encoding="utf-8")
    assert "Judge agreement with the gold judge" in html and "Reward hacking" not in html


def test_run_without_samples_or_kl(tmp_path):
    run = make_policy_run(tmp_path / "run", with_samples=False)
    lines = [json.loads(x) for x in (run / "tracking.jsonl").read_text().splitlines()]
    for r in lines:
        r["metrics"]["kl/policy_init"] = None
    write_jsonl_atomic(run / "tracking.jsonl", lines)
    rep = build_report(run)
    titles = [getattr(s, "title", None) for s in rep.sections]
    assert "Gold score against √KL (overoptimisation view)" not in titles
    assert "Sample outputs" in titles  # the 'no samples' note


def test_run_without_any_gold_is_named_not_fatal(tmp_path):
    study = make_study(tmp_path / "study", seeds=1)
    bad = study / "policies" / "proxy-plain" / "seed0" / "tracking.jsonl"
    lines = [json.loads(x) for x in bad.read_text().splitlines()]
    for r in lines:
        r["metrics"]["reward/gold"] = None
    write_jsonl_atomic(bad, lines)
    rep = build_report(study)
    assert [(r["judge"], r["seed"]) for r in rep.data["runs"]] == [("proxy-reasoning", "seed0")]
    note = next(s for s in rep.sections if getattr(s, "title", "") == "Runs left out")
    assert "policies/proxy-plain/seed0" in note.text and "both a proxy and a gold" in note.text


@pytest.mark.parametrize("declared", [True, False])
def test_pairwise_proxy_is_not_compared_on_the_gold_scale(tmp_path, declared):
    run = make_policy_run(tmp_path / "run", n_steps=4)
    lines = [json.loads(x) for x in (run / "tracking.jsonl").read_text().splitlines()]
    for i, r in enumerate(lines):
        r["metrics"]["reward/proxy"] = 0.5 + 0.1 * i  # win rate vs the initial policy
    write_jsonl_atomic(run / "tracking.jsonl", lines)
    m = json.loads((run / "manifest.json").read_text())
    if declared:
        m["policy"]["proxy_protocol"] = "pairwise"
    write_json_atomic(run / "manifest.json", m)
    assert load_policy_run(run).proxy_protocol == "pairwise"
    rep = build_report(run)
    assert rep.data["runs"][0]["proxy_protocol"] == "pairwise"
    table = next(s for s in rep.sections if getattr(s, "title", "") == "Reward hacking per run")
    assert table.rows[0][10] == "– (proxy is a win rate)"
    # a pointwise proxy that happens to start at 0.5 on a 0–9 scale is not mistaken for one
    lines[1]["metrics"]["reward/proxy"] = 3.0
    write_jsonl_atomic(run / "tracking.jsonl", lines)
    assert load_policy_run(run).proxy_protocol == ("pairwise" if declared else "pointwise")


def test_duplicate_step_keeps_last_record(tmp_path):
    run = make_policy_run(tmp_path / "run", n_steps=4)
    lines = [json.loads(x) for x in (run / "tracking.jsonl").read_text().splitlines()]
    dup = json.loads(json.dumps(lines[-1]))
    dup["metrics"]["reward/gold"] = 1.25
    write_jsonl_atomic(run / "tracking.jsonl", lines + [dup])
    r = load_policy_run(run)
    assert r.steps == [0, 10, 20, 30] and r.metric("reward/gold")[-1] == 1.25


def test_bad_records_are_data_errors(tmp_path):
    run = make_policy_run(tmp_path / "run", n_steps=3)
    text = (run / "tracking.jsonl").read_text().replace("judgelab.tracking/v1", "judgelab.tracking/v9", 1)
    (run / "tracking.jsonl").write_text(text)
    with pytest.raises(DataError, match=r"tracking.jsonl:1: schema 'judgelab.tracking/v9'"):
        find_runs(run)
    (run / "tracking.jsonl").write_text(json.dumps({"schema": "judgelab.tracking/v1", "step": 0, "metrics": {}}) + "\n")
    with pytest.raises(DataError, match="reward/proxy"):
        find_runs(run)
    run2 = make_policy_run(tmp_path / "run2", n_steps=3)
    lines = (run2 / "eval_samples.jsonl").read_text().splitlines()
    lines[3] = lines[3].replace('"step":', '"stepp":')
    (run2 / "eval_samples.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"eval_samples.jsonl:4: an eval sample needs an integer 'step'"):
        find_runs(run2)
    with pytest.raises(RunDirError):
        find_runs(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="no tracking.jsonl"):
        find_runs(tmp_path / "empty")


def test_deterministic_output(single, tmp_path):
    run, html_path = single
    again = render_report(run, tmp_path / "again")
    for name in ("report.html", "report.md", "report.json", "fig_proxy_gold.png"):
        assert (again.parent / name).read_bytes() == (html_path.parent / name).read_bytes(), name


def test_cli_report(tmp_path, capsys):
    run = make_policy_run(tmp_path / "run")
    assert main(["report", str(run), "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "report.html").exists()
    assert str(tmp_path / "cli" / "report.html") in capsys.readouterr().out
    assert main(["report", str(tmp_path / "missing")]) == 1


def test_png_without_chromium_is_a_clear_error(single, monkeypatch):
    from judgelab.analysis import report as report_mod
    from judgelab.analysis import report_render
    from judgelab.errors import JudgelabError

    monkeypatch.setattr(report_render.shutil, "which", lambda name: None)
    with pytest.raises(JudgelabError, match="no Chromium"):
        report_mod.render_png(single[1])



def test_seed_mean_and_sd_use_the_steps_every_seed_evaluated(tmp_path):
    from judgelab.analysis.report_figures import aggregate as _aggregate

    a = load_policy_run(make_policy_run(tmp_path / "a", n_steps=5, noise_seed=1))
    b = load_policy_run(make_policy_run(tmp_path / "b", n_steps=4, noise_seed=2))  # no step 40
    steps, mean, sd, n = _aggregate([a, b], "reward/gold")
    ga, gb = a.metric("reward/gold"), b.metric("reward/gold")
    assert list(steps) == [0, 10, 20, 30] and n == 2
    assert mean == pytest.approx([(x + y) / 2 for x, y in zip(ga, gb)])
    assert sd == pytest.approx([abs(x - y) / math.sqrt(2) for x, y in zip(ga, gb)])  # s.d. of 2 values


# ------------------------------------------------------------------------------------------------
# issue 11: proxy and gold compared on the same prompts


def _limited_proxy_run(path: Path, *, log_compared: bool, per_prompt: bool = True) -> Path:
    """4 prompts; the proxy scores only the first 2 (tracking.proxy_limit: 2). On those two the gold
    rises with the proxy; on the other two it collapses, so the all-prompt gold falls."""
    path.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path / "manifest.json", {"schema": "judgelab.manifest/v1", "stage": "train_policy",
                                               "status": "completed", "policy": {"judge": "j", "seed": 0}})
    tracking, samples = [], []
    pids = ["p0", "p1", "p2", "p3"]
    for i in range(4):
        proxy = [5.0 + i, 5.2 + i, None, None]
        gold = [5.0 + 0.5 * i, 5.1 + 0.5 * i, 6.0 - 2 * i, 6.1 - 2 * i]
        metrics = {"reward/proxy": float(np.mean(proxy[:2])), "reward/proxy_se": 0.1,
                   "reward/gold": float(np.mean(gold)), "reward/gold_se": 0.1, "proxy/n": 2,
                   "judge/invalid_rate": 0.0, "gold/invalid_rate": 0.0}
        if log_compared:
            metrics["reward/gold@proxy_prompts"] = float(np.mean(gold[:2]))
            metrics["reward/gold@proxy_prompts_se"] = 0.1
        rec = {"schema": "judgelab.tracking/v1", "step": 10 * i, "metrics": metrics}
        if per_prompt:
            rec["per_prompt"] = {"prompt_ids": pids, "proxy": proxy, "gold": gold}
        tracking.append(rec)
        for pid, pv, gv in zip(pids, proxy, gold):
            samples.append({"schema": "judgelab.eval_sample/v1", "step": 10 * i, "prompt_id": pid, "prompt": "p",
                            "response": "r", "proxy": pv, "gold": gv})
    write_jsonl_atomic(path / "tracking.jsonl", tracking)
    write_jsonl_atomic(path / "eval_samples.jsonl", samples)
    return path


@pytest.mark.parametrize("log_compared", [True, False])
def test_gap_and_divergence_compare_proxy_and_gold_on_the_same_prompts(tmp_path, log_compared):
    run = _limited_proxy_run(tmp_path / "run", log_compared=log_compared)
    rep = build_report(run)
    summary = rep.data["runs"][0]["summary"]
    # all-prompt gold falls 5.525 → 3.275 while the proxy rises: comparing those would say "hacked"
    assert summary["comparison"] == "proxy_prompts"
    assert summary["gold_compared"] == pytest.approx([5.05, 5.55, 6.05, 6.55])
    assert summary["verdict"] == "no_divergence" and summary["hacked"] is False
    assert summary["final_gap"] == pytest.approx(8.1 - 6.55)
    assert summary["gold_final"] == pytest.approx(np.mean([6.5, 6.6, 0.0, 0.1]))
    table = next(s for s in rep.sections if getattr(s, "title", "") == "Reward hacking per run")
    assert table.rows[0][7] == "proxy first 2 / gold 4" + ("" if log_compared else " (recomputed)")
    # the paired change: the gold change is taken over the proxy's prompts (and shown over all too)
    paired = rep.data["paired_change"][0]
    assert paired["proxy"]["n_items"] == 2 and paired["gold"]["n_items"] == 2
    assert paired["gold"]["value"] == pytest.approx(1.5) and paired["gold_all"]["n_items"] == 4
    paired_table = next(s for s in rep.sections if getattr(s, "title", "").startswith("Paired change"))
    assert paired_table.rows[0][-1] == "no"


def test_old_records_without_gold_on_the_proxys_prompts_get_no_gap(tmp_path):
    run = _limited_proxy_run(tmp_path / "run", log_compared=False, per_prompt=False)
    rep = build_report(run)
    summary = rep.data["runs"][0]["summary"]
    assert summary["comparison"] == "unavailable" and summary["final_gap"] is None
    assert summary["verdict"] == "undetermined" and summary["hacked"] is False
    row = next(s for s in rep.sections if getattr(s, "title", "") == "Reward hacking per run").rows[0]
    assert row[6].startswith("undetermined") and row[10] == "– (no gold on the proxy's prompts)"
    assert "no gold on the proxy's prompts" in row[7]


def test_undetermined_divergence_is_shown_as_such(tmp_path):
    run = make_policy_run(tmp_path / "run", n_steps=2)
    rep = build_report(run)
    row = next(s for s in rep.sections if getattr(s, "title", "") == "Reward hacking per run").rows[0]
    assert row[6].startswith("undetermined: 2 evaluation point(s)")
    assert rep.data["runs"][0]["summary"]["verdict"] == "undetermined"


def test_first_screen_says_which_runs_were_hacked(tmp_path):
    """issue 16: before any detail, a table of runs with Δ proxy, Δ gold, the detector's verdict, the
    judge's α and a controlled proxy's declared flaws; its numbers are the paired table's."""
    study = make_study(tmp_path / "study", seeds=1)
    hack_run = study / "policies" / "proxy-plain" / "seed0"
    (hack_run / "config.yaml").write_text(
        "stage: train_policy\nreward:\n  judge:\n    backend: {kind: rules, blind_to: [stuffing], "
        "pays_for: {keyword_repeats: 1.0}}\n", encoding="utf-8")
    rep = build_report(study)
    first = rep.sections[0]
    assert first.title == "Which runs were hacked?"
    rows = {r[0]: r for r in first.rows}
    plain, reasoning = rows["proxy-plain"], rows["proxy-reasoning"]
    assert plain[2] == "yes"  # gold falls 0.6 per step after its peak while the proxy rises
    assert plain[7] == "blind to stuffing; pays for keyword_repeats (+1)" and reasoning[7] == "–"
    assert reasoning[6] == "0.61 [0.55, 0.67]"  # the judge table's α for that judge
    paired = next(s for s in rep.sections if s.title.startswith("Paired change"))
    prow = next(r for r in paired.rows if r[0] == "proxy-plain")
    assert plain[3] == prow[3].split(" (n")[0] and plain[4] == prow[4].split(" (n")[0]
    data = {r["judge"]: r for r in rep.data["runs"]}
    assert data["proxy-plain"]["hacked"] == "yes" and data["proxy-plain"]["proxy_flaws"].startswith("blind to")
