"""``study`` stage (L4): the whole experiment as one command, ``judgelab run study.yaml``.

Reads top to bottom like the paper's pipeline::

    data build ─► sample (judge-train / judge-eval pools) ─► gold annotate
      ─► train each proxy judge ─► evaluate judges vs held-out gold
      ─► train one policy per (judge, seed), tracking proxy + gold ─► report

Every step is an ordinary stage run in its own sub-folder of the study folder (``data/``,
``samples/judge_train/``, ``gold/judge_eval/``, ``judges/<name>/``, ``judge_eval/``,
``policies/<judge>/seed<k>/``, ``report/``). A step whose folder already holds a *completed* run of
the *same* config is skipped; an interrupted one resumes (each stage is resumable on its own); a
folder holding a different config is an error (``RunDirError``) so results never mix. Rerunning the
same command after a crash therefore continues where it stopped.

The study config holds each stage's own settings; the paths that link stages (which split feeds
which stage, which judge rewards which policy) are filled in here, in one place. Sub-configs are
validated when the study config is loaded, so ``judgelab validate study.yaml`` catches a bad field
in any stage before anything runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from judgelab.config.loader import validate_config
from judgelab.config.specs import BackendSpec, SamplingSpec, StrictModel
from judgelab.config.stage import StageConfig
from judgelab.data.world.variants import VariantKind
from judgelab.errors import ConfigError
from judgelab.judges.judge import JudgeSpec
from judgelab.store.rundir import RunDir

logger = logging.getLogger(__name__)

STAGE = "study"
_PLACEHOLDER = "<set-by-study>"


class StudySampleSpec(StrictModel):
    """The response pool the gold labels: ``n`` samples per judge-train / judge-eval prompt."""

    backend: BackendSpec
    sampling: SamplingSpec = SamplingSpec(temperature=1.0, top_p=0.95, max_tokens=64, seed=0)
    n: int = Field(2, ge=1, description="responses per prompt")
    system_prompt: str | None = None
    chunk_size: int = Field(16, ge=1)
    variants: list[VariantKind] = Field(
        default_factory=list,
        description="synthetic world: rewritten copies of each judge-train/judge-eval response "
        "(fixed, partial, truncated, stuffed, repeated, off_topic) to spread the gold score; "
        "never applied to policy prompts",
    )
    variant_max_tokens: int | None = Field(
        None, ge=1, description="cut variants to the policy's budget (see the sample stage)"
    )
    variant_tokenizer: str | None = None


class StudyJudge(StrictModel):
    """One proxy judge: ``train`` = a train-judge config body (``stage``/``data``/``seed`` are set
    here), or ``spec`` = a fixed judge used as it is, not trained — e.g. a controlled proxy (the
    rules gold with declared blind spots) or the gold itself as a negative control."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$")
    train: dict[str, Any] | None = None
    spec: JudgeSpec | None = Field(None, description="a fixed judge (no training step)")
    role: Literal["proxy", "control"] = Field(
        "proxy", description="control: a judge whose flaws are known (a positive or negative control)"
    )

    @model_validator(mode="after")
    def _one_source(self) -> StudyJudge:
        if (self.train is None) == (self.spec is None):
            raise ValueError(f"judge {self.name!r}: give exactly one of train: (a train-judge body) or spec: (a fixed judge)")
        return self

    @property
    def trained(self) -> bool:
        return self.train is not None


class StudyEvalJudges(StrictModel):
    limit: int | None = Field(None, ge=1, description="evaluate on the first N held-out gold items")
    extra: list[dict[str, Any]] = Field(
        default_factory=list, description="more eval-judge entries (e.g. the untrained base model)"
    )
    body: dict[str, Any] = Field(default_factory=dict, description="other eval-judge fields (bootstrap, ...)")


class StudyPolicies(StrictModel):
    """One GRPO policy per (judge, seed): a train-policy config body without the linking paths."""

    judges: list[str] | None = Field(None, description="judge names to train against; None = all")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    train: dict[str, Any] = Field(..., description="train-policy body: policy, train, tracking, ...")
    reward: dict[str, Any] = Field(
        default_factory=lambda: {"kind": "pointwise"},
        description="reward spec without judge (kind, invalid policy, ...)",
    )
    judge_overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="per judge name: JudgeSpec fields to change when it rewards a policy "
        "(e.g. a shorter reasoning budget on CPU)",
    )


class StudyConfig(StageConfig):
    """The whole study; see the module docstring."""

    stage: Literal["study"] = "study"
    data: dict[str, Any] = Field(default_factory=dict, description="data-build config body")
    sample: StudySampleSpec
    gold: JudgeSpec
    judges: list[StudyJudge] = Field(..., min_length=1)
    eval_judges: StudyEvalJudges = Field(default_factory=StudyEvalJudges)
    policies: StudyPolicies | None = None
    report: bool = True

    @model_validator(mode="after")
    def _check_sub_configs(self) -> StudyConfig:
        names = [j.name for j in self.judges]
        if len(set(names)) != len(names):
            raise ValueError(f"judge names must be unique: {names}")
        if self.policies and self.policies.judges:
            unknown = sorted(set(self.policies.judges) - set(names))
            if unknown:
                raise ValueError(f"policies.judges names {unknown} are not among judges {names}")
        # Validate every sub-config now, with placeholder paths, so errors surface before running.
        plan = StudyPlan(self, Path(_PLACEHOLDER))
        for step in plan.steps(validate_only=True):
            step.build()
        return self


# ------------------------------------------------------------------------------------ plan
@dataclass
class Step:
    """One stage of the study: its name, folder, config builder and run function."""

    name: str
    run_dir: Path
    build: Callable[[], BaseModel]
    run: Callable[[Any, Path], Any]


def _sub(data: dict[str, Any], schema: type[BaseModel], where: str) -> Any:
    try:
        return validate_config(data, schema, source=f"study: {where}")
    except ConfigError as e:
        raise ValueError(e.message) from None


@dataclass
class StudyPlan:
    cfg: StudyConfig
    root: Path
    _trained_specs: dict[str, JudgeSpec] = field(default_factory=dict)

    # paths --------------------------------------------------------------
    def split(self, name: str) -> Path:
        from judgelab.stages.data_build import split_path

        return split_path(self.root / "data", name)

    def samples(self, split: str) -> Path:
        return self.root / "samples" / split / "samples.jsonl"

    def gold(self, split: str) -> Path:
        return self.root / "gold" / split / "judgements.jsonl"

    def judge_dir(self, name: str) -> Path:
        return self.root / "judges" / name

    def policy_dir(self, judge: str, seed: int) -> Path:
        return self.root / "policies" / judge / f"seed{seed}"

    # configs ------------------------------------------------------------
    def data_config(self) -> Any:
        from judgelab.stages.data_build import DataBuildConfig

        return _sub({**self.cfg.data, "stage": "data_build", "seed": self.cfg.seed}, DataBuildConfig, "data")

    def sample_config(self, split: str) -> Any:
        from judgelab.stages.sample import SampleConfig

        s = self.cfg.sample
        body = {
            "stage": "sample",
            "prompts": str(self.split(split)),
            "backend": s.backend.model_dump(mode="json"),
            "sampling": s.sampling.model_dump(mode="json"),
            "n": s.n,
            "system_prompt": s.system_prompt,
            "chunk_size": s.chunk_size,
            "variants": s.variants,
            "variant_max_tokens": s.variant_max_tokens,
            "variant_tokenizer": s.variant_tokenizer,
            "seed": self.cfg.seed,
        }
        return _sub(body, SampleConfig, f"sample ({split})")

    def gold_config(self, split: str) -> Any:
        from judgelab.stages.annotate import AnnotateConfig

        body = {
            "stage": "annotate",
            "input": str(self.samples(split)),
            "judge": self.cfg.gold.model_dump(mode="json"),
            "seed": self.cfg.seed,
        }
        return _sub(body, AnnotateConfig, f"gold ({split})")

    def judge_config(self, judge: StudyJudge) -> Any:
        from judgelab.stages.train_judge import TrainJudgeConfig

        assert judge.train is not None  # fixed judges have no training step
        body = {**judge.train, "stage": "train_judge", "data": str(self.gold("judge_train")), "seed": self.cfg.seed}
        body.setdefault("judge", {})
        body["judge"] = {**body["judge"], "name": judge.name}
        return _sub(body, TrainJudgeConfig, f"judges.{judge.name}")

    def eval_config(self) -> Any:
        from judgelab.stages.eval_judge import EvalJudgeConfig

        e = self.cfg.eval_judges
        entries = [{"name": j.name, "kind": "proxy", "from_run": str(self.judge_dir(j.name))} if j.trained
                   else {"name": j.name, "kind": "other", "judge": j.spec.model_dump(mode="json")}  # type: ignore[union-attr]
                   for j in self.cfg.judges]
        body = {
            **e.body,
            "stage": "eval_judge",
            "data": str(self.gold("judge_eval")),
            "limit": e.limit,
            "judges": entries + list(e.extra),
            "seed": self.cfg.seed,
        }
        return _sub(body, EvalJudgeConfig, "eval_judges")

    def reward_judge(self, name: str, validate_only: bool) -> dict[str, Any]:
        """The trained judge's spec (from its judge.yaml) with the study's overrides."""
        overrides = (self.cfg.policies.judge_overrides if self.cfg.policies else {}).get(name, {})
        judge = next(j for j in self.cfg.judges if j.name == name)
        if judge.spec is not None:
            spec = judge.spec.model_copy(update={"name": name}).model_dump(mode="json")
        elif validate_only:
            spec = self._placeholder_judge(name)
        else:
            from judgelab.stages.train_judge import load_trained_judge_spec

            spec = load_trained_judge_spec(self.judge_dir(name)).model_dump(mode="json")
        return _deep_merge(spec, overrides)

    def _placeholder_judge(self, name: str) -> dict[str, Any]:
        """The judge does not exist yet: the spec ``train-judge`` will write for it (same mode —
        a distill or grpo judge is ``reasoning`` unless its config says otherwise —, template,
        read-out and sampling), with a placeholder model path."""
        from judgelab.judges.templates import get_template
        from judgelab.stages.train_judge import trained_judge_spec

        tj = self.judge_config(next(j for j in self.cfg.judges if j.name == name))
        mode = tj.judge_mode
        pairwise = bool(self.cfg.policies) and self.cfg.policies.reward.get("kind", "pointwise") == "pairwise"  # type: ignore[union-attr]
        family = tj.template or (
            "pairwise-v1" if pairwise else "pointwise-rubric-v1" if tj.recipe.rubric_guided else "pointwise-v1")
        placeholder = Path(_PLACEHOLDER)
        spec = trained_judge_spec(tj, placeholder, placeholder, get_template(family, mode), mode, "plain")
        return spec.model_dump(mode="json")

    def policy_config(self, judge: str, seed: int, validate_only: bool = False) -> Any:
        from judgelab.stages.train_policy import TrainPolicyConfig

        p = self.cfg.policies
        assert p is not None  # only called when policies are configured
        body = {
            **p.train,
            "stage": "train_policy",
            "prompts": str(self.split("policy_train")),
            "eval_prompts": str(self.split("policy_test")),
            "reward": {**p.reward, "judge": self.reward_judge(judge, validate_only)},
            "gold": self.cfg.gold.model_dump(mode="json"),
            "seed": seed,
        }
        return _sub(body, TrainPolicyConfig, f"policies ({judge}, seed {seed})")

    # steps --------------------------------------------------------------
    def policy_judges(self) -> list[str]:
        if self.cfg.policies is None:
            return []
        return self.cfg.policies.judges or [j.name for j in self.cfg.judges]

    def steps(self, validate_only: bool = False) -> list[Step]:
        from judgelab.stages.annotate import run_annotate
        from judgelab.stages.data_build import run_data_build
        from judgelab.stages.eval_judge import run_eval_judge
        from judgelab.stages.sample import run_sample
        from judgelab.stages.train_judge import run_train_judge
        from judgelab.stages.train_policy import run_train_policy

        r = self.root
        out = [Step("data", r / "data", self.data_config, run_data_build)]
        for split in ("judge_train", "judge_eval"):
            out.append(Step(f"sample {split}", r / "samples" / split,
                            lambda s=split: self.sample_config(s), run_sample))
        for split in ("judge_train", "judge_eval"):
            out.append(Step(f"gold {split}", r / "gold" / split, lambda s=split: self.gold_config(s), run_annotate))
        for j in self.cfg.judges:
            if j.trained:
                out.append(Step(f"judge {j.name}", self.judge_dir(j.name), lambda j=j: self.judge_config(j),
                                run_train_judge))
        out.append(Step("eval judges", r / "judge_eval", self.eval_config, run_eval_judge))
        if self.cfg.policies is not None:
            # seed-major: a study stopped part-way has every judge's policy for the seeds done
            for seed in self.cfg.policies.seeds:
                for name in self.policy_judges():
                    out.append(Step(
                        f"policy {name} seed {seed}", self.policy_dir(name, seed),
                        lambda n=name, s=seed: self.policy_config(n, s, validate_only), run_train_policy,
                    ))
        return out


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def is_complete(run_dir: Path, config: BaseModel) -> bool:
    """True when ``run_dir`` holds a completed run of exactly ``config``."""
    if not (run_dir / "manifest.json").exists():
        return False
    run = RunDir.load(run_dir)
    return run.completed and run.holds(config)


# ------------------------------------------------------------------------------------ run
@dataclass(frozen=True)
class StudyResult:
    run_dir: Path
    steps: list[dict[str, Any]]
    report: Path | None
    seconds: float


def run_study(config: StudyConfig, run_dir: str | Path) -> StudyResult:
    """Run (or resume) every step of the study into ``run_dir``; see the module docstring."""
    t0 = time.perf_counter()
    root = Path(run_dir)
    run = RunDir.open(root, config, stage=STAGE, seed=config.seed)
    plan = StudyPlan(config, root)
    done: list[dict[str, Any]] = []
    with run.guard():
        steps = plan.steps()
        for i, step in enumerate(steps, start=1):
            cfg = step.build()  # built late: a policy's reward judge comes from a finished judge run
            label = f"[{i}/{len(steps)}] {step.name}"
            if is_complete(step.run_dir, cfg):
                logger.info("%s: already complete in %s, skipped", label, step.run_dir)
                done.append({"step": step.name, "run_dir": str(step.run_dir), "skipped": True, "seconds": 0.0})
                continue
            logger.info("%s: running in %s", label, step.run_dir)
            ts = time.perf_counter()
            step.run(cfg, step.run_dir)
            secs = time.perf_counter() - ts
            logger.info("%s: done in %.0f s", label, secs)
            done.append({"step": step.name, "run_dir": str(step.run_dir), "skipped": False, "seconds": secs})
            run.manifest["steps"] = done
            run.save_manifest()
        secs = time.perf_counter() - t0
        # completed before the report is rendered, so the report shows the finished study; the
        # report is not a step: every run of the command re-renders it (a failed render included)
        run.set_status("completed", steps=done, stats={"study/seconds": secs})
    report = None
    if config.report:
        from judgelab.analysis.report import render_report

        report = render_report(root, root / "report")
        logger.info("report: %s", report)
    return StudyResult(root, done, report, time.perf_counter() - t0)


__all__ = ["StudyConfig", "StudyPlan", "StudyResult", "is_complete", "run_study"]
