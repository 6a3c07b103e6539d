from judgelab.data.card import compute_data_card, render_data_card_md, split_card
from judgelab.data.records import Labels, Record


def _recs():
    return [
        Record(id="a", prompt="one two three", responses=["x y"], labels=Labels(score=3, annotator="g"), source="s1",
               meta={"family": "f1", "genre": "a poem", "constraints": [{"kind": "lowercase"}, {"kind": "question"}]}),
        Record(id="b", prompt="one two three four five", responses=["x y z w"], labels=Labels(score=7, reasoning="r", annotator="g"),
               source="s1", meta={"family": "f2", "genre": "a poem", "constraints": [{"kind": "lowercase"}]}),
        Record(id="c", prompt="One two three!", responses=["p", "q"], labels=Labels(preference="B"), source="s2",
               meta={"family": "f1", "genre": "a letter", "constraints": [{"kind": "title"}]}),
    ]


def test_split_card_numbers_by_hand():
    c = split_card(_recs())
    assert c["records"] == 3 and c["unique_prompts"] == 2  # "One two three!" == "one two three"
    assert c["sources"] == {"s1": 2, "s2": 1}
    assert c["prompt_words"] == {"n": 3, "min": 3, "mean": 3.67, "median": 3, "p95": 5, "max": 5}
    assert c["responses_per_record"] == {"1": 2, "2": 1}
    assert c["families"] == 2 and c["genres"] == 2
    assert c["constraint_kinds"] == {"lowercase": 2, "question": 1, "title": 1}
    assert c["constraints_per_prompt"] == {"1": 2, "2": 1}
    assert c["response_words"]["max"] == 4 and c["response_words"]["n"] == 4
    lab = c["labels"]
    assert lab["score_histogram"] == {"3": 1, "7": 1} and lab["score_mean"] == 5.0
    assert lab["preference"] == {"A": 0, "B": 1, "tie": 0}
    assert lab["with_reasoning"] == 1 and lab["annotators"] == {"g": 2, "None": 1}


def test_card_overlap_and_markdown():
    r = _recs()
    card = compute_data_card({"judge_train": r[:2], "judge_eval": [], "policy_train": [r[2]], "policy_test": []},
                             build={"seed": 3}, heldout_splits=["judge_eval", "policy_test"])
    assert card["prompt_overlap"]["judge_train&policy_train"] == 1  # same normalised prompt
    assert card["family_overlap_train_heldout"] == 0
    md = render_data_card_md(card)
    assert "| records | 2 | 0 | 1 | 0 |" in md
    assert "Prompts shared between splits: 1 (NOT disjoint)." in md
    assert "- seed: 3" in md and "scores 3: 1, 7: 1 (mean 5.0)" in md
