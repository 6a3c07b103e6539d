import random

import pytest

from judgelab.data.records import Record
from judgelab.data.splits import (
    SPLIT_NAMES,
    HoldoutSpec,
    SplitSizes,
    assign_splits,
    check_disjoint,
    partition_groups,
)
from judgelab.errors import DataError


def _records(n_prompts=60, copies=3, families=10):
    """Prompts with several records each (like AlpacaEval: one instruction, many judged pairs),
    with trivially different spellings of the same prompt mixed in."""
    out = []
    for i in range(n_prompts):
        for k in range(copies):
            text = f"Prompt number {i} please" if k % 2 == 0 else f"prompt NUMBER {i}, please!"
            out.append(Record(id=f"p{i}-{k}", prompt=text, responses=["a", "b"], source="t", meta={"family": f"f{i % families}"}))
    return out


def _ids(result):
    return {n: [r.id for r in recs] for n, recs in result.splits.items()}


def test_disjoint_sizes_and_units():
    recs = _records()
    sizes = SplitSizes(judge_train=40, judge_eval=10, policy_train=20, policy_test=5)
    res = assign_splits(recs, sizes, seed=0)
    assert {n: len(v) for n, v in res.splits.items()} == {
        "judge_train": 40, "judge_eval": 10, "policy_train": 20, "policy_test": 5
    }
    assert all(v == 0 for v in check_disjoint(res.splits).values())
    # policy splits: one record per prompt
    for n in ("policy_train", "policy_test"):
        assert len({r.prompt_hash for r in res.splits[n]}) == len(res.splits[n])
    # judge splits take whole prompt groups (3 records each), trimming only the last one
    hashes = [r.prompt_hash for r in res.splits["judge_eval"]]
    assert len(set(hashes)) == 4  # 3 + 3 + 3 + 1
    total_used = sum(len(v) for v in res.splits.values())
    assert total_used + res.unused_records == len(recs)


def test_reproducible_by_seed_and_independent_of_input_order():
    recs = _records()
    sizes = SplitSizes(judge_train=30, judge_eval=9, policy_train=10, policy_test=5)
    a = assign_splits(recs, sizes, seed=1)
    shuffled = list(recs)
    random.Random(5).shuffle(shuffled)
    b = assign_splits(shuffled, sizes, seed=1)
    assert {n: {r.prompt_hash for r in v} for n, v in a.splits.items()} == {
        n: {r.prompt_hash for r in v} for n, v in b.splits.items()
    }
    assert _ids(assign_splits(recs, sizes, seed=1)) == _ids(a)
    assert _ids(assign_splits(recs, sizes, seed=2)) != _ids(a)


def test_rest_split_takes_everything_left():
    recs = _records(n_prompts=20, copies=1)
    res = assign_splits(recs, SplitSizes(judge_train=5, judge_eval=2, policy_train=None, policy_test=3), seed=0)
    assert len(res.splits["policy_train"]) == 20 - 10
    assert res.unused_records == 0


def test_not_enough_data_names_the_split():
    recs = _records(n_prompts=5, copies=1)
    with pytest.raises(DataError, match="policy_train: 10 prompts asked, 2 left"):
        assign_splits(recs, SplitSizes(judge_train=1, judge_eval=1, policy_train=10, policy_test=1), seed=0)


def test_only_one_rest_split():
    with pytest.raises(ValueError, match="only one split can be null"):
        SplitSizes(judge_train=None, policy_train=None)


def test_holdout_keeps_families_apart():
    recs = _records(n_prompts=100, copies=1, families=20)
    hold = HoldoutSpec(fraction=0.25)
    res = assign_splits(recs, SplitSizes(judge_train=30, judge_eval=10, policy_train=30, policy_test=10), seed=3, holdout=hold)
    fam = {n: {r.meta["family"] for r in v} for n, v in res.splits.items()}
    train = fam["judge_train"] | fam["policy_train"]
    held = fam["judge_eval"] | fam["policy_test"]
    assert train and held and not (train & held)
    assert set(res.test_groups) >= held and len(res.test_groups) == 5
    assert all(v == 0 for v in check_disjoint(res.splits).values())


def test_holdout_with_fixed_test_groups_and_missing_key():
    recs = _records(n_prompts=40, copies=1, families=4)
    res = assign_splits(recs, SplitSizes(judge_train=5, judge_eval=5, policy_train=5, policy_test=5), seed=0,
                        holdout=HoldoutSpec(), test_groups=["f1"])
    assert {r.meta["family"] for r in res.splits["judge_eval"] + res.splits["policy_test"]} == {"f1"}
    bad = recs + [Record(id="nofam", prompt="other", source="t", meta={})]
    with pytest.raises(DataError, match="lack it"):
        assign_splits(bad, SplitSizes(), seed=0, holdout=HoldoutSpec())


def test_holdout_ignored_when_no_record_has_the_key():
    recs = [Record(id=str(i), prompt=f"q {i}", source="t") for i in range(30)]
    res = assign_splits(recs, SplitSizes(judge_train=5, judge_eval=5, policy_train=5, policy_test=5), seed=0, holdout=HoldoutSpec())
    assert res.test_groups == [] and sum(len(v) for v in res.splits.values()) == 20


def test_partition_groups_is_seeded_and_order_free():
    groups = [f"g{i}" for i in range(50)]
    tr, te = partition_groups(groups, 0.2, seed=0)
    assert len(te) == 10 and not set(tr) & set(te) and set(tr) | set(te) == set(groups)
    assert partition_groups(reversed(groups), 0.2, seed=0) == (tr, te)
    assert partition_groups(groups, 0.2, seed=1) != (tr, te)
    with pytest.raises(DataError):
        partition_groups(["only"], 0.5, 0)


def test_split_names_are_the_four_study_splits():
    assert SPLIT_NAMES == ("judge_train", "judge_eval", "policy_train", "policy_test")
