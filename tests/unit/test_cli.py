import subprocess
import sys

import pytest

from judgelab.cli import main


def test_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    assert "judgelab" in capsys.readouterr().out


def test_unknown_command_is_usage_error():
    assert main(["no-such-command"]) == 2


def test_missing_config_is_config_error(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "none.yaml")]) == 2
    err = capsys.readouterr().err
    assert "config file not found" in err and "hint:" in err and "Traceback" not in err


def test_unknown_stage(tmp_path, capsys):
    p = tmp_path / "c.yaml"
    p.write_text("stage: nonsense\n")
    assert main(["validate", str(p)]) == 2
    assert "unknown or missing stage" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--help"], ["version"]])
def test_console_script_runs(args):
    r = subprocess.run([sys.executable, "-m", "judgelab.cli", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_the_override_example_in_the_help_is_a_valid_override(capsys, monkeypatch):
    """issue 11: the help's example (it said policy.lr=1e-6) must be a field that exists."""
    from pathlib import Path

    from judgelab.cli import OVERRIDE_EXAMPLE

    monkeypatch.setenv("COLUMNS", "200")
    assert main(["train-policy", "--help"]) == 0
    assert f"e.g. {OVERRIDE_EXAMPLE}" in capsys.readouterr().out
    root = Path(__file__).resolve().parents[2] / "experiments"
    for cfg in (root / "cpu" / "train_policy.yaml", root / "judges" / "cpu_sft.yaml"):
        key = OVERRIDE_EXAMPLE if "policy" in cfg.name else "recipe." + OVERRIDE_EXAMPLE
        assert main(["validate", str(cfg), key]) == 0
        assert "learning_rate: 1.0e-06" in capsys.readouterr().out
    assert main(["validate", str(root / "cpu" / "train_policy.yaml"), "policy.lr=1e-6"]) == 2  # the old example
