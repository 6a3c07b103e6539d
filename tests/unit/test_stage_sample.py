import pytest

from judgelab.config.specs import HFBackendSpec, ModelSpec, SamplingSpec
from judgelab.data.records import Record, iter_records, save_records
from judgelab.errors import DataError
from judgelab.stages.sample import SampleConfig, run_sample
from judgelab.types import Completion, Usage


class ScriptedBackend:
    """Echoes the prompt and the seed: enough to check grouping, seeds, ids and resume."""

    def __init__(self, fail_after: int | None = None):
        self.calls = []
        self.fail_after = fail_after

    @property
    def identity(self):
        return {"kind": "scripted", "model": "echo"}

    async def complete(self, messages, sampling):
        return (await self.complete_many([messages], sampling))[0]

    async def complete_many(self, requests, sampling, progress=None):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("backend died")
        self.calls.append((len(requests), sampling.seed))
        return [Completion(text=f"{m[-1]['content']} / seed {sampling.seed}", finish_reason="stop",
                           usage=Usage(3, 4)) for m in requests]

    async def aclose(self):
        pass


def _cfg(tmp_path, **kw):
    prompts = tmp_path / "prompts.jsonl"
    save_records(prompts, [Record(id=f"p{i}", prompt=f"write {i}", source="t", meta={"topic": i}) for i in range(5)])
    spec = HFBackendSpec(model=ModelSpec(name="unused"))
    return SampleConfig(prompts=str(prompts), backend=spec, sampling=SamplingSpec(temperature=1.0, seed=10), **kw)


def test_sample_n_per_prompt_with_seed_per_index(tmp_path):
    cfg = _cfg(tmp_path, n=2, chunk_size=3)
    be = ScriptedBackend()
    res = run_sample(cfg, tmp_path / "run", backend=be, show_progress=False)
    assert res.total == 10 and res.computed == 10
    recs = {r.id: r for r in iter_records(res.output)}
    assert set(recs) == {f"p{i}#{k}" for i in range(5) for k in range(2)}
    assert recs["p3#1"].responses == ["write 3 / seed 11"]
    assert recs["p3#1"].meta["prompt_id"] == "p3" and recs["p3#1"].meta["topic"] == 3
    assert recs["p0#0"].meta["backend"] == {"kind": "scripted", "model": "echo"}
    assert {seed for _, seed in be.calls} == {10, 11}


def test_sample_resumes_after_crash(tmp_path):
    cfg = _cfg(tmp_path, n=2, chunk_size=3)
    with pytest.raises(RuntimeError):
        run_sample(cfg, tmp_path / "run", backend=ScriptedBackend(fail_after=3), show_progress=False)
    partial = list(iter_records(tmp_path / "run" / "samples.jsonl"))
    assert len(partial) == 6
    be = ScriptedBackend()
    res = run_sample(cfg, tmp_path / "run", backend=be, show_progress=False)
    assert res.done_before == 6 and res.computed == 4
    ids = [r.id for r in iter_records(res.output)]
    assert len(ids) == len(set(ids)) == 10


def test_empty_prompts_file(tmp_path):
    cfg = _cfg(tmp_path)
    (tmp_path / "prompts.jsonl").write_text("")
    with pytest.raises(DataError, match="no prompts"):
        run_sample(cfg, tmp_path / "run", backend=ScriptedBackend(), show_progress=False)


def test_sample_with_world_variants(tmp_path):
    from judgelab.data.world import WorldConfig, family_ids, generate_prompts

    world = WorldConfig()
    world_prompts = generate_prompts(world, 6, family_ids()[:6], seed=3)
    prompts = tmp_path / "world.jsonl"
    save_records(prompts, world_prompts)

    class Echo(ScriptedBackend):
        async def complete_many(self, requests, sampling, progress=None):
            return [Completion(text=f"A plain answer about {m[-1]['content'][:30]}. It ends here.",
                               finish_reason="stop", usage=Usage(3, 4)) for m in requests]

    spec = HFBackendSpec(model=ModelSpec(name="unused"))
    cfg = SampleConfig(prompts=str(prompts), backend=spec, variants=["fixed", "off_topic"], seed=0)
    res = run_sample(cfg, tmp_path / "run", backend=Echo(), show_progress=False)
    recs = list(iter_records(res.output))
    base = [r for r in recs if "variant" not in r.meta]
    var = [r for r in recs if "variant" in r.meta]
    assert len(base) == 6 and {r.meta["variant"] for r in var} == {"fixed", "off_topic"}
    for r in var:
        assert r.id == f"{r.meta['variant_of']}~{r.meta['variant']}" and r.prompt in {b.prompt for b in base}
    # rerun: nothing sampled, no variant duplicated, same bytes
    before = res.output.read_bytes()
    res2 = run_sample(cfg, tmp_path / "run", backend=Echo(), show_progress=False)
    assert res2.computed == 0 and res2.output.read_bytes() == before
    # variants need world prompts
    cfg_bad = _cfg(tmp_path, variants=["fixed"])
    with pytest.raises(DataError, match="synthetic-world"):
        run_sample(cfg_bad, tmp_path / "run_bad", backend=ScriptedBackend(), show_progress=False)


def test_variants_are_cut_to_the_policy_budget(tmp_path, monkeypatch):
    """variant_max_tokens: a variant longer than the policy could write is cut to its first N tokens."""
    from judgelab.data.world import WorldConfig, family_ids, generate_prompts

    class WordTokenizer:  # one token per word: the cut is easy to check by hand
        def __call__(self, text, add_special_tokens=False):
            self.last = text.split()
            return {"input_ids": list(range(len(self.last)))}

        def decode(self, ids, skip_special_tokens=True):
            return " ".join(self.last[: len(ids)])

    def load_tokenizer(name, *a, **k):
        assert name == "policy-model"
        return WordTokenizer()

    monkeypatch.setattr("judgelab.models.tokens.load_tokenizer", load_tokenizer)
    prompts = tmp_path / "world.jsonl"
    save_records(prompts, generate_prompts(WorldConfig(), 4, family_ids()[:4], seed=3))

    class Echo(ScriptedBackend):
        async def complete_many(self, requests, sampling, progress=None):
            return [Completion(text="One two three four. Five six seven eight.", finish_reason="stop",
                               usage=Usage(3, 4)) for _ in requests]

    spec = HFBackendSpec(model=ModelSpec(name="policy-model"))
    cfg = SampleConfig(prompts=str(prompts), backend=spec, variants=["repeated", "stuffed"], seed=0,
                       variant_max_tokens=9)
    res = run_sample(cfg, tmp_path / "run", backend=Echo(), show_progress=False)
    var = [r for r in iter_records(res.output) if "variant" in r.meta]
    assert var and all(len(r.responses[0].split()) <= 9 for r in var)
    assert any(len(r.responses[0].split()) == 9 for r in var)  # the repeated ones were longer: cut
    base = [r for r in iter_records(res.output) if "variant" not in r.meta]
    assert all(r.responses[0] == "One two three four. Five six seven eight." for r in base)  # samples untouched


def test_variant_cap_needs_a_tokenizer_for_server_backends(tmp_path):
    from pydantic import ValidationError

    from judgelab.config.specs import OpenAIBackendSpec

    spec = OpenAIBackendSpec(model="m", base_urls=["http://127.0.0.1:1/v1"])
    with pytest.raises(ValidationError, match="variant_tokenizer"):
        SampleConfig(prompts="p.jsonl", backend=spec, variants=["fixed"], variant_max_tokens=48)
    SampleConfig(prompts="p.jsonl", backend=spec, variants=["fixed"], variant_max_tokens=48,
                 variant_tokenizer="smollm2-135m-instruct")
