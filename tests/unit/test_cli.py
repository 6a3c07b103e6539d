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
