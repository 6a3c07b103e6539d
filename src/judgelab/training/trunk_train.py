"""The frozen-trunk training loop (L3): cache pass, epochs over the cache, checkpoints, the saved judge.

What it trains and why: ``judgelab.training.frozen_trunk`` (the split model, the examples, the
losses). This module runs it: fill the trunk cache (``judgelab.training.trunk_cache``) for the
examples not cached yet, train the top layers with AdamW over seeded epoch permutations, write
``checkpoint-<step>/trunk_state.pt`` every ``save_steps`` (a rerun resumes from the newest and
reuses the cache), and save the whole model as an ordinary HF folder in ``OUT/final``.

torch / transformers are imported inside the functions.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from judgelab.errors import ConfigError, DataError
from judgelab.training.config import SFTTrainSpec, TrunkSpec
from judgelab.training.frozen_trunk import (
    LossKind,
    SplitModel,
    TrunkExample,
    TrunkInput,
    TrunkObjective,
    TrunkState,
    VerdictReadout,
    build_examples,
    loss_on_batch,
    score_token_ids,
)
from judgelab.training.model_setup import (
    FINAL_DIRNAME,
    ResumeMode,
    TrainResult,
    autocast,
    load_model_for_training,
    probe_faster_bf16,
    wants_bf16,
    write_result,
)
from judgelab.training.trunk_cache import CACHE_DIRNAME, TrunkCache, hash_parameters

logger = logging.getLogger(__name__)

STATE_FILE = "trunk_state.pt"
_SELF_CHECK_ATOL = 2e-3


# ------------------------------------------------------------------------------------ training
def train_frozen_trunk(
    model: str,
    inputs: Sequence[TrunkInput],
    spec: SFTTrainSpec,
    output_dir: str | Path,
    *,
    loss: LossKind,
    readout: VerdictReadout | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    resume: ResumeMode = "auto",
    callbacks: Sequence[Callable[[TrunkState], None]] = (),
    progress: bool | None = None,
) -> TrainResult:
    """Train ``model``'s top layers on ``inputs`` over a cached frozen trunk; see the module docstring.

    ``loss="verdict"`` needs ``readout`` (pointwise non-reasoning judges); ``"completion"`` trains
    every completion token. ``callbacks`` run after every optimizer step (e.g. to save snapshots).
    Returns where the final HF folder was saved (``output_dir/final``).
    """
    import torch

    trunk = spec.trunk
    if trunk is None:
        raise ConfigError("train_frozen_trunk needs recipe.train.trunk")
    if loss == "completion" and (trunk.train_score_rows or spec.score_regression_weight > 0):
        raise ConfigError("trunk.train_score_rows and score_regression_weight apply to pointwise "
                          "non-reasoning judges (the verdict loss)", "set them to their defaults")
    if not inputs:
        raise DataError("no training examples for the frozen-trunk trainer", "check the judge-training data")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("frozen-trunk training runs in one process", "launch it without torchrun / accelerate")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(spec.seed)
    lm, tokenizer, resolved = load_model_for_training(model, revision=revision, trust_remote_code=trust_remote_code)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lm.to(device)
    split = SplitModel(lm, trunk.frozen_layers)
    examples, n_long = build_examples(inputs, tokenizer, resolved, loss, readout, trunk.decision_weight, spec.max_length)
    if n_long:
        logger.warning("frozen trunk: dropped %d examples longer than max_length=%d tokens", n_long, spec.max_length)
    if not examples:
        raise DataError(f"every example is longer than max_length={spec.max_length}", "raise train.max_length")
    score_ids = None
    if loss == "verdict":
        score_ids = score_token_ids(tokenizer, resolved, inputs[0], readout)  # type: ignore[arg-type]
    objective = TrunkObjective(split, loss, spec, trunk, readout, score_ids)

    lm.eval()  # no dropout anywhere: the cached states were computed without it too
    diff = split.self_check(examples[0].ids)
    if diff > _SELF_CHECK_ATOL:
        raise ConfigError(
            f"trunk: the split model differs from the full model by {diff:.2e} on a training example",
            f"{type(lm).__name__} does more than embed → layers → norm; use the TRL path",
        )
    cache, cache_info = fill_cache(split, examples, trunk, out, device, progress)

    params = [*split.top.parameters(), *split.norm.parameters(), *objective.parameters()]
    opt = torch.optim.AdamW(params, lr=spec.learning_rate, betas=(spec.adam_beta1, spec.adam_beta2),
                            eps=spec.adam_epsilon, weight_decay=spec.weight_decay)
    bs, accum = spec.per_device_train_batch_size, spec.gradient_accumulation_steps
    per_epoch = max(1, math.ceil(len(examples) / (bs * accum)))
    total = spec.max_steps if spec.max_steps is not None else max(1, math.ceil(spec.num_train_epochs * per_epoch))
    sched = _scheduler(opt, spec, total)
    step, train_seconds, log = 0, 0.0, []
    resumed_from, state = _resume(out, resume, params, opt, sched)
    objective.sync()
    bf16 = wants_bf16(spec.precision, device)
    if state is not None:
        step, train_seconds, log = int(state["step"]), float(state["train_seconds"]), list(state["log"])
        bf16 = bool(state["bf16"])  # the precision the run started with, never re-probed
        logger.info("frozen trunk: resumed from %s (step %d)", resumed_from, step)

    batches = _batch_plan([len(ex.ids) for ex in examples], bs * accum, spec.seed, spec.shuffle_dataset)
    if bf16 is None:
        first = [examples[i] for i in batches(0)[:bs]]

        def probe(use_bf16: bool) -> None:
            with autocast(device, use_bf16):
                loss_on_batch(split, objective, cache, first, device).loss.backward()
            for p in params:
                p.grad = None

        bf16, times = probe_faster_bf16(probe)
        logger.info("frozen trunk: precision auto → %s (probe s/batch %s)", "bf16" if bf16 else "fp32", times)
    n_trainable = sum(p.numel() for p in params)
    n_total = sum(p.numel() for p in lm.parameters())
    logger.info("frozen trunk: %s, %d examples, %d frozen + %d trained layers, %d/%d params trainable, "
                "%d steps (batch %d × %d), %s", resolved, len(examples), trunk.frozen_layers,
                len(split.top), n_trainable, n_total, total, bs, accum, "bf16" if bf16 else "fp32")
    lm.train()
    _set_dropout_off(lm)
    bar = _progress(total, step, progress)
    window: list[float] = []
    t_last = time.perf_counter()
    seen_window = 0
    try:
        while step < total:
            if trunk.max_train_seconds is not None and train_seconds >= trunk.max_train_seconds:
                logger.info("frozen trunk: time budget of %.0f s reached at step %d", trunk.max_train_seconds, step)
                break
            t0 = time.perf_counter()
            idx = batches(step)
            parts = None
            for k in range(accum):
                micro = [examples[i] for i in idx[k * bs:(k + 1) * bs]]
                if not micro:
                    continue
                with autocast(device, bf16):
                    parts = loss_on_batch(split, objective, cache, micro, device)
                (parts.loss / accum).backward()
                window.append(parts.ce)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, spec.max_grad_norm)) if spec.max_grad_norm > 0 else float("nan")
            opt.step()
            objective.sync()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            seen_window += len(idx)
            train_seconds += time.perf_counter() - t0
            if step % spec.logging_steps == 0 or step == 1 or step == total:
                now = time.perf_counter()
                row = {"step": step, "epoch": round(step / per_epoch, 4), "loss": float(sum(window) / len(window)),
                       "learning_rate": float(sched.get_last_lr()[0]), "grad_norm": grad_norm,
                       "examples_per_second": round(seen_window / max(now - t_last, 1e-9), 3),
                       "train_seconds": round(train_seconds, 2)}
                if parts is not None and parts.mse is not None:
                    row["score_mse"] = parts.mse
                log.append(row)
                logger.info("frozen trunk: %s", row)
                window, seen_window, t_last = [], 0, now
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{parts.ce:.3f}" if parts else "-", refresh=False)
            if step % spec.save_steps == 0 and step < total:
                _save_checkpoint(out, step, params, opt, sched, train_seconds, log, spec.save_total_limit, bf16)
            if callbacks:
                st = TrunkState(step, step / per_epoch, train_seconds, parts.ce if parts else math.nan,
                                lm, lambda p: _save_model(split, objective, tokenizer, p))
                lm.eval()
                for cb in callbacks:
                    cb(st)
                lm.train()
                _set_dropout_off(lm)
                if st.stop:
                    logger.info("frozen trunk: stopped by a callback at step %d", step)
                    break
    finally:
        if bar is not None:
            bar.close()
    lm.eval()
    final = _save_model(split, objective, tokenizer, out / FINAL_DIRNAME)
    result = TrainResult(model_path=final, output_dir=out, global_step=step, train_seconds=train_seconds,
                         resumed_from=resumed_from, trainable_params=n_trainable, total_params=n_total,
                         log_history=log)
    write_result(result)
    (final / "judgelab-trunk.json").write_text(json.dumps({
        **cache_info, "frozen_layers": trunk.frozen_layers, "trained_layers": len(split.top),
        "precision": "bf16" if bf16 else "fp32", "loss": loss, "examples": len(examples),
        "dropped_too_long": n_long, "train_score_rows": trunk.train_score_rows,
    }, indent=2), encoding="utf-8")
    return result


def fill_cache(split: SplitModel, examples: Sequence[TrunkExample], trunk: TrunkSpec, out: Path, device: str,
                progress: bool | None) -> tuple[TrunkCache, dict[str, Any]]:
    lm = split.lm
    meta = {
        "schema": "judgelab.trunk_cache/v1",
        "frozen_hash": hash_parameters(split.frozen_named_parameters()),
        "frozen_layers": trunk.frozen_layers,
        "hidden": int(lm.config.get_text_config().hidden_size if hasattr(lm.config, "get_text_config")
                      else lm.config.hidden_size),
        "dtype": trunk.cache_dtype,
        "precision": None,
    }
    root = Path(trunk.cache_dir).expanduser() if trunk.cache_dir else out / CACHE_DIRNAME
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].ids))
    # the precision the states were computed in is part of their identity; a resumed run reuses a
    # cache of this trunk in whichever precision it was computed (it never probes again)
    existing = [p for p in ("bf16", "fp32") if (root / TrunkCache.id_for({**meta, "precision": p})).is_dir()]
    if existing:
        precision = existing[0]
    else:
        bf16 = wants_bf16(trunk.cache_precision, device)
        if bf16 is None:
            first = [examples[i] for i in order[-trunk.cache_batch_size:]]
            ids0, mask0 = _ids_batch(first, device)

            def probe(use_bf16: bool) -> None:
                with autocast(device, use_bf16):
                    split.trunk(ids0, mask0)

            bf16, times = probe_faster_bf16(probe, repeats=1)
            logger.info("frozen trunk: cache precision auto → %s (probe s/batch %s)", "bf16" if bf16 else "fp32", times)
        precision = "bf16" if bf16 else "fp32"
    cache = TrunkCache(root, {**meta, "precision": precision})
    bf16 = cache.meta["precision"] == "bf16"
    need = set(cache.missing([examples[i].key for i in order]))
    todo = [examples[i] for i in order if examples[i].key in need]
    todo = list({ex.key: ex for ex in todo}.values())
    t0 = time.perf_counter()
    bar = _progress(len(todo), 0, progress if todo else False, desc="trunk cache")
    try:
        for start in range(0, len(todo), trunk.cache_batch_size):
            chunk = todo[start:start + trunk.cache_batch_size]
            ids, mask = _ids_batch(chunk, device)
            with autocast(device, bf16):
                states = split.trunk(ids, mask)
            cache.append([(ex.key, states[i, : len(ex.ids)].float()) for i, ex in enumerate(chunk)])
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    info = {"cache_id": cache.cache_id, "cache_precision": cache.meta["precision"], "cache_dtype": cache.dtype,
            "cache_computed": len(todo), "cache_reused": len({ex.key for ex in examples}) - len(todo),
            "cache_seconds": round(seconds, 2), "cache_bytes": cache.nbytes()}
    logger.info("frozen trunk: cache %s", info)
    return cache, info


def _ids_batch(chunk: Sequence[TrunkExample], device: str) -> tuple[Any, Any]:
    import torch

    t = max(len(ex.ids) for ex in chunk)
    ids = torch.zeros(len(chunk), t, dtype=torch.long)
    mask = torch.zeros(len(chunk), t, dtype=torch.long)
    for i, ex in enumerate(chunk):
        ids[i, : len(ex.ids)] = torch.tensor(ex.ids)
        mask[i, : len(ex.ids)] = 1
    return ids.to(device), mask.to(device)


def _batch_plan(lengths: Sequence[int], per_step: int, seed: int, shuffle: bool,
                group: int = 32) -> Callable[[int], list[int]]:
    """step → the example indices of that optimizer step.

    Each epoch is a seeded permutation; with ``shuffle`` it is cut into windows of ``group`` steps,
    each window sorted by length before it is cut into batches, and the batches are shuffled —
    batches of similar lengths pad little (TRL's ``group_by_length`` idea), yet every epoch still
    sees every example once in a seeded random order.
    """
    import numpy as np

    n = len(lengths)
    per_epoch = max(1, math.ceil(n / per_step))
    plans: dict[int, list[list[int]]] = {}

    def epoch_plan(epoch: int) -> list[list[int]]:
        if not shuffle:
            order = list(range(n))
            return [order[k * per_step:(k + 1) * per_step] for k in range(per_epoch)]
        rng = np.random.default_rng([seed, epoch])
        perm = rng.permutation(n).tolist()
        window = per_step * group
        batches: list[list[int]] = []
        for w in range(0, n, window):
            chunk = sorted(perm[w:w + window], key=lambda i: lengths[i])
            batches += [chunk[k:k + per_step] for k in range(0, len(chunk), per_step)]
        order = rng.permutation(len(batches)).tolist()
        return [batches[i] for i in order]

    def at(step: int) -> list[int]:
        epoch, k = divmod(step, per_epoch)
        if epoch not in plans:
            plans.clear()
            plans[epoch] = epoch_plan(epoch)
        plan = plans[epoch]
        return plan[k] if k < len(plan) else []

    return at


def _scheduler(opt: Any, spec: SFTTrainSpec, total: int) -> Any:
    from transformers import get_scheduler

    warm = spec.warmup_steps
    warmup = int(warm) if warm >= 1 else int(math.ceil(warm * total))
    return get_scheduler(spec.lr_scheduler_type, opt, num_warmup_steps=warmup, num_training_steps=total)


def _set_dropout_off(lm: Any) -> None:
    import torch

    for mod in lm.modules():
        if isinstance(mod, torch.nn.Dropout):
            mod.eval()


def _progress(total: int, initial: int, enabled: bool | None, desc: str = "train-judge (frozen trunk)") -> Any:
    """A tqdm bar; ``enabled=None`` = only on a terminal (as the TRL path's bar)."""
    if enabled is False:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step" if "train" in desc else "ex",
                dynamic_ncols=True, leave=False, disable=None if enabled is None else not enabled)


# ------------------------------------------------------------------------------------ checkpoints
def _checkpoints(out: Path) -> list[Path]:
    found = [p for p in out.glob("checkpoint-*") if (p / STATE_FILE).is_file() and p.name[11:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[11:]))


def _resume(out: Path, resume: ResumeMode, params: list[Any], opt: Any, sched: Any,
            ) -> tuple[str | None, dict[str, Any] | None]:
    import torch

    if resume == "never":
        return None, None
    if resume == "auto":
        found = _checkpoints(out)
        if not found:
            return None, None
        path = found[-1]
    else:
        path = Path(resume)
        if not (path / STATE_FILE).is_file():
            raise ConfigError(f"resume checkpoint {resume!r} has no {STATE_FILE}",
                              "pass a frozen-trunk checkpoint-<step> folder, 'auto' or 'never'")
    state = torch.load(path / STATE_FILE, weights_only=False)
    if len(state["params"]) != len(params):
        raise ConfigError(f"{path} was saved with another trainable set ({len(state['params'])} tensors)",
                          "resume with the same trunk.frozen_layers and train_score_rows, or resume: never")
    with torch.no_grad():
        for p, saved in zip(params, state["params"]):
            p.copy_(saved)
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    return str(path), state


def _save_checkpoint(out: Path, step: int, params: list[Any], opt: Any, sched: Any, train_seconds: float,
                     log: list[dict[str, Any]], keep: int | None, bf16: bool) -> None:
    import torch

    final = out / f"checkpoint-{step}"
    tmp = out / f".checkpoint-{step}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save({"step": step, "train_seconds": train_seconds, "log": log, "bf16": bf16,
                "params": [p.detach().clone() for p in params], "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "rng": torch.get_rng_state()}, tmp / STATE_FILE)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    if keep is not None:
        for old in _checkpoints(out)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)


def _save_model(split: SplitModel, objective: TrunkObjective, tokenizer: Any, path: Path) -> Path:
    """The whole model (frozen trunk + trained top) as a plain HF folder; atomically replaced."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    lm = split.lm
    objective.sync()
    lm.save_pretrained(str(tmp))
    gen = getattr(lm, "generation_config", None)
    if gen is not None:
        gen.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    return path


__all__ = ["STATE_FILE", "fill_cache", "train_frozen_trunk"]
