import json

import pytest

from judgelab.data.records import (
    RECORD_SCHEMA,
    Labels,
    Record,
    load_records,
    normalize_prompt,
    prompt_hash,
    save_records,
)
from judgelab.errors import DataError


def test_roundtrip_jsonl(tmp_path):
    recs = [
        Record(id="a", prompt="Hi?", source="s"),
        Record(id="b", prompt="Rate", responses=["x"], labels=Labels(score=7, reasoning="ok", annotator="rules:easy"), source="s"),
        Record(id="c", prompt="Pick", responses=["x", "y"], labels=Labels(preference="tie"), source="s", meta={"k": [1, 2]}),
    ]
    p = tmp_path / "r.jsonl"
    assert save_records(p, recs) == 3
    lines = [json.loads(x) for x in p.read_text().splitlines()]
    assert lines[0]["schema"] == RECORD_SCHEMA
    assert next(iter(lines[0])) == "schema"
    assert load_records(p) == recs


@pytest.mark.parametrize(
    "kwargs, msg",
    [
        ({"responses": ["a", "b"], "labels": Labels(score=3)}, "score needs exactly one response"),
        ({"responses": ["a"], "labels": Labels(preference="A")}, "preference needs exactly two"),
        ({"responses": ["a", "b", "c"]}, "at most 2"),
    ],
)
def test_labels_must_match_responses(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        Record(id="x", prompt="p", source="s", **kwargs)


def test_blank_prompt_rejected():
    with pytest.raises(ValueError, match="blank"):
        Record(id="x", prompt="   ", source="s")


def test_bad_line_names_file_line_and_column(tmp_path):
    p = tmp_path / "bad.jsonl"
    good = Record(id="a", prompt="p", source="s").to_json()
    bad = dict(good, id="b")
    del bad["prompt"]
    worse = dict(good, id="c", responses="not a list")
    p.write_text(json.dumps(good) + "\n\n" + json.dumps(bad) + "\n" + json.dumps(worse) + "\n")
    with pytest.raises(DataError) as ei:
        load_records(p)
    msg = str(ei.value)
    assert f"{p}:3" in msg and "column 'prompt'" in msg and "missing" in msg

    p.write_text(json.dumps(good) + "\n" + json.dumps(worse) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2: .*column 'responses'"):
        load_records(p)


def test_unknown_column_and_bad_label_value(tmp_path):
    p = tmp_path / "x.jsonl"
    rec = Record(id="a", prompt="p", responses=["r", "s"], source="s").to_json()
    p.write_text(json.dumps(dict(rec, extra=1)) + "\n")
    with pytest.raises(DataError, match="column 'extra': unknown column"):
        load_records(p)
    p.write_text(json.dumps(dict(rec, labels={"preference": "C"})) + "\n")
    with pytest.raises(DataError, match=r"x.jsonl:1: .*column 'labels.preference'"):
        load_records(p)


def test_prompt_hash_normalises_trivial_differences():
    a = "Write a poem about the sea."
    assert prompt_hash(a) == prompt_hash("  write A poem,  about the SEA!! ")
    assert prompt_hash(a) == prompt_hash("Write a poem\nabout the sea")
    assert prompt_hash(a) != prompt_hash("Write a poem about the lake.")
    assert normalize_prompt("Ｗrite—a  POEM") == "write a poem"  # NFKC folds the full-width W
