"""The ``judgelab`` command line (L5).

Errors: a ``JudgelabError`` prints its message and hint, no traceback (``--debug`` shows it);
exit code 2 for usage/config errors, 1 for everything else, 130 on Ctrl-C.

This module imports only typer/rich and judgelab's light layers at start-up; each command imports
what it needs inside its body so ``judgelab --help`` stays fast and torch-free.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from judgelab.errors import JudgelabError

app = typer.Typer(
    name="judgelab",
    help="LLM judges as rewards for RL post-training: annotate, train judges, train policies, "
    "track reward hacking.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Prepare and list local models.", no_args_is_help=True)
data_app = typer.Typer(help="Build study datasets.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")

_STATE = {"debug": False}

OVERRIDE_EXAMPLE = "train.learning_rate=1e-6"
"""The example in the overrides help: a real field of train-policy / train-judge configs (a test checks)."""
OverridesArg = Annotated[
    Optional[list[str]],
    typer.Argument(help=f"dotted overrides, e.g. {OVERRIDE_EXAMPLE}", show_default=False),
]
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="YAML config file", exists=False)]
RunDirOpt = Annotated[
    Optional[Path], typer.Option("--run-dir", help="output folder (default: the config's run_dir)")
]


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks and debug logs")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="warnings and errors only")] = False,
) -> None:
    _STATE["debug"] = debug
    level = logging.DEBUG if debug else (logging.WARNING if quiet else logging.INFO)
    from rich.logging import RichHandler

    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(show_path=debug, rich_tracebacks=debug, markup=False)],
        force=True,
    )
    for noisy in ("httpx", "httpcore", "openai", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command()
def version() -> None:
    """Print judgelab's version and the versions of the packages that can move results."""
    from judgelab import __version__
    from judgelab.store.rundir import package_versions

    typer.echo(f"judgelab {__version__}")
    for name, v in package_versions().items():
        if name != "judgelab":
            typer.echo(f"  {name}: {v or '-'}")


def _load_stage_config(config: Path, overrides: list[str] | None, expect: str | None = None):  # type: ignore[no-untyped-def]
    """Read + override + validate a stage config. ``expect``: the stage a dedicated command runs
    (used when the file has no ``stage:`` key; a different stage is a ConfigError)."""
    from judgelab.config.loader import apply_overrides, load_yaml, validate_config
    from judgelab.errors import ConfigError
    from judgelab.stages.registry import get_stage

    data = apply_overrides(load_yaml(config), overrides or [])
    if expect is not None:
        data.setdefault("stage", expect)
        if data["stage"] != expect:
            raise ConfigError(
                f"{config} is a {data['stage']!r} config, not {expect!r}",
                f"use `judgelab run {config}` for it, or set stage: {expect}",
            )
    entry = get_stage(data.get("stage"))
    cfg = validate_config(data, entry.load_config_class(), source=str(config))
    return entry, cfg


@app.command()
def validate(config: Annotated[Path, typer.Argument(help="YAML config")], overrides: OverridesArg = None) -> None:
    """Check a config (and overrides) without running anything; prints the resolved config."""
    import yaml

    _, cfg = _load_stage_config(config, overrides)
    typer.echo(f"# {config}: valid ({cfg.stage})")
    typer.echo(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True))


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="YAML config with a top-level 'stage:' key")],
    overrides: OverridesArg = None,
    run_dir: RunDirOpt = None,
) -> None:
    """Run the stage a config names (resumable: rerun the same command after a crash)."""
    entry, cfg = _load_stage_config(config, overrides)
    out = _resolve_run_dir(run_dir, cfg)
    entry.load_run()(cfg, out)


def _resolve_run_dir(run_dir: Path | None, cfg) -> Path:  # type: ignore[no-untyped-def]
    from judgelab.errors import ConfigError

    if run_dir is not None:
        return run_dir
    if getattr(cfg, "run_dir", None):
        return Path(cfg.run_dir)
    raise ConfigError("no run directory given", "pass --run-dir DIR or set run_dir: in the config")


@app.command()
def annotate(
    config: Annotated[Path, typer.Argument(help="YAML config with stage: annotate")],
    overrides: OverridesArg = None,
    run_dir: RunDirOpt = None,
    input_path: Annotated[Optional[Path], typer.Option("--input", help="JSONL/Parquet records (overrides input:)")] = None,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="report bad rows instead of failing")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="hide the progress bar")] = False,
) -> None:
    """Judge every record of a JSONL/Parquet file; rerun the same command to resume after a crash."""
    from judgelab.stages.annotate import run_annotate

    extra = list(overrides or [])
    if input_path is not None:
        extra.append(f"input={input_path}")
    if skip_invalid:
        extra.append("skip_invalid=true")
    _, cfg = _load_stage_config(config, extra, expect="annotate")
    res = run_annotate(cfg, _resolve_run_dir(run_dir, cfg), show_progress=not no_progress)
    typer.echo(
        f"{res.output}: {res.total} records ({res.done_before} done before, {res.computed} judged now, "
        f"{res.invalid} invalid, {res.skipped_rows} input rows skipped)"
    )


@app.command()
def sample(
    config: Annotated[Path, typer.Argument(help="YAML config with stage: sample")],
    overrides: OverridesArg = None,
    run_dir: RunDirOpt = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="hide the progress bar")] = False,
) -> None:
    """Sample N responses per prompt from a policy model; rerun the same command to resume."""
    from judgelab.stages.sample import run_sample

    _, cfg = _load_stage_config(config, overrides, expect="sample")
    res = run_sample(cfg, _resolve_run_dir(run_dir, cfg), show_progress=not no_progress)
    typer.echo(f"{res.output}: {res.total} responses ({res.done_before} done before, {res.computed} sampled now)")


NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="hide the progress bar")]


@app.command("train-policy")
def train_policy(
    config: Annotated[Path, typer.Argument(help="YAML config with stage: train_policy")],
    overrides: OverridesArg = None,
    run_dir: RunDirOpt = None,
    no_progress: NoProgressOpt = False,
) -> None:
    """GRPO a policy against a proxy judge, tracking proxy, gold and KL; rerun to resume."""
    from judgelab.stages.train_policy import run_train_policy

    _, cfg = _load_stage_config(config, overrides, expect="train_policy")
    res = run_train_policy(cfg, _resolve_run_dir(run_dir, cfg), show_progress=False if no_progress else None)
    m = res.final_metrics
    typer.echo(
        f"{res.run_dir}: {res.global_step} steps{' (already complete)' if res.skipped else ''}, "
        f"tracked steps {res.tracked_steps}; last: proxy {m.get('reward/proxy')}, gold {m.get('reward/gold')}, "
        f"KL {m.get('kl/policy_init')}; model {res.model_path}"
    )


@app.command("eval-policy")
def eval_policy(
    config: Annotated[Path, typer.Argument(help="YAML config with stage: eval_policy")],
    overrides: OverridesArg = None,
    run_dir: RunDirOpt = None,
    no_progress: NoProgressOpt = False,
) -> None:
    """Re-score a train-policy run's checkpoints with any judges; rerun to resume."""
    from judgelab.stages.eval_policy import run_eval_policy

    _, cfg = _load_stage_config(config, overrides, expect="eval_policy")
    res = run_eval_policy(cfg, _resolve_run_dir(run_dir, cfg), show_progress=False if no_progress else None)
    typer.echo(f"{res.tracking}: steps {res.steps} ({len(res.computed)} scored now)")


@app.command("train-judge")
def train_judge(
    config: Annotated[Path, typer.Argument(help="YAML config with stage: train_judge")],
    overrides: OverridesArg = None,
    run_dir: RunDirOpt = None,
    no_progress: NoProgressOpt = False,
) -> None:
    """Train a proxy judge on gold labels (sft / distill / grpo); rerun to resume."""
    from judgelab.stages.train_judge import run_train_judge

    _, cfg = _load_stage_config(config, overrides, expect="train_judge")
    res = run_train_judge(cfg, _resolve_run_dir(run_dir, cfg), show_progress=False if no_progress else None)
    done = " (already complete)" if res.already_completed else ""
    typer.echo(
        f"{res.run_dir}: {res.recipe} judge ({res.mode}, {res.template}) trained {res.global_step} steps on "
        f"{res.n_examples} examples from {res.n_items} items{done}; judge spec {res.judge_spec_path}"
    )


@app.command("eval-judge")
def eval_judge(
    config: Annotated[Path, typer.Argument(help="YAML config with stage: eval_judge")],
    overrides: OverridesArg = None,
    run_dir: RunDirOpt = None,
) -> None:
    """Score judges against held-out gold labels; prints the side-by-side table."""
    from rich.console import Console

    from judgelab.evaluation.judge_eval import judge_eval_table
    from judgelab.stages.eval_judge import run_eval_judge

    _, cfg = _load_stage_config(config, overrides, expect="eval_judge")
    res = run_eval_judge(cfg, _resolve_run_dir(run_dir, cfg))
    Console().print(judge_eval_table(res.rows, title=f"Judges vs gold ({res.n_items} items)"))
    typer.echo(f"{res.output}")


@app.command("stages")
def list_stages() -> None:
    """List the stages ``judgelab run`` knows."""
    from judgelab.stages.registry import STAGES

    for name, entry in sorted(STAGES.items()):
        typer.echo(f"{name:20s} {entry.help}")


# ---------------------------------------------------------------- models
# (models prepare / models list are added below by the models module owner)


@models_app.command("prepare")
def models_prepare(
    alias: Annotated[str, typer.Argument(help="model alias (see `judgelab models list`)")],
    force: Annotated[bool, typer.Option("--force", help="rebuild even if already prepared")] = False,
) -> None:
    """Build a known model alias into $JUDGELAB_HOME/models/ALIAS (local, no download)."""
    from judgelab.models.registry import cli_prepare

    typer.echo(str(cli_prepare(alias, force=force)))


@models_app.command("list")
def models_list() -> None:
    """Known aliases and prepared models, with their folders and sizes."""
    from judgelab.models.registry import cli_list, judgelab_home

    typer.echo(f"JUDGELAB_HOME={judgelab_home()}")
    for row in cli_list():
        state = f"prepared  {row['size_mb']:>8.1f} MB  {row['path']}" if row["prepared"] else "not prepared"
        typer.echo(f"{row['alias']:24s} {state}\n{'':24s} {row['description']}")


# ---------------------------------------------------------------- data
@data_app.command("build")
def data_build(
    config: ConfigOpt,
    overrides: OverridesArg = None,
    run_dir: RunDirOpt = None,
) -> None:
    """Build the study splits (judge/policy train/eval/test) and a data card into the run folder."""
    from judgelab.stages.data_build import run_data_build

    _, cfg = _load_stage_config(config, overrides, expect="data_build")
    res = run_data_build(cfg, _resolve_run_dir(run_dir, cfg))
    typer.echo(f"{res.run_dir}: " + ", ".join(f"{n} {c}" for n, c in res.counts.items()) + "; card in data_card.md")


# ---------------------------------------------------------------- report
@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="a policy run, study or judge-evaluation run directory")],
    out: Annotated[Optional[Path], typer.Option("--out", help="output folder (default: RUN_DIR/report)")] = None,
    png: Annotated[bool, typer.Option("--png", help="also screenshot the page with headless Chromium")] = False,
    samples: Annotated[int, typer.Option("--samples", help="sample prompts shown per run")] = 2,
) -> None:
    """Render report.html (self-contained), report.md and report.json from a run's records."""
    from judgelab.analysis.report import render_png, render_report

    path = render_report(run_dir, out, samples_per_point=samples)
    typer.echo(str(path))
    if png:
        typer.echo(str(render_png(path)))


def main(argv: list[str] | None = None) -> int:
    """Entry point with judgelab's error handling and exit codes."""
    # OpenMP threads (torch, llama.cpp) spin-wait by default; on a machine whose cores are shared
    # with other work that made every forward pass 5–10x slower here. Passive waiting costs little
    # on an idle machine. Set before torch loads; an explicit setting in the environment wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        app(args=argv, standalone_mode=False)
    except JudgelabError as e:
        if _STATE["debug"]:
            logging.getLogger("judgelab").exception("failed")
        typer.secho(f"error: {e.message}", fg="red", err=True)
        if e.hint:
            typer.echo(f"hint: {e.hint}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except (typer.Abort,) as e:  # click's Abort on Ctrl-C during prompts
        del e
        typer.echo("interrupted", err=True)
        return 130
    except typer.Exit as e:
        return int(e.exit_code or 0)
    except SystemExit as e:
        return int(e.code) if isinstance(e.code, int) else 1
    except Exception as e:
        # Usage errors come from the click that typer vendors (typer._click); match by shape, not
        # by import path, so a typer upgrade cannot turn them into tracebacks.
        code = getattr(e, "exit_code", None)
        if callable(getattr(e, "show", None)) and isinstance(code, int):
            e.show()  # type: ignore[attr-defined]
            return code
        raise
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
