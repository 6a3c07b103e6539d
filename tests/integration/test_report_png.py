"""`judgelab report --png`: a real headless Chromium screenshots a rendered report.

Skipped without Chromium on a developer machine; failed under ``make test`` / CI, where
``JUDGELAB_TEST_REQUIRE`` names it and ``.ci/run`` installs Debian's ``chromium`` (see conftest).
"""

from __future__ import annotations

import pytest

from judgelab.cli import main
from judgelab.store.jsonl import write_json_atomic, write_jsonl_atomic

pytestmark = pytest.mark.integration


def _run_dir(path):
    """A small schema-valid policy run (docs/records.md): gold peaks at step 20, proxy keeps rising."""
    write_json_atomic(path / "manifest.json", {"stage": "train_policy", "status": "completed",
                                               "policy": {"judge": "proxy", "seed": 0}})
    gold = [5.0, 5.6, 6.1, 5.4, 4.6]
    proxy = [5.0, 5.8, 6.6, 7.5, 8.4]
    write_jsonl_atomic(path / "tracking.jsonl", [
        {"schema": "judgelab.tracking/v1", "step": 10 * i,
         "metrics": {"reward/proxy": p, "reward/gold": g, "reward/proxy_se": 0.1, "reward/gold_se": 0.1,
                     "kl/policy_init": 0.05 * i * i, "length/mean": 80.0 + 20 * i,
                     "judge/invalid_rate": 0.0, "gold/invalid_rate": 0.0}}
        for i, (p, g) in enumerate(zip(proxy, gold))
    ])
    write_jsonl_atomic(path / "eval_samples.jsonl", [
        {"schema": "judgelab.eval_sample/v1", "step": 10 * i, "prompt_id": "p0", "prompt": "Say hi.",
         "response": "hi " * (i + 1) + "<script>alert(1)</script>", "proxy": p, "gold": g, "gold_reasoning": "ok"}
        for i, (p, g) in enumerate(zip(proxy, gold))
    ])
    return path


def test_report_png_via_cli(chromium, tmp_path, capsys):
    run = _run_dir(tmp_path / "run")
    assert main(["report", str(run), "--out", str(tmp_path / "rep"), "--png"]) == 0
    png = tmp_path / "rep" / "report.png"
    assert str(png) in capsys.readouterr().out
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1200, 4000)
    # the page is not blank: a screenshot of rendered tables and figures has many distinct colours
    from PIL import Image

    with Image.open(png) as im:
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50
