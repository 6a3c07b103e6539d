import json
import os

import pytest

from judgelab.errors import DataError
from judgelab.store.jsonl import (
    JsonlAppender,
    iter_jsonl,
    truncate_torn_tail,
    write_json_atomic,
    write_jsonl_atomic,
)


def test_atomic_write_roundtrip(tmp_path):
    p = tmp_path / "sub" / "a.jsonl"
    n = write_jsonl_atomic(p, [{"a": 1}, {"b": "é"}])
    assert n == 2
    assert list(iter_jsonl(p)) == [{"a": 1}, {"b": "é"}]
    assert not [x for x in p.parent.iterdir() if x.name.endswith(".tmp")]


def test_atomic_write_leaves_old_file_on_error(tmp_path):
    p = tmp_path / "a.jsonl"
    write_jsonl_atomic(p, [{"a": 1}])

    def bad():
        yield {"a": 2}
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_jsonl_atomic(p, bad())
    assert list(iter_jsonl(p)) == [{"a": 1}]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.jsonl"]


def test_torn_tail_ignored_and_truncated(tmp_path):
    p = tmp_path / "out.jsonl"
    p.write_text('{"i": 0}\n{"i": 1}\n{"i": 2, "x": "hal', encoding="utf-8")
    assert [r["i"] for r in iter_jsonl(p)] == [0, 1]
    removed = truncate_torn_tail(p)
    assert removed == len('{"i": 2, "x": "hal')
    with JsonlAppender(p) as app:
        app.append([{"i": 2}])
    assert [r["i"] for r in iter_jsonl(p)] == [0, 1, 2]


def test_appender_reopen_cuts_torn_line(tmp_path):
    p = tmp_path / "out.jsonl"
    with JsonlAppender(p) as app:
        app.append([{"i": 0}])
    with open(p, "a", encoding="utf-8") as f:
        f.write('{"i": 1')  # crash mid-write
    with JsonlAppender(p) as app:
        app.append([{"i": 1}, {"i": 2}])
    lines = p.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["i"] for x in lines] == [0, 1, 2]


def test_bad_middle_line_names_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"a": 1}\nnot json\n{"a": 2}\n', encoding="utf-8")
    with pytest.raises(DataError) as ei:
        list(iter_jsonl(p))
    assert f"{p}:2" in ei.value.message


def test_non_object_line_rejected(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(DataError, match=":1: expected a JSON object"):
        list(iter_jsonl(p))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        list(iter_jsonl(tmp_path / "nope.jsonl"))


def test_truncate_file_without_any_newline(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_bytes(b'{"a":')
    assert truncate_torn_tail(p) == 5
    assert os.path.getsize(p) == 0


def test_write_json_atomic(tmp_path):
    p = tmp_path / "m.json"
    write_json_atomic(p, {"k": [1, 2]})
    assert json.loads(p.read_text()) == {"k": [1, 2]}
