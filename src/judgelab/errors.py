"""Typed errors (L0). Every user-facing failure is a ``JudgelabError`` with a message and a hint.

The CLI prints ``message`` and ``hint`` without a traceback (``--debug`` shows it) and maps the
class to an exit code: usage/config errors exit 2, everything else 1 (see ``exit_code``).
"""

from __future__ import annotations


class JudgelabError(Exception):
    """Base class: ``message`` says what went wrong, ``hint`` says how to fix it."""

    exit_code: int = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ConfigError(JudgelabError):
    """A config file, override or argument is invalid."""

    exit_code = 2


class DataError(JudgelabError):
    """Input data is missing, malformed or inconsistent (names file, row and column)."""


class BackendError(JudgelabError):
    """A model backend failed (server down, timeout after retries, bad response)."""


class InvalidOutputBudgetExceeded(JudgelabError):
    """A judge produced more unparseable verdicts than the configured budget allows."""


class MissingDependencyError(JudgelabError):
    """An optional dependency (extra) is needed for this feature and is not installed."""

    def __init__(self, package: str, extra: str | None = None, feature: str | None = None) -> None:
        what = f" for {feature}" if feature else ""
        hint = (
            f"pip install 'judgelab[{extra}]'" if extra else f"pip install {package}"
        )
        super().__init__(f"the package '{package}' is needed{what} but is not installed", hint)
        self.package = package


class RunDirError(JudgelabError):
    """A run directory is missing, locked, or belongs to a different config."""


__all__ = [
    "BackendError",
    "ConfigError",
    "DataError",
    "InvalidOutputBudgetExceeded",
    "JudgelabError",
    "MissingDependencyError",
    "RunDirError",
]
