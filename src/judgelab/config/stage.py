"""Base schema for stage configs: every stage config has a ``stage`` discriminator."""

from __future__ import annotations

from pydantic import Field

from judgelab.config.specs import StrictModel


class StageConfig(StrictModel):
    """Fields every stage config carries. Subclasses narrow ``stage`` to a ``Literal``."""

    stage: str
    run_dir: str | None = Field(None, description="output folder; the CLI's --run-dir wins")
    seed: int = 0


__all__ = ["StageConfig"]
