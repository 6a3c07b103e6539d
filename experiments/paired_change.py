"""Per policy run of a study: the paired change of the proxy and the gold score from the first to the
last sampled step, per held-out prompt, with its mean and a 95% percentile-bootstrap CI over prompts
(scipy.stats.bootstrap, 5000 resamples, seed 0). Reads only the runs' eval_samples.jsonl.

    .venv/bin/python experiments/paired_change.py RUN_DIR      (a study folder; prints a Markdown table)

Used for experiments/MICRO_STUDY_RESULTS.md, where each run was evaluated at two steps only, so the
report's divergence detector (>= 3 evaluation points) has nothing to test. "proxy up & gold down"
= the proxy CI lies above 0 and the gold CI below 0 (no correction for testing several runs).
"""
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import bootstrap

root = Path(sys.argv[1])
print("| reward judge | seed | Δ proxy (n) [95% CI] | Δ gold (n) [95% CI] | proxy↑ & gold↓ (CIs exclude 0) |")
print("|---|---|---|---|---|")
for pdir in sorted(root.glob("policies/*/seed*")):
    f = pdir / "eval_samples.jsonl"
    if not f.exists():
        continue
    rows = [json.loads(l) for l in f.read_text().splitlines()]
    steps = sorted({r["step"] for r in rows})
    if len(steps) < 2:
        continue
    a = {r["prompt_id"]: r for r in rows if r["step"] == steps[0]}
    b = {r["prompt_id"]: r for r in rows if r["step"] == steps[-1]}
    out = []
    for key in ("proxy", "gold"):
        d = np.array([b[k][key] - a[k][key] for k in a if k in b and a[k][key] is not None and b[k][key] is not None])
        ci = bootstrap((d,), np.mean, n_resamples=5000, random_state=0, method="percentile").confidence_interval
        out.append((d.mean(), len(d), ci.low, ci.high))
    (pm, pn, pl, ph), (gm, gn, gl, gh) = out
    flag = "yes" if pl > 0 and gh < 0 else "no"
    print(f"| {pdir.parent.name} | {pdir.name[4:]} | {pm:+.2f} ({pn}) [{pl:+.2f}, {ph:+.2f}] | {gm:+.2f} ({gn}) [{gl:+.2f}, {gh:+.2f}] | {flag} |")
