"""A judge on a local model folder is identified by the folder's content, not only its path (issue 11)."""

from __future__ import annotations

import os

from judgelab.backends.hf import HFBackend
from judgelab.config.specs import HFBackendSpec, ModelSpec
from judgelab.judges.judge import Judge, JudgeSpec
from judgelab.models.fingerprint import folder_fingerprint


def _folder(path, weights: bytes):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text('{"model_type": "llama"}')
    (path / "model.safetensors").write_bytes(weights)
    return path


def _judge_id(folder) -> str:
    spec = JudgeSpec.model_validate({"backend": {"kind": "hf", "model": {"name": str(folder)}},
                                     "readout": "expected_only"})
    return Judge(spec, backend=HFBackend(HFBackendSpec(model=ModelSpec(name=str(folder))))).judge_id


def test_retrained_in_place_is_a_different_judge(tmp_path):
    folder = _folder(tmp_path / "judge" / "final", b"old weights")
    before = _judge_id(folder)
    assert _judge_id(folder) == before  # same content: same identity (the cache is reused)
    _folder(folder, b"new weights")  # train-judge rerun into the same run dir
    st = (folder / "model.safetensors").stat()
    os.utime(folder / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert _judge_id(folder) != before  # stale cached judgements of the old weights are not served


def test_fingerprint_is_content_not_path_and_ignores_sub_folders(tmp_path):
    a = _folder(tmp_path / "a", b"w")
    b = _folder(tmp_path / "b", b"w")
    assert folder_fingerprint(a) == folder_fingerprint(b)
    (a / "checkpoint-5").mkdir()
    (a / "checkpoint-5" / "optimizer.pt").write_bytes(b"big")
    assert folder_fingerprint(a) == folder_fingerprint(b)
    (b / "tokenizer_config.json").write_text('{"chat_template": "x"}')
    assert folder_fingerprint(a) != folder_fingerprint(b)
    identity = HFBackend(HFBackendSpec(model=ModelSpec(name=str(a)))).identity
    assert identity["content_sha256"] == folder_fingerprint(a) and identity["model"] == str(a.resolve())
