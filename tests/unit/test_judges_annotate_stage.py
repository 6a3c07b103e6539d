"""annotate stage control flow with a scripted backend: records, bad rows, resume, budget."""

import json

import pytest

from judgelab.errors import DataError, InvalidOutputBudgetExceeded, RunDirError
from judgelab.stages.annotate import AnnotateConfig, run_annotate, to_labelled_record
from judgelab.store.jsonl import iter_jsonl
from judgelab.textblocks import extract_block
from judgelab.types import Completion

OPENAI = {"kind": "openai", "model": "fake", "base_urls": ["http://127.0.0.1:1/v1"]}


class WordCounter:
    """Scores = word count of the response (cap 9); pairwise prefers the longer one.

    ``fail_on``: raise when a response contains that text (simulates a crash mid-run).
    """

    def __init__(self, fail_on=None, answer=None):
        self.fail_on = fail_on
        self.answer = answer
        self.seen: list[str] = []

    @property
    def identity(self):
        return {"kind": "fake", "model": "wordcounter"}

    async def complete_many(self, requests, sampling, progress=None):
        out = []
        for msgs in requests:
            user = msgs[-1]["content"]
            resp = extract_block(user, "response")
            if resp is not None:
                self.seen.append(resp)
                if self.fail_on and self.fail_on in resp:
                    raise RuntimeError("backend crashed")
                text = self.answer or f"Score: {min(9, len(resp.split()))}"
            else:
                a, b = extract_block(user, "response_a"), extract_block(user, "response_b")
                self.seen.append(f"{a}|{b}")
                text = "Verdict: [[A]]" if len(a) >= len(b) else "Verdict: [[B]]"
            out.append(Completion(text=text, finish_reason="stop"))
        return out

    async def aclose(self):
        pass


def write_records(path, n=10, responses=1, extra_lines=()):
    with open(path, "w") as f:
        for i in range(n):
            resp = [" ".join(["w"] * (i % 9 + 1))] if responses == 1 else ["a" * (i + 1), "b" * 5]
            f.write(json.dumps({"id": f"r{i}", "prompt": f"prompt {i}", "responses": resp, "source": "test"}) + "\n")
        f.writelines(line + "\n" for line in extra_lines)


def config(tmp_path, **kw):
    data = {"input": str(tmp_path / "in.jsonl"), "judge": {"backend": OPENAI, "name": "gold"}, "chunk_size": 3}
    data.update(kw)
    return AnnotateConfig.model_validate(data)


def test_pointwise_annotation_records(tmp_path):
    write_records(tmp_path / "in.jsonl")
    res = run_annotate(config(tmp_path), tmp_path / "run", show_progress=False, backend=WordCounter())
    assert (res.total, res.computed, res.done_before, res.invalid) == (10, 10, 0, 0)
    recs = {r["id"]: r for r in iter_jsonl(res.output)}
    assert sorted(recs) == sorted(f"r{i}" for i in range(10))
    r = recs["r4"]
    assert r["score"] == 5 and r["verdict"]["score"] == 5 and r["invalid"] is False
    assert r["raw_text"] == "Score: 5" and r["prompt"] == "prompt 4"
    assert r["judge"]["name"] == "gold" and r["template"] == "pointwise-v1"
    assert r["template_hash"] == r["judge"]["template_hash"]
    assert "latency_s" in r["timings"] and r["schema"] == "judgelab.annotation/v1"
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["template_hashes"]["pointwise-v1:non_reasoning"] == r["template_hash"]
    lab = to_labelled_record(r)
    assert lab.labels.score == 5 and lab.labels.annotator == "gold"


def test_rerun_recomputes_nothing(tmp_path):
    write_records(tmp_path / "in.jsonl")
    run_annotate(config(tmp_path), tmp_path / "run", show_progress=False, backend=WordCounter())
    backend = WordCounter()
    res = run_annotate(config(tmp_path), tmp_path / "run", show_progress=False, backend=backend)
    assert (res.done_before, res.computed) == (10, 0) and backend.seen == []
    assert len(list(iter_jsonl(res.output))) == 10


def test_crash_mid_run_then_resume_exactly_once(tmp_path):
    write_records(tmp_path / "in.jsonl")
    crashing = WordCounter(fail_on="w w w w w w w")  # record r6
    with pytest.raises(RuntimeError, match="backend crashed"):
        run_annotate(config(tmp_path, concurrency=1), tmp_path / "run", show_progress=False, backend=crashing)
    done = [r["id"] for r in iter_jsonl(tmp_path / "run" / "judgements.jsonl")]
    # the failing chunk (r6-r8) is lost; chunks before it (and any that finished) are kept
    assert {"r0", "r1", "r2", "r3", "r4", "r5"} <= set(done) and not {"r6", "r7", "r8"} & set(done)
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["status"] == "failed"
    backend = WordCounter()
    res = run_annotate(config(tmp_path, concurrency=1), tmp_path / "run", show_progress=False, backend=backend)
    assert res.done_before == len(done) and res.computed == 10 - len(done)
    assert len(backend.seen) == res.computed  # only the unfinished records reached the backend
    ids = [r["id"] for r in iter_jsonl(res.output)]
    assert len(ids) == 10 and set(ids) == {f"r{i}" for i in range(10)}


def test_bad_rows_fail_with_file_and_line_before_any_work(tmp_path):
    write_records(tmp_path / "in.jsonl", n=2, extra_lines=['{"id": "bad", "prompt": ', "[1, 2]"])
    backend = WordCounter()
    with pytest.raises(DataError, match=r"in\.jsonl:3: invalid JSON"):
        run_annotate(config(tmp_path), tmp_path / "run", show_progress=False, backend=backend)
    assert backend.seen == []


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"id": "x", "prompt": "p", "responses": ["r"]}', "column 'source': missing"),
        ('{"id": "x", "prompt": 5, "responses": ["r"], "source": "s"}', "column 'prompt'"),
        ('{"id": "x", "prompt": "p", "responses": ["r", "s"], "source": "s"}', "needs 1"),
        ('{"id": "r0", "prompt": "p", "responses": ["r"], "source": "s"}', "duplicate id"),
        ('"just a string"', "expected a JSON object"),
    ],
)
def test_bad_row_messages(tmp_path, line, message):
    write_records(tmp_path / "in.jsonl", n=2, extra_lines=[line])
    with pytest.raises(DataError, match=message) as e:
        run_annotate(config(tmp_path), tmp_path / "run", show_progress=False, backend=WordCounter())
    assert "in.jsonl:3" in e.value.message


def test_skip_invalid_reports_rows(tmp_path):
    write_records(tmp_path / "in.jsonl", n=3, extra_lines=["not json", '{"id": "y", "prompt": "p", "source": "s", "responses": []}'])
    res = run_annotate(config(tmp_path, skip_invalid=True), tmp_path / "run", show_progress=False, backend=WordCounter())
    assert res.total == 3 and res.skipped_rows == 2
    skipped = list(iter_jsonl(tmp_path / "run" / "skipped_rows.jsonl"))
    assert [s["where"].rsplit(":", 1)[1] for s in skipped] == ["4", "5"]
    assert "invalid JSON" in skipped[0]["reason"] and "0 response(s)" in skipped[1]["reason"]


def test_pairwise_both_orders(tmp_path):
    write_records(tmp_path / "in.jsonl", n=8, responses=2)
    cfg = config(tmp_path, judge={"backend": OPENAI, "template": "pairwise-v1"})
    backend = WordCounter()
    res = run_annotate(cfg, tmp_path / "run", show_progress=False, backend=backend)
    assert len(backend.seen) == 16
    recs = {r["id"]: r for r in iter_jsonl(res.output)}
    assert recs["r0"]["winner"] == "B" and recs["r7"]["winner"] == "A"  # 'a'*8 longer than 'b'*5
    assert recs["r0"]["consistent"] is True and recs["r0"]["second"]["verdict"]["choice"] == "A"
    assert to_labelled_record(recs["r7"]).labels.preference == "A"


def test_parquet_input(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"id": f"p{i}", "prompt": "q", "responses": ["x y"], "source": "pq"} for i in range(4)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    res = run_annotate(config(tmp_path, input=str(tmp_path / "in.parquet")), tmp_path / "run",
                       show_progress=False, backend=WordCounter())
    assert sorted(r["score"] for r in iter_jsonl(res.output)) == [2, 2, 2, 2]


def test_invalid_budget_keeps_finished_records(tmp_path):
    write_records(tmp_path / "in.jsonl", n=12)
    cfg = config(tmp_path, concurrency=1, judge={"backend": OPENAI, "max_invalid_rate": 0.1,
                                                   "invalid_budget_min_items": 3})
    with pytest.raises(InvalidOutputBudgetExceeded):
        run_annotate(cfg, tmp_path / "run", show_progress=False, backend=WordCounter(answer="it is fine"))
    recs = list(iter_jsonl(tmp_path / "run" / "judgements.jsonl"))
    assert len(recs) == 3 and all(r["invalid"] and r["score"] is None for r in recs)
    assert recs[0]["raw_text"] == "it is fine" and "no 'Score: N' line" in recs[0]["verdict"]["invalid_reason"]


def test_other_config_in_same_run_dir_is_refused(tmp_path):
    write_records(tmp_path / "in.jsonl", n=2)
    run_annotate(config(tmp_path), tmp_path / "run", show_progress=False, backend=WordCounter())
    with pytest.raises(RunDirError):
        run_annotate(config(tmp_path, chunk_size=5), tmp_path / "run", show_progress=False, backend=WordCounter())
