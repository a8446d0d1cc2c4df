"""Project exceptions.

Every error says what was wrong, where (file, line, field, node, plugin) and,
where it helps, what to do about it. Catch ``AgenticRecError`` to catch them all.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AgenticRecError",
    "ConfigError",
    "DataFormatError",
    "DataValidationError",
    "PluginError",
    "PolicyError",
    "SkillhubError",
    "TrajectoryError",
]


class AgenticRecError(Exception):
    """Base class of every error raised on purpose by agenticrec."""


class ConfigError(AgenticRecError, ValueError):
    """A setting, argument or context field is invalid."""


class DataFormatError(AgenticRecError, ValueError):
    """A data file cannot be parsed.

    Attributes:
        path: the file that was being read.
        line: 1-based line number in that file (``None`` for binary formats).
        field: the column or key that failed, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        where = self.path
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


class DataValidationError(AgenticRecError, ValueError):
    """Data parsed but is unusable (e.g. empty after filtering)."""


class PolicyError(AgenticRecError):
    """A policy could not produce a decision (and no fallback was allowed)."""


class PluginError(AgenticRecError):
    """A tool plugin failed to load or validate.

    Attributes:
        plugin: the entry point (``name = module:attr``) or tool that failed.
    """

    def __init__(self, message: str, *, plugin: str) -> None:
        self.plugin = plugin
        super().__init__(f"plugin {plugin!r}: {message}")


class TrajectoryError(AgenticRecError, ValueError):
    """A trajectory file is malformed or does not match the schema."""


class SkillhubError(AgenticRecError):
    """The Skillhub cannot do what was asked.

    Raised when the embedding model files are missing or corrupt (the message
    names the pip command that installs them), a skill id is already present,
    or a stored collection was built with another embedding function.
    """
