"""The public Python API (issue 11, item 7): ``from judgelab import ...`` works, stays light, and the
README's example runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "trl", "peft", "accelerate", "datasets")


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- api-example[^>]*-->\s*```python\n(.*?)```\s*<!-- /api-example -->", text, re.DOTALL)
    assert m, "the README's api-example block is missing"
    return m.group(1)


def test_readme_example_runs():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = _readme_example() + (
        f"\nimport sys\nprint('HEAVY', sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert re.fullmatch(r"gold score: \d", lines[0]), lines
    assert lines[1] == "verdict: diverged from step 0", lines
    assert lines[2] == "study steps: 2 judges", lines
    assert lines[-1] == "HEAVY []", lines  # the example never loads torch & co.


def test_every_exported_name_resolves_and_import_stays_light():
    code = ("import sys, judgelab\n"
            f"loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
            "names = [n for n in judgelab.__all__ if getattr(judgelab, n, None) is None]\n"
            "lazy_not_exported = sorted(set(judgelab._LAZY) - set(judgelab.__all__))\n"
            "print(loaded, names, lazy_not_exported, 'run_study' in dir(judgelab))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[] [] [] True"


def test_unknown_attribute_is_an_attribute_error():
    import judgelab

    try:
        judgelab.no_such_thing  # noqa: B018
    except AttributeError as e:
        assert "no_such_thing" in str(e)
    else:
        raise AssertionError("expected AttributeError")
