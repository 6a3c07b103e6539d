"""Every source on small local files in the real formats (the shared real files: integration)."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from judgelab.data.sources import (
    AlpacaEvalSourceConfig,
    ArenaHardSourceConfig,
    ColumnMap,
    TableSourceConfig,
    TuluPreferenceSourceConfig,
    load_alpacaeval_source,
    load_arena_hard_answers,
    load_arena_hard_source,
    load_source,
    load_table_source,
    load_tulu_source,
    relabel_alpacaeval_explanation,
)
from judgelab.errors import DataError


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- Tulu 3
def _msgs(user, assistant):
    return [{"content": user, "role": "user"}, {"content": assistant, "role": "assistant"}]


def _tulu_rows():
    rows = []
    for i in range(12):
        src = "allenai/tulu-3-sft-reused-off-policy" if i % 3 else "allenai/tulu-3-wildchat-if-on-policy-8b"
        rows.append({"id": f"r{i}", "prompt": f"question {i}?", "chosen": _msgs(f"question {i}?", f"good {i}"),
                     "rejected": _msgs(f"question {i}?", f"bad {i}"), "source": src})
    multi = _msgs("first", "a1") + _msgs("second", "a2")
    rows.append({"id": "multi", "prompt": "first", "chosen": multi, "rejected": multi, "source": "tulu-3-sft-reused-off-policy"})
    return rows


def _write_tulu_parquet(path, rows):
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_tulu_parquet_off_policy_filter_and_order(tmp_path):
    p = _write_tulu_parquet(tmp_path / "train-00000-of-00001.parquet", _tulu_rows())
    src = load_tulu_source(TuluPreferenceSourceConfig(path=str(p)), seed=0)
    assert len(src.records) == 8  # 12 rows, 4 on-policy dropped; the multi-turn row skipped
    assert src.skipped == {"source_not_included": 4, "multi_turn": 1}
    positions = set()
    for r in src.records:
        i = r.id.split("r")[-1]
        assert r.meta["tulu_source"].endswith("off-policy")
        good = r.responses.index(f"good {i}")
        assert r.labels.preference == "AB"[good] and r.labels.annotator == "tulu3-mixture"
        positions.add(r.labels.preference)
    assert positions == {"A", "B"}  # chosen is not always first
    again = load_tulu_source(TuluPreferenceSourceConfig(path=str(p)), seed=0)
    assert again.records == src.records


def test_tulu_jsonl_keep_all_prompts_only(tmp_path):
    p = _jsonl(tmp_path / "t.jsonl", _tulu_rows())
    cfg = TuluPreferenceSourceConfig(path=str(p), source_include=[], keep_responses=False, single_turn_only=False)
    src = load_source(cfg)
    assert len(src.records) == 13 and all(r.responses == [] and r.labels is None for r in src.records)


def test_tulu_no_match_lists_sources_and_bad_column(tmp_path):
    p = _jsonl(tmp_path / "t.jsonl", _tulu_rows())
    with pytest.raises(DataError, match="tulu-3-wildchat-if-on-policy-8b"):
        load_tulu_source(TuluPreferenceSourceConfig(path=str(p), source_include=["nothing-like-this"]))
    rows = _tulu_rows()
    rows[1]["chosen"] = 42
    p2 = _jsonl(tmp_path / "t2.jsonl", rows)
    with pytest.raises(DataError, match=r"t2.jsonl:2: column 'chosen'"):
        load_tulu_source(TuluPreferenceSourceConfig(path=str(p2)))
    rows = _tulu_rows()
    rows[4]["prompt"] = None  # a null cell in Parquet
    p3 = _write_tulu_parquet(tmp_path / "t3.parquet", rows)
    with pytest.raises(DataError, match=r"t3.parquet row 4: column 'prompt': expected non-empty text, got None"):
        load_tulu_source(TuluPreferenceSourceConfig(path=str(p3)))
    rows = [{k: v for k, v in r.items() if k != "source"} for r in _tulu_rows()]
    p4 = _write_tulu_parquet(tmp_path / "t4.parquet", rows)
    with pytest.raises(DataError, match=r"t4.parquet row 0: column 'source': missing"):
        load_tulu_source(TuluPreferenceSourceConfig(path=str(p4)))


# ----------------------------------------------------------------------------- AlpacaEval
def _alpaca_row(pref, expl, i=0):
    return {"instruction": f"What is {i}?", "dataset": "helpful_base", "output_1": f"ref {i}",
            "generator_1": "gpt4_1106_preview", "output_2": f"model {i}", "generator_2": "alpaca-7b",
            "preference": pref, "explanation": expl, "annotator": "alpaca_eval_cot_gpt4_turbo_fn"}


def test_alpacaeval_file(tmp_path):
    rows = [
        _alpaca_row(1.0, "Model M gave more detail. Model m's response was thin.", 0),
        _alpaca_row(2.0, "Model 'm' is ranked higher for accuracy; model 'M' made errors.", 1),
        _alpaca_row(1.5, "Both models 'm' and 'M' are equivalent.", 2),
        _alpaca_row(None, None, 3),
        _alpaca_row(2.0, None, 4),
        _alpaca_row(1, "The first is better.", 5),
    ]
    p = _jsonl(tmp_path / "alpaca-7b.jsonl", rows)
    src = load_alpacaeval_source(AlpacaEvalSourceConfig(paths=[str(tmp_path)]))
    assert src.skipped == {"no_verdict": 1}
    by = {r.prompt: r for r in src.records}
    assert [by[f"What is {i}?"].labels.preference for i in (0, 1, 2, 4, 5)] == ["A", "B", "tie", "B", "A"]
    r0 = by["What is 0?"]
    assert r0.responses == ["ref 0", "model 0"] and r0.meta["generator_2"] == "alpaca-7b"
    assert r0.labels.reasoning == "Response A gave more detail. Response B was thin."
    assert r0.labels.annotator == "alpaca_eval_cot_gpt4_turbo_fn"
    assert r0.meta["explanation_raw"].startswith("Model M")
    assert by["What is 1?"].labels.reasoning.startswith("Response B is ranked higher")
    assert by["What is 1?"].meta["explanation_relabel"] == "explicit"
    assert by["What is 2?"].labels.reasoning.startswith("Both models 'm'")  # tie: mapping unknown
    assert by["What is 4?"].labels.reasoning is None
    no_ties = load_alpacaeval_source(AlpacaEvalSourceConfig(paths=[str(p)], include_ties=False))
    assert no_ties.skipped == {"no_verdict": 1, "tie": 1}


@pytest.mark.parametrize(
    "field, value, msg",
    [("output_2", 7, "column 'output_2'"), ("preference", 3.0, "outside 1..2"), ("preference", "maybe", "not A, B")],
)
def test_alpacaeval_bad_values(tmp_path, field, value, msg):
    rows = [_alpaca_row(1.0, "x"), dict(_alpaca_row(1.0, "x", 1), **{field: value})]
    _jsonl(tmp_path / "a.jsonl", rows)
    with pytest.raises(DataError, match=rf"a.jsonl:2: .*{msg}"):
        load_alpacaeval_source(AlpacaEvalSourceConfig(paths=[str(tmp_path / "a.jsonl")]))


def test_alpacaeval_missing_instruction_and_json_array(tmp_path):
    row = _alpaca_row(1.0, "x")
    del row["instruction"]
    (tmp_path / "annotations.json").write_text(json.dumps([_alpaca_row(2.0, "y"), row]))
    with pytest.raises(DataError, match=r"annotations.json\[1\]: column 'instruction': missing"):
        load_alpacaeval_source(AlpacaEvalSourceConfig(paths=[str(tmp_path / "annotations.json")]))


def test_relabel_maps_winner_to_preferred_position():
    text, how = relabel_alpacaeval_explanation("Model m was clearer than model M.", "B")
    assert (text, how) == ("Response B was clearer than response A.", "first_mention")
    text, how = relabel_alpacaeval_explanation("Model M lacks depth. Model 'm' is better overall.", "A")
    assert (text, how) == ("Response B lacks depth. Response A is better overall.", "explicit")
    text, _ = relabel_alpacaeval_explanation("Model 'M' wins; 'm's response and Model 'm's output lack steps.", "B")
    assert text == "Response B wins; Response A and Response A lack steps."
    assert relabel_alpacaeval_explanation("No names here (5 m tall).", "A") == ("No names here (5 m tall).", "unchanged")


# ----------------------------------------------------------------------------- Arena-Hard
def test_arena_hard_v2_questions_and_answers(tmp_path):
    q = _jsonl(tmp_path / "question.jsonl", [
        {"uid": "u1", "category": "hard_prompt", "subcategory": "coding", "prompt": "Write zig."},
        {"uid": "u2", "category": "creative_writing", "subcategory": "poem", "prompt": "A poem."},
        {"uid": "u3", "category": "hard_prompt", "subcategory": "math", "prompt": "Prove it."},
    ])
    a = _jsonl(tmp_path / "o3-mini.jsonl", [
        {"uid": "u1", "ans_id": "x", "model": "o3-mini", "messages": [
            {"role": "user", "content": "Write zig."},
            {"role": "assistant", "content": {"answer": "const std = @import(\"std\");"}}], "tstamp": 1.0},
        {"uid": "u2", "ans_id": "y", "model": "o3-mini", "messages": [
            {"role": "user", "content": "A poem."}, {"role": "assistant", "content": "Roses."}]},
    ])
    src = load_arena_hard_source(ArenaHardSourceConfig(questions=str(q), answers=str(a)))
    by = {r.meta["uid"]: r for r in src.records}
    assert by["u1"].responses == ['const std = @import("std");'] and by["u1"].meta["answer_model"] == "o3-mini"
    assert by["u2"].responses == ["Roses."] and by["u3"].responses == []
    assert src.skipped == {"no_answer": 1}
    hard = load_arena_hard_source(ArenaHardSourceConfig(questions=str(q), categories=["hard_prompt"]))
    assert [r.id for r in hard.records] == ["arena-u1", "arena-u3"]


def test_arena_hard_v01_format(tmp_path):
    q = _jsonl(tmp_path / "question.jsonl", [{"question_id": "q1", "cluster": "c", "turns": [{"content": "Hello?"}]}])
    a = _jsonl(tmp_path / "gpt-4-0314.jsonl", [{"question_id": "q1", "model_id": "gpt-4-0314",
                                              "choices": [{"index": 0, "turns": [{"content": "Hi!", "token_len": 2}]}]}])
    assert load_arena_hard_answers(a)["q1"].text == "Hi!"
    src = load_arena_hard_source(ArenaHardSourceConfig(questions=str(q), answers=str(a)))
    assert src.records[0].prompt == "Hello?" and src.records[0].responses == ["Hi!"]


def test_arena_hard_missing_columns(tmp_path):
    q = _jsonl(tmp_path / "question.jsonl", [{"uid": "u1", "prompt": "ok"}, {"category": "x", "prompt": "no id"}])
    with pytest.raises(DataError, match=r"question.jsonl:2: column 'uid'"):
        load_arena_hard_source(ArenaHardSourceConfig(questions=str(q)))
    a = _jsonl(tmp_path / "ans.jsonl", [{"uid": "u1", "model": "m"}])
    with pytest.raises(DataError, match=r"ans.jsonl:1: column 'messages': missing"):
        load_arena_hard_answers(a)


# ----------------------------------------------------------------------------- generic table
def test_table_jsonl_with_mapping(tmp_path):
    p = _jsonl(tmp_path / "mine.jsonl", [
        {"q": {"text": "Rate this"}, "ans": "an answer", "gold": 7, "why": "fine", "lang": "en"},
        {"q": {"text": "Rate that"}, "ans": "", "gold": None, "why": None, "lang": "de"},
    ])
    cfg = TableSourceConfig(path=str(p), columns=ColumnMap(prompt="q.text", responses=["ans"], score="gold",
                                                           reasoning="why", meta=["lang"]), annotator="me")
    src = load_table_source(cfg)
    r0, r1 = src.records
    assert (r0.prompt, r0.responses, r0.labels.score, r0.labels.reasoning, r0.labels.annotator) == (
        "Rate this", ["an answer"], 7, "fine", "me")
    assert r0.meta == {"lang": "en"} and r0.source == "mine.jsonl"
    assert r1.labels is None and r1.responses == [""]


def test_table_parquet_pairwise_and_messages_prompt(tmp_path):
    rows = [{"id": "a", "messages": [{"role": "user", "content": "Which?"}], "x": "one", "y": "two", "p": "B"},
            {"id": "b", "messages": [{"role": "user", "content": "Which 2?"}], "x": "1", "y": "2", "p": "1"}]
    p = tmp_path / "pairs.parquet"
    pq.write_table(pa.Table.from_pylist(rows), p)
    cfg = TableSourceConfig(path=str(p), name="pairs", columns=ColumnMap(prompt="messages", id="id", responses=["x", "y"], preference="p"))
    src = load_table_source(cfg)
    assert [(r.id, r.prompt, r.labels.preference) for r in src.records] == [("a", "Which?", "B"), ("b", "Which 2?", "A")]


@pytest.mark.parametrize(
    "row, columns, msg",
    [
        ({"text": "hi"}, ColumnMap(), r"t.jsonl:2: column 'prompt': missing \(the row has: text\)"),
        ({"prompt": ""}, ColumnMap(), r"t.jsonl:2: column 'prompt': expected non-empty text"),
        ({"prompt": "p", "r": "x", "s": 4.5}, ColumnMap(responses=["r"], score="s"), r"t.jsonl:2: column 's': expected an integer"),
        ({"prompt": "p", "r": "x", "s": 4}, ColumnMap(responses=["r", "r"], score="s"), r"column 's': a score needs exactly one"),
    ],
)
def test_table_errors_name_file_row_column(tmp_path, row, columns, msg):
    ok = {"prompt": "fine", "text": "t", "r": "x", "s": 1}
    p = _jsonl(tmp_path / "t.jsonl", [ok, row])
    with pytest.raises(DataError, match=msg):
        load_table_source(TableSourceConfig(path=str(p), columns=columns))


def test_table_unknown_extension_and_missing_file(tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="cannot tell the file format"):
        load_table_source(TableSourceConfig(path=str(tmp_path / "data.csv")))
    with pytest.raises(DataError, match="file not found"):
        load_table_source(TableSourceConfig(path=str(tmp_path / "nope.jsonl")))
