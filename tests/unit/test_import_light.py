"""`import judgelab` and `judgelab --help` must not import torch/transformers/trl/peft."""

import subprocess
import sys

HEAVY = ("torch", "transformers", "trl", "peft", "accelerate", "datasets")


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {m.split(".")[0] for m in out}


def test_import_judgelab_is_light():
    loaded = _loaded_after("import judgelab")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_cli_help_is_light():
    code = (
        "import sys\nfrom judgelab.cli import main\n"
        "sys.argv=['judgelab','--help']\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    main(['--help'])"
    )
    loaded = _loaded_after(code)
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_training_helpers_import_light():
    """callbacks / trackers / progress import transformers or torch only when used (issue 11)."""
    loaded = _loaded_after("import judgelab.training.callbacks, judgelab.training.trackers, judgelab.training.progress")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)
