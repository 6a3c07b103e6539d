"""Read policy-run and judge-evaluation records from disk for analysis and reports (L3).

The file formats are the contract in ``docs/records.md``: ``tracking.jsonl``
(``judgelab.tracking/v1``), ``eval_samples.jsonl`` (``judgelab.eval_sample/v1``),
``train_log.jsonl`` (TRL log rows) and ``judge_eval.json`` (``judgelab.judge_eval/v1``). Readers
refuse an unknown schema (``DataError`` naming file and line), keep fields they do not know, and
remember the sha256 and record count of every file they read so a report can say exactly which
records its numbers come from.

Layouts: a single policy run dir (has ``tracking.jsonl``), a study dir (``policies/<judge>/seed<k>/``
and ``judge_eval/judge_eval.json``), or a judge-evaluation run dir (``judge_eval.json``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Container, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from judgelab.errors import DataError, RunDirError
from judgelab.store.jsonl import iter_jsonl_numbered

logger = logging.getLogger(__name__)

TRACKING_SCHEMA = "judgelab.tracking/v1"
GOLD_ON_PROXY_PROMPTS = "reward/gold@proxy_prompts"
"""Tracking metric: the gold mean over the prompts the proxy scored (``tracking.proxy_limit``)."""
EVAL_SAMPLE_SCHEMA = "judgelab.eval_sample/v1"
JUDGE_EVAL_SCHEMA = "judgelab.judge_eval/v1"

LayoutKind = Literal["study", "policy", "judge_eval"]
GoldBasis = Literal["same", "logged", "recomputed", "unknown"]
ProxyProtocol = Literal["pointwise", "pairwise"]


@dataclass(frozen=True)
class SourceFile:
    """A record file a report read: path, content hash and number of records."""

    path: Path
    sha256: str
    records: int


@dataclass(frozen=True)
class ComparedGold:
    """The gold on the prompts the proxy scored, per tracking step (see ``PolicyRun.compared_gold``).

    ``basis`` per step: ``same`` (the proxy scored every prompt: ``reward/gold`` itself), ``logged``
    (``reward/gold@proxy_prompts`` in the record), ``recomputed`` (from ``per_prompt.gold`` of the
    first ``proxy/n`` prompts, for records written before that metric existed) or ``unknown``
    (value None). ``n_proxy`` / ``n_prompts``: prompts the proxy scored / evaluation prompts (None if
    not recorded).
    """

    values: list[float | None]
    se: list[float | None]
    basis: list[GoldBasis]
    n_proxy: list[int | None]
    n_prompts: list[int | None]

    @property
    def comparison(self) -> Literal["same_prompts", "proxy_prompts", "unavailable"]:
        if all(b == "same" for b in self.basis):
            return "same_prompts"
        if all(b == "unknown" for b in self.basis):
            return "unavailable"
        return "proxy_prompts"


@dataclass
class PolicyRun:
    """The records of one policy run, sorted by step (one tracking record per step)."""

    path: Path
    judge: str
    seed: str
    status: str
    tracking: list[dict[str, Any]]
    proxy_protocol: ProxyProtocol = "pointwise"
    samples_path: Path | None = None
    sample_steps: list[int] = field(default_factory=list)
    train_log: list[dict[str, Any]] = field(default_factory=list)
    sources: list[SourceFile] = field(default_factory=list)
    proxy_flaws: str | None = None  # a controlled (rules) proxy's declared flaws, from config.yaml

    @property
    def label(self) -> str:
        return f"{self.judge} / {self.seed}"

    @property
    def steps(self) -> list[int]:
        return [int(r["step"]) for r in self.tracking]

    def metric(self, name: str) -> list[float | None]:
        """The values of ``metrics[name]`` per step (None where absent or null)."""
        return [_num(r["metrics"].get(name)) for r in self.tracking]

    def samples_at(self, steps: Container[int]) -> list[dict[str, Any]]:
        """The eval samples recorded at ``steps`` (read on demand: the file can be large)."""
        if self.samples_path is None:
            return []
        return list(iter_eval_samples(self.samples_path, steps))

    def has_metric(self, name: str) -> bool:
        return any(v is not None for v in self.metric(name))

    def compared_gold(self) -> ComparedGold:
        """The gold mean (and SE) over the prompts the proxy scored, at each step (``ComparedGold``).

        Order of evidence per record: ``reward/gold@proxy_prompts`` when logged; the record's own
        ``reward/gold`` when the proxy scored every prompt (no ``proxy/n`` — runs from before
        ``tracking.proxy_limit`` — or ``proxy/n`` ≥ the number of prompts); the mean of
        ``per_prompt.gold`` over the first ``proxy/n`` prompts; else unknown.
        """
        from judgelab.metrics import compute_mean_se

        values: list[float | None] = []
        ses: list[float | None] = []
        basis: list[GoldBasis] = []
        n_proxy: list[int | None] = []
        n_prompts: list[int | None] = []
        for r in self.tracking:
            m = r["metrics"]
            pp = r.get("per_prompt") if isinstance(r.get("per_prompt"), dict) else {}
            ids = pp.get("prompt_ids")
            n_all = len(ids) if isinstance(ids, list) else None
            raw_n = m.get("proxy/n")
            n_p = int(raw_n) if isinstance(raw_n, (int, float)) and not isinstance(raw_n, bool) else None
            n_proxy.append(n_p)
            n_prompts.append(n_all)
            gold_pp = pp.get("gold")
            if GOLD_ON_PROXY_PROMPTS in m:
                v, se, b = _num(m.get(GOLD_ON_PROXY_PROMPTS)), _num(m.get(GOLD_ON_PROXY_PROMPTS + "_se")), "logged"
            elif n_p is None or (n_all is not None and n_p >= n_all):
                v, se, b = _num(m.get("reward/gold")), _num(m.get("reward/gold_se")), "same"
            elif isinstance(gold_pp, list) and n_all is not None and len(gold_pp) == n_all:
                v, se, _ = compute_mean_se([_num(x) for x in gold_pp[:n_p]])
                b = "recomputed"
            else:
                v, se, b = None, None, "unknown"
            values.append(v)
            ses.append(se)
            basis.append(b)  # type: ignore[arg-type]
        return ComparedGold(values, ses, basis, n_proxy, n_prompts)

    def extra_reward_names(self) -> list[str]:
        """``reward/<judge>`` metrics other than proxy and gold (extra judges scoring the checkpoints)."""
        names: set[str] = set()
        for r in self.tracking:
            for k in r["metrics"]:
                if (k.startswith("reward/") and not k.endswith("_se")
                        and k not in ("reward/proxy", "reward/gold", GOLD_ON_PROXY_PROMPTS)):
                    names.add(k)
        return sorted(names)


@dataclass
class RunLayout:
    """What ``find_runs`` found under a directory."""

    root: Path
    kind: LayoutKind
    manifest: dict[str, Any]
    runs: list[PolicyRun]
    judge_eval: list[dict[str, Any]] | None
    judge_eval_source: SourceFile | None


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        f = float(v)
        return None if math.isnan(f) else f
    return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_schema(path: Path, lineno: int, rec: dict[str, Any], expected: str) -> None:
    got = rec.get("schema")
    if got != expected:
        raise DataError(
            f"{path}:{lineno}: schema {got!r}, expected {expected!r}",
            "this judgelab reads that record version only (see docs/records.md); "
            "regenerate the run or upgrade judgelab",
        )


def load_tracking(path: Path) -> tuple[list[dict[str, Any]], SourceFile]:
    """``tracking.jsonl`` → records sorted by step; a step written twice keeps its last record."""
    by_step: dict[int, dict[str, Any]] = {}
    n = 0
    for lineno, rec in iter_jsonl_numbered(path):
        n += 1
        _check_schema(path, lineno, rec, TRACKING_SCHEMA)
        step = rec.get("step")
        metrics = rec.get("metrics")
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise DataError(f"{path}:{lineno}: 'step' must be a non-negative integer, got {step!r}")
        if not isinstance(metrics, dict) or "reward/proxy" not in metrics or "reward/gold" not in metrics:
            raise DataError(
                f"{path}:{lineno}: 'metrics' must be an object with 'reward/proxy' and 'reward/gold'",
                "see docs/records.md (judgelab.tracking/v1)",
            )
        if step in by_step:
            logger.info("%s: step %d recorded twice (resumed run?); keeping the last record", path, step)
        by_step[step] = rec
    if not by_step:
        raise DataError(f"{path}: no tracking records", "the run has not reached its first evaluation yet")
    return [by_step[s] for s in sorted(by_step)], SourceFile(path, _sha256(path), n)


def iter_eval_samples(path: Path, steps: Container[int] | None = None) -> Iterator[dict[str, Any]]:
    """``eval_samples.jsonl`` records (schema checked; ``step`` and ``prompt_id`` required), only
    those at ``steps`` when given — streamed, so a large file is never held in memory whole."""
    for lineno, rec in iter_jsonl_numbered(path):
        _check_schema(path, lineno, rec, EVAL_SAMPLE_SCHEMA)
        step = rec.get("step")
        if not isinstance(step, int) or isinstance(step, bool) or "prompt_id" not in rec:
            raise DataError(f"{path}:{lineno}: an eval sample needs an integer 'step' and a 'prompt_id'")
        if steps is None or step in steps:
            yield rec


def load_eval_samples(path: Path) -> tuple[list[dict[str, Any]], SourceFile]:
    """All of ``eval_samples.jsonl`` in memory (see ``iter_eval_samples`` for large files)."""
    out = list(iter_eval_samples(path))
    return out, SourceFile(path, _sha256(path), len(out))


def scan_eval_samples(path: Path) -> tuple[list[int], SourceFile]:
    """The steps that have eval samples (sorted), and the file's hash and record count."""
    steps: set[int] = set()
    n = 0
    for rec in iter_eval_samples(path):
        steps.add(int(rec["step"]))
        n += 1
    return sorted(steps), SourceFile(path, _sha256(path), n)


def load_train_log(path: Path) -> tuple[list[dict[str, Any]], SourceFile]:
    """``train_log.jsonl`` → TRL log rows as stored (no schema)."""
    rows = [rec for _, rec in iter_jsonl_numbered(path)]
    return rows, SourceFile(path, _sha256(path), len(rows))


def load_judge_eval(path: Path) -> tuple[list[dict[str, Any]], SourceFile]:
    """``judge_eval.json`` → its ``judges`` rows (schema checked, each row needs a ``name``)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: invalid JSON ({e.msg} at line {e.lineno})") from e
    if not isinstance(doc, dict):
        raise DataError(f"{path}: expected a JSON object")
    _check_schema(path, 1, doc, JUDGE_EVAL_SCHEMA)
    judges = doc.get("judges")
    if not isinstance(judges, list) or not all(isinstance(j, dict) and "name" in j for j in judges):
        raise DataError(f"{path}: 'judges' must be a list of objects with a 'name'", "see docs/records.md")
    return judges, SourceFile(path, _sha256(path), len(judges))


def _read_manifest(path: Path) -> dict[str, Any]:
    mpath = path / "manifest.json"
    if not mpath.exists():
        return {}
    try:
        data = json.loads(mpath.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{mpath}: invalid JSON ({e.msg})") from e
    return data if isinstance(data, dict) else {}


_SEED_DIR = re.compile(r"^seed[-_]?(\w+)$")


def load_policy_run(path: str | Path, *, judge: str | None = None, seed: str | None = None) -> PolicyRun:
    """Read one policy run dir. The judge / seed labels come from (first found): the arguments,
    ``manifest["policy"]``, a ``policies/<judge>/seed<k>/`` path, ``manifest["seed"]``, the folder name."""
    path = Path(path)
    tpath = path / "tracking.jsonl"
    if not tpath.exists():
        raise RunDirError(f"{path} has no tracking.jsonl", "is this a policy run directory (stage train_policy)?")
    manifest = _read_manifest(path)
    policy = manifest.get("policy") if isinstance(manifest.get("policy"), dict) else {}
    in_study = path.parent.parent.name == "policies"
    if judge is None:
        judge = policy.get("judge") or (path.parent.name if in_study else None) or path.name
    if seed is None:
        m = _SEED_DIR.match(path.name)
        if policy.get("seed") is not None:
            seed = f"seed{policy['seed']}"
        elif m:
            seed = f"seed{m.group(1)}"
        elif manifest.get("seed") is not None:
            seed = f"seed{manifest['seed']}"
        else:
            seed = "seed?"
    tracking, tsrc = load_tracking(tpath)
    run = PolicyRun(
        path=path,
        judge=str(judge),
        seed=str(seed),
        status=str(manifest.get("status", "unknown")),
        tracking=tracking,
        proxy_protocol=_proxy_protocol(policy.get("proxy_protocol"), tracking, path),
        sources=[tsrc],
        proxy_flaws=_proxy_flaws(path),
    )
    spath = path / "eval_samples.jsonl"
    if spath.exists():
        run.sample_steps, src = scan_eval_samples(spath)
        run.samples_path = spath
        run.sources.append(src)
    lpath = path / "train_log.jsonl"
    if lpath.exists():
        run.train_log, src = load_train_log(lpath)
        run.sources.append(src)
    return run


def _proxy_flaws(path: Path) -> str | None:
    """What a rules-backend reward judge is declared to get wrong (``blind_to`` / ``pays_for`` in the
    run's ``config.yaml``); "none (the gold's checklist)" for the unflawed rules judge; None for any
    other reward judge or when the config cannot be read."""
    import yaml

    try:
        cfg = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None
    judge = (cfg.get("reward") or {}).get("judge") or {} if isinstance(cfg, dict) else {}
    backend = judge.get("backend") or {} if isinstance(judge, dict) else {}
    if not isinstance(backend, dict) or backend.get("kind") != "rules":
        return None
    blind, pays = backend.get("blind_to") or [], backend.get("pays_for") or {}
    parts = ([f"blind to {', '.join(blind)}"] if blind else []) + (
        [f"pays for {', '.join(f'{k} (+{v:g})' for k, v in pays.items())}"] if pays else [])
    return "; ".join(parts) if parts else "none (the gold's checklist)"


def _proxy_protocol(declared: Any, tracking: list[dict[str, Any]], path: Path) -> ProxyProtocol:
    """``manifest["policy"]["proxy_protocol"]`` if set; otherwise inferred: a pairwise proxy's tracking
    value is a win rate against the initial policy, 0.5 at step 0 and within [0, 1] throughout."""
    if declared in ("pointwise", "pairwise"):
        return declared  # type: ignore[no-any-return]
    vals = [r["metrics"].get("reward/proxy") for r in tracking]
    nums = [float(v) for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if tracking[0]["step"] == 0 and vals[0] == 0.5 and nums and all(0.0 <= v <= 1.0 for v in nums):
        logger.info("%s: reward/proxy looks like a pairwise win rate (0.5 at step 0); set "
                    "manifest policy.proxy_protocol to say so", path)
        return "pairwise"
    return "pointwise"


def find_runs(run_dir: str | Path) -> RunLayout:
    """Find the policy runs and judge-evaluation records under a study, policy-run or judge-eval dir."""
    root = Path(run_dir)
    if not root.is_dir():
        raise RunDirError(f"{root} is not a directory", "pass a run directory made by judgelab")
    manifest = _read_manifest(root)
    runs: list[PolicyRun] = []
    kind: LayoutKind
    if (root / "tracking.jsonl").exists():
        kind = "policy"
        runs.append(load_policy_run(root))
        je_path = root / "judge_eval.json"
        if not je_path.exists() and root.parent.parent.name == "policies":
            je_path = root.parent.parent.parent / "judge_eval" / "judge_eval.json"  # the study's
    elif (root / "policies").is_dir():
        kind = "study"
        for judge_dir in sorted(p for p in (root / "policies").iterdir() if p.is_dir()):
            for seed_dir in sorted(p for p in judge_dir.iterdir() if p.is_dir()):
                tpath = seed_dir / "tracking.jsonl"
                if tpath.exists() and tpath.stat().st_size > 0:
                    runs.append(load_policy_run(seed_dir, judge=judge_dir.name))
                else:  # not started, or started and not yet at its first evaluation
                    logger.info("%s: no tracking records yet; left out of the report", seed_dir)
        je_path = root / "judge_eval" / "judge_eval.json"
    elif (root / "judge_eval.json").exists():
        kind = "judge_eval"
        je_path = root / "judge_eval.json"
    else:
        raise RunDirError(
            f"{root} holds no tracking.jsonl, policies/ folder or judge_eval.json",
            "pass a policy run dir, a study dir or a judge-evaluation run dir",
        )
    judge_eval = source = None
    if je_path.exists():
        judge_eval, source = load_judge_eval(je_path)
    if not runs and judge_eval is None:
        raise RunDirError(f"{root}: no policy run has tracking records yet and there is no judge_eval.json")
    return RunLayout(root, kind, manifest, runs, judge_eval, source)


__all__ = [
    "EVAL_SAMPLE_SCHEMA",
    "GOLD_ON_PROXY_PROMPTS",
    "JUDGE_EVAL_SCHEMA",
    "TRACKING_SCHEMA",
    "ComparedGold",
    "PolicyRun",
    "ProxyProtocol",
    "RunLayout",
    "SourceFile",
    "find_runs",
    "iter_eval_samples",
    "load_eval_samples",
    "load_judge_eval",
    "load_policy_run",
    "load_tracking",
    "load_train_log",
    "scan_eval_samples",
]
