"""Which process writes a run directory when a stage runs under torchrun / accelerate (L1).

Every rank runs the stage function; only the main process (``RANK`` 0, or no ``RANK``: a plain
single-process run) creates and writes the run directory, and the other ranks wait until its
manifest exists before reading anything from it, so no rank races rank 0's ``RunDir.open``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from judgelab.errors import RunDirError


def is_main_process() -> bool:
    """True unless launched as a non-zero rank (torchrun / accelerate set ``RANK``)."""
    return int(os.environ.get("RANK", "0")) == 0


def wait_for_run_dir(run_dir: str | Path, timeout_s: float = 600.0, poll_s: float = 0.5) -> None:
    """Block until rank 0 has written ``run_dir/manifest.json`` (``RunDirError`` after ``timeout_s``)."""
    manifest = Path(run_dir) / "manifest.json"
    deadline = time.monotonic() + timeout_s
    while not manifest.exists():
        if time.monotonic() > deadline:
            raise RunDirError(f"rank {os.environ.get('RANK')}: rank 0 did not create {run_dir} in {timeout_s:.0f} s",
                              "check rank 0's log")
        time.sleep(poll_s)


__all__ = ["is_main_process", "wait_for_run_dir"]
