"""Real model provisioning: SmolLM2 GGUF -> safetensors folder, idempotence, crash recovery, CLI."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from judgelab.models.registry import MARKER_NAME, list_prepared, prepare_model
from judgelab.models.resolve import resolve_model
from judgelab.models.shipped import find_smollm2_gguf

pytestmark = pytest.mark.integration

ALIAS = "smollm2-135m-instruct"


def test_prepared_folder_is_a_complete_offline_hf_model(smollm2_hf_dir: Path) -> None:
    names = {p.name for p in smollm2_hf_dir.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
            "tokenizer_config.json", MARKER_NAME} <= names
    config = json.loads((smollm2_hf_dir / "config.json").read_text())
    assert "quantization_config" not in config  # dequantised: loads and trains as a float model
    marker = json.loads((smollm2_hf_dir / MARKER_NAME).read_text())
    gguf = find_smollm2_gguf()
    with gguf.open("rb") as f:
        assert marker["source"]["sha256"] == hashlib.file_digest(f, "sha256").hexdigest()
    assert marker["alias"] == ALIAS and marker["num_parameters"] > 100_000_000

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2_hf_dir, local_files_only=True)
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                   tokenize=False)
    assert text.endswith("<|im_start|>assistant\n")


def test_second_prepare_returns_at_once(judgelab_test_home: Path, smollm2_hf_dir: Path) -> None:
    before = (smollm2_hf_dir / MARKER_NAME).read_text()
    t0 = time.perf_counter()
    assert prepare_model(ALIAS, home=judgelab_test_home) == smollm2_hf_dir
    assert time.perf_counter() - t0 < 1.0
    assert (smollm2_hf_dir / MARKER_NAME).read_text() == before


def test_list_and_resolve_in_home(
    judgelab_test_home: Path, smollm2_hf_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUDGELAB_HOME", str(judgelab_test_home))
    rows = {m.alias: m for m in list_prepared()}
    assert rows[ALIAS].path == smollm2_hf_dir
    assert rows[ALIAS].size_bytes == sum(p.stat().st_size for p in smollm2_hf_dir.iterdir())
    assert resolve_model(ALIAS) == str(smollm2_hf_dir)


def test_half_written_folder_is_replaced_by_a_real_build(tmp_path: Path) -> None:
    """Crash recovery on a real (cheap) recipe: the tiny random Llama with SmolLM2's tokenizer."""
    alias = "smollm2-tiny-random"
    crashed = tmp_path / "models" / alias
    crashed.mkdir(parents=True)
    (crashed / "config.json").write_text('{"model_type": "lla')  # truncated mid-write
    (crashed / "model.safetensors").write_bytes(b"\0" * 100)
    path = prepare_model(alias, home=tmp_path)
    assert path == crashed.resolve()
    assert (path / MARKER_NAME).is_file()
    assert not any(p.name.startswith(".") for p in path.parent.iterdir())  # no temp dirs left

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    assert model.config.num_hidden_layers == 2
    ids = torch.tensor([tok.encode("hello world", add_special_tokens=False)])
    with torch.inference_mode():
        assert torch.isfinite(model(ids).logits).all()
    assert tok.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False).startswith(
        "<|im_start|>system"
    )


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JUDGELAB_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "judgelab.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300, check=False)


def test_cli_models_list_and_prepare(judgelab_test_home: Path, smollm2_hf_dir: Path) -> None:
    listed = _cli("models", "list", home=judgelab_test_home)
    assert listed.returncode == 0, listed.stderr
    assert ALIAS in listed.stdout and str(smollm2_hf_dir) in listed.stdout
    prepared = _cli("models", "prepare", ALIAS, home=judgelab_test_home)
    assert prepared.returncode == 0, prepared.stderr
    assert prepared.stdout.strip().splitlines()[-1] == str(smollm2_hf_dir)
    bad = _cli("models", "prepare", "no-such-alias", home=judgelab_test_home)
    assert bad.returncode == 2
    assert "unknown model alias" in bad.stderr and ALIAS in bad.stderr


@pytest.mark.slow
def test_fresh_conversion_matches_the_gguf_model(tmp_path: Path, smollm2_hf_dir: Path) -> None:
    """Convert from scratch and compare logits with transformers' direct GGUF load."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = prepare_model(ALIAS, home=tmp_path)
    gguf = find_smollm2_gguf()
    ref = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    ours = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    ids = torch.tensor([tok.encode("The quick brown fox jumps over the lazy dog.",
                                   add_special_tokens=False)])
    with torch.inference_mode():
        assert torch.equal(ref(ids).logits, ours(ids).logits)
    # and the session's (possibly reused) folder holds the same weights
    from safetensors.torch import load_file

    a, b = load_file(path / "model.safetensors"), load_file(smollm2_hf_dir / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
