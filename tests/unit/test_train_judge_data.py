"""Gold-labelled items and judge-training examples: same prompt as the Judge renders, targets the
Judge parses back to the gold verdict (and the gold trace), both orders, skips, GRPO rows/parsers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from judgelab.backends.reasoning import split_reasoning
from judgelab.data.labelled import LabelledItem, filter_by_reference, load_labelled_items
from judgelab.errors import DataError
from judgelab.judges.judge import Judge, JudgeSpec
from judgelab.judges.templates import get_template
from judgelab.judges.types import PairwiseItem, PointwiseItem
from judgelab.rewards.judge_rewards import make_pairwise_judge_reward, make_pointwise_judge_reward
from judgelab.stages.annotate import AnnotateConfig, run_annotate
from judgelab.training.judge_data import (
    build_judge_examples,
    format_target,
    grpo_rows,
    make_verdict_parser,
    swap_response_names,
)
from judgelab.types import Completion

OPENAI = {"kind": "openai", "model": "fake", "base_urls": ["http://127.0.0.1:1/v1"]}
TRACE = "Response A follows the rules.\nResponse B ignores them.\nResponse A is better."


class Replay:
    """A scripted backend: records the messages it gets and answers with given texts in turn.

    ``think=True`` splits inline think blocks off like the hf backend does for Qwen3-style models.
    """

    def __init__(self, answers: list[str], think: bool = False) -> None:
        self.answers = list(answers)
        self.think = think
        self.seen: list[list[dict[str, str]]] = []

    @property
    def identity(self):
        return {"kind": "fake", "model": "replay"}

    async def complete_many(self, requests, sampling, progress=None):
        out = []
        for msgs in requests:
            self.seen.append([dict(m) for m in msgs])
            text = self.answers.pop(0)
            answer, reasoning = split_reasoning(text) if self.think else (text, None)
            out.append(Completion(text=answer, reasoning=reasoning, finish_reason="stop"))
        return out

    async def aclose(self):
        pass


def pointwise_item(score=7, reasoning=TRACE, **kw) -> LabelledItem:
    return LabelledItem(id=kw.pop("id", "x1"), protocol="pointwise", instruction="Write a haiku.",
                        responses=("old pond / a frog",), score=score, reasoning=reasoning, **kw)


def pairwise_item(choice="A", reasoning=TRACE, swapped=None, **kw) -> LabelledItem:
    return LabelledItem(id=kw.pop("id", "p1"), protocol="pairwise", instruction="Write a haiku.",
                        responses=("old pond / a frog", "no."), choice=choice, reasoning=reasoning,
                        reasoning_swapped=swapped, **kw)


# ---------------------------------------------------------------------------- loading
class WordCounter:
    """Gold: score = words (cap 9), reasoning text; pairwise prefers the longer response."""

    @property
    def identity(self):
        return {"kind": "fake", "model": "wc"}

    async def complete_many(self, requests, sampling, progress=None):
        from judgelab.textblocks import extract_block

        out = []
        for msgs in requests:
            user = msgs[-1]["content"]
            resp = extract_block(user, "response")
            if resp is not None:
                n = min(9, len(resp.split()))
                out.append(Completion(text=f"Score: {n}", reasoning=f"counted {n} words", finish_reason="stop"))
            else:
                a, b = extract_block(user, "response_a"), extract_block(user, "response_b")
                if a == b:
                    out.append(Completion(text="no verdict", reasoning="same", finish_reason="stop"))
                    continue
                c = "A" if len(a) > len(b) else "B"
                out.append(Completion(text=f"Verdict: [[{c}]]", reasoning=f"{a[:3]} vs {b[:3]}: {c}",
                                      finish_reason="stop"))
        return out

    async def aclose(self):
        pass


def annotate(tmp_path: Path, rows: list[dict], template: str, name="gold", effort=None) -> Path:
    inp = tmp_path / f"in-{template}.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    judge = {"backend": OPENAI, "name": name, "template": template, "mode": "reasoning"}
    if effort:
        judge["sampling"] = {"reasoning_effort": effort}
    cfg = AnnotateConfig.model_validate({"input": str(inp), "judge": judge})
    res = run_annotate(cfg, tmp_path / f"gold-{template}-{effort}", show_progress=False, backend=WordCounter())
    return res.output


def test_load_pointwise_annotations(tmp_path):
    rows = [{"id": f"r{i}", "prompt": f"p{i}", "responses": [" ".join(["w"] * (i + 1))], "source": "t",
             "meta": {"rubric": f"rubric {i}"}} for i in range(4)]
    out = annotate(tmp_path, rows, "pointwise-v1", effort="low")
    loaded = load_labelled_items(out)
    assert loaded.kind == "annotations" and loaded.protocol == "pointwise"
    by_id = loaded.by_id()
    assert [by_id[f"r{i}"].score for i in range(4)] == [1, 2, 3, 4]
    it = by_id["r2"]
    assert it.reasoning == "counted 3 words" and it.annotator == "gold" and it.effort == "low"
    assert it.rubric("rubric") == "rubric 2" and it.rubric("other") is None
    assert load_labelled_items(out, limit=2).items[1].id == "r1"


def test_load_pairwise_annotations_keeps_second_order_trace_and_skips_invalid(tmp_path):
    rows = [
        {"id": "a", "prompt": "p", "responses": ["long answer", "short"], "source": "t"},
        {"id": "b", "prompt": "p", "responses": ["x", "longer y"], "source": "t"},
        {"id": "same", "prompt": "p", "responses": ["z", "z"], "source": "t"},  # gold gives no verdict
    ]
    loaded = load_labelled_items(annotate(tmp_path, rows, "pairwise-v1"))
    assert loaded.skipped == {"gold_invalid": 1}
    a, b = loaded.by_id()["a"], loaded.by_id()["b"]
    assert (a.choice, b.choice) == ("A", "B")
    assert a.reasoning == "lon vs sho: A"  # first order (A, B)
    assert a.reasoning_swapped == "sho vs lon: B"  # the gold's own trace of the swapped order


def test_load_labelled_records_and_errors(tmp_path):
    recs = [
        {"id": "r1", "prompt": "p", "responses": ["a", "b"], "source": "s",
         "labels": {"preference": "B", "reasoning": "B is better", "annotator": "gpt4"}},
        {"id": "r2", "prompt": "p", "responses": ["a", "b"], "source": "s"},  # unlabelled
        {"id": "r3", "prompt": "p", "responses": ["a", "b"], "source": "s", "labels": {"preference": "tie"}},
    ]
    path = tmp_path / "recs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    loaded = load_labelled_items(path)
    assert loaded.kind == "records" and [i.id for i in loaded.items] == ["r1", "r3"]
    assert loaded.skipped == {"no_label": 1}
    assert loaded.items[0].choice == "B" and loaded.items[0].reasoning == "B is better"
    assert loaded.items[0].annotator == "gpt4" and loaded.items[1].label == "tie"

    dup = tmp_path / "dup.jsonl"
    dup.write_text(json.dumps(recs[0]) + "\n" + json.dumps(recs[0]) + "\n")
    with pytest.raises(DataError, match=r"dup.jsonl:2: duplicate id 'r1'"):
        load_labelled_items(dup)
    mixed = tmp_path / "mixed.jsonl"
    point = {"id": "q", "prompt": "p", "responses": ["a"], "source": "s", "labels": {"score": 3}}
    mixed.write_text(json.dumps(recs[0]) + "\n" + json.dumps(point) + "\n")
    with pytest.raises(DataError, match="pointwise item in a file of pairwise"):
        load_labelled_items(mixed)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "q", "prompt": "p", "source": "s", "labels": {"score": 3}}) + "\n")
    with pytest.raises(DataError, match="bad.jsonl:1"):
        load_labelled_items(bad)
    with pytest.raises(DataError, match="not found"):
        load_labelled_items(tmp_path / "missing.jsonl")


def test_filter_by_reference_keeps_matching_verdicts():
    items = [pointwise_item(3, id="a"), pointwise_item(5, id="b"), pointwise_item(7, id="c")]
    ref = [pointwise_item(3, id="a"), pointwise_item(6, id="b")]
    kept, dropped = filter_by_reference(items, ref)
    assert [i.id for i in kept] == ["a"]
    assert dropped == {"verdict_differs": 1, "not_in_reference": 1}


# ---------------------------------------------------------------------------- examples
def judge_messages(template: str, mode: str, item) -> list[dict[str, str]]:
    """The messages the real Judge sends for ``item`` (captured by a scripted backend)."""
    backend = Replay(["Score: 1"] if template.startswith("pointwise") else ["Verdict: [[A]]"] * 2)
    judge = Judge(JudgeSpec(backend=OPENAI, template=template, mode=mode), backend=backend)
    if isinstance(item, PointwiseItem):
        asyncio.run(judge.score_pointwise([item]))
    else:
        asyncio.run(judge.score_pairwise([item], both_orders=True))
    return backend.seen


@pytest.mark.parametrize("mode,target_kind", [("non_reasoning", "verdict"), ("reasoning", "trace")])
def test_pointwise_prompt_is_the_judges_prompt(mode, target_kind):
    it = pointwise_item()
    [ex], skipped = build_judge_examples([it], get_template("pointwise-v1", mode), target=target_kind)
    assert not skipped
    assert ex.messages == judge_messages("pointwise-v1", mode, PointwiseItem(it.instruction, it.responses[0]))[0]
    assert ex.gold == 7 and ex.order == "single"
    assert ex.target == ("Score: 7" if target_kind == "verdict" else f"{TRACE}\n\nScore: 7")


def test_pairwise_examples_cover_both_orders_with_the_judges_prompts():
    it = pairwise_item("A", swapped="Response A is empty. Response B is better.")
    tpl = get_template("pairwise-v1", "reasoning")
    exs, _ = build_judge_examples([it], tpl, target="trace")
    seen = judge_messages("pairwise-v1", "reasoning", PairwiseItem(it.instruction, *it.responses))
    assert [e.order for e in exs] == ["ab", "ba"]
    assert [e.messages for e in exs] == seen  # order 2 = responses swapped, as Judge sends it
    assert [e.gold for e in exs] == ["A", "B"]
    assert exs[1].target == "Response A is empty. Response B is better.\n\nVerdict: [[B]]"
    given, _ = build_judge_examples([it], get_template("pairwise-v1", "non_reasoning"), target="verdict",
                                    orders="given")
    assert [(e.order, e.target) for e in given] == [("ab", "Verdict: [[A]]")]


def test_pairwise_swapped_trace_renames_responses_when_gold_has_one_order():
    it = pairwise_item("B", reasoning="Response B's answer is complete; response A is not. Responses A and B differ.")
    exs, _ = build_judge_examples([it], get_template("pairwise-v1", "reasoning"), target="trace")
    assert exs[1].gold == "A"
    assert exs[1].trace == "Response A's answer is complete; response B is not. Responses B and A differ."
    assert swap_response_names("Output A vs Assistant B, A+B") == "Output B vs Assistant A, A+B"
    assert swap_response_names("responses B or A; Response A's") == "responses A or B; Response B's"
    assert swap_response_names("Response Alpha, Response AB") == "Response Alpha, Response AB"


def test_skips_ties_missing_traces_and_rubrics():
    tpl = get_template("pairwise-v1", "reasoning")
    exs, skipped = build_judge_examples(
        [pairwise_item("tie", id="t"), pairwise_item("A", reasoning=None, id="n"), pairwise_item("B", id="ok")],
        tpl, target="trace",
    )
    assert skipped == {"gold_tie": 1, "no_trace": 2}
    assert [(e.id, e.order) for e in exs] == [("ok", "ab"), ("ok", "ba")]
    rub = get_template("pointwise-rubric-v1", "non_reasoning")
    exs, skipped = build_judge_examples(
        [pointwise_item(id="a", meta={"rubric": "1. rhymes"}), pointwise_item(id="b")], rub, target="verdict"
    )
    assert skipped == {"no_rubric": 1} and [e.id for e in exs] == ["a"]
    assert "1. rhymes" in exs[0].messages[1]["content"]


def test_gold_score_outside_range_is_an_error():
    with pytest.raises(DataError, match="outside 0..5"):
        build_judge_examples([pointwise_item(7)], get_template("pointwise-v1"), target="verdict", score_max=5)
    with pytest.raises(DataError, match="is pairwise but template"):
        build_judge_examples([pairwise_item()], get_template("pointwise-v1"), target="verdict")


@pytest.mark.parametrize("think", ["plain", "think_tags"])
@pytest.mark.parametrize("protocol", ["pointwise", "pairwise"])
def test_distill_target_is_read_back_by_the_judge_as_gold_verdict_and_trace(think, protocol):
    """The target, produced by the model at use time, parses to the gold verdict, with the trace as
    the judgement's reasoning (think_tags: split off by the backend; plain: text before the line)."""
    if protocol == "pointwise":
        it, tpl = pointwise_item(4), get_template("pointwise-v1", "reasoning")
    else:
        it, tpl = pairwise_item("B"), get_template("pairwise-v1", "reasoning")
    exs, _ = build_judge_examples([it], tpl, target="trace", think=think)
    if think == "think_tags":
        assert exs[0].target.startswith("<think>\n") and "\n</think>\n\n" in exs[0].target
    backend = Replay([e.target for e in exs], think=think == "think_tags")
    judge = Judge(JudgeSpec(backend=OPENAI, template=tpl.name, mode="reasoning"), backend=backend)
    if protocol == "pointwise":
        [j] = asyncio.run(judge.score_pointwise([PointwiseItem(it.instruction, it.responses[0])]))
        assert j.verdict.score == 4
        assert j.reasoning == TRACE
    else:
        [b] = asyncio.run(judge.score_pairwise([PairwiseItem(it.instruction, *it.responses)]))
        assert b.winner == "B" and b.consistent
        assert b.first.reasoning == TRACE


def test_trace_with_its_own_think_tags_is_rewrapped_once():
    assert format_target("Score: 1", "why", "plain") == "why\n\nScore: 1"
    it = pointwise_item(1, reasoning="<think>\nwhy\n</think>")
    [ex], _ = build_judge_examples([it], get_template("pointwise-v1", "reasoning"), target="trace", think="think_tags")
    assert ex.target == "<think>\nwhy\n</think>\n\nScore: 1"


# ---------------------------------------------------------------------------- GRPO
def test_verdict_parser_reads_like_the_judge():
    p = make_verdict_parser("pointwise", 0, 9)
    assert p("reasoning\nScore: 3") == 3
    assert p("<think>Score: 9</think>\nScore: 2") == 2
    assert p("<think>Score: 9</think>") is None  # only inside the think block
    assert p("Score: 12") is None and p("no verdict") is None
    assert p("Score: 4\nScore: 5") == 5
    q = make_verdict_parser("pairwise")
    assert q("Verdict: [[B]]") == "B" and q("Verdict: [[C]]") is None


def test_grpo_rows_feed_the_judge_rewards():
    tpl = get_template("pointwise-v1", "reasoning")
    exs, _ = build_judge_examples([pointwise_item(7, id="a"), pointwise_item(0, id="b")], tpl, target="verdict")
    rows = grpo_rows(exs, "pointwise")
    assert rows[0]["gold_score"] == 7 and rows[0]["prompt"] == exs[0].messages and rows[1]["pair_id"] == "b"
    reward = make_pointwise_judge_reward(make_verdict_parser("pointwise"))
    got = reward([r["prompt"] for r in rows], ["Score: 7", "x\nScore: 9"], gold_score=[7, 0])
    assert got == [1.0, (81 - 81) / 81]
    assert reward([rows[0]["prompt"]], ["nothing"], gold_score=[7]) == [-1.0]

    ptpl = get_template("pairwise-v1", "non_reasoning")
    pex, _ = build_judge_examples([pairwise_item("A")], ptpl, target="verdict")
    prow = grpo_rows(pex, "pairwise")
    assert [r["gold_choice"] for r in prow] == ["A", "B"] and {r["pair_id"] for r in prow} == {"p1"}
    both = make_pairwise_judge_reward(make_verdict_parser("pairwise"), require_both_orders=True)
    prompts = [r["prompt"] for r in prow]
    # right in order 1, wrong in order 2 → neither rollout is rewarded; both right → both are
    assert both(prompts, ["Verdict: [[A]]", "Verdict: [[A]]"], gold_choice=["A", "B"], pair_id=["p1", "p1"]) == [0.0, 0.0]
    assert both(prompts, ["Verdict: [[A]]", "Verdict: [[B]]"], gold_choice=["A", "B"], pair_id=["p1", "p1"]) == [1.0, 1.0]
