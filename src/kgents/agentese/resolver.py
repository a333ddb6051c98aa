"""AGENTESE paths: `<context>.<holon>.<aspect>` names for what an agent can ask of its memory, and the registry
that resolves them to handlers.

A path is lower-case words joined by dots: a context (`self`, `world`, `time`), a holon of one or more words
(`vitals.triad`, `database.garden`, `drift`) and an aspect (`health`, `count`, `history`). An unknown path is a
NotFoundError that lists the nearest registered ones (difflib).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kgents.config import Settings
from kgents.errors import NotFoundError, ValidationError
from kgents.health.levels import DEFAULT_THRESHOLDS, Thresholds

CONTEXTS = ("self", "world", "time")
_PATH_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){2,7}$")
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
SUGGESTIONS = 3


@dataclass(frozen=True, slots=True)
class AgentPath:
    context: str
    holon: str
    aspect: str

    @classmethod
    def parse(cls, text: object) -> AgentPath:
        """A path from its text; ValidationError naming what is wrong."""
        if not isinstance(text, str) or not _PATH_RE.fullmatch(text):
            raise ValidationError(
                f"an AGENTESE path is <context>.<holon>.<aspect> in lower-case words (got {str(text)!r:.80})"
            )
        words = text.split(".")
        if words[0] not in CONTEXTS:
            raise ValidationError(f"an AGENTESE path starts with one of {', '.join(CONTEXTS)} (got {words[0]!r:.40})")
        return cls(words[0], ".".join(words[1:-1]), words[-1])

    def __str__(self) -> str:
        return f"{self.context}.{self.holon}.{self.aspect}"


@dataclass(frozen=True, slots=True)
class Args:
    """What `kgents invoke PATH [args]` passes on: words (joined into `text`) and `key=value` options."""

    words: tuple[str, ...] = ()
    options: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, items: Sequence[str]) -> Args:
        words: list[str] = []
        options: dict[str, str] = {}
        for item in items:
            key, sep, value = item.partition("=")
            if sep and _KEY_RE.fullmatch(key):
                options[key] = value
            else:
                words.append(item)
        return cls(tuple(words), options)

    @property
    def text(self) -> str | None:
        return " ".join(self.words) if self.words else self.options.get("text")

    def integer(self, key: str, default: int, low: int = 1, high: int = 1_000) -> int:
        raw = self.options.get(key)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ValidationError(f"{key} must be a whole number (got {raw!r:.40})") from None
        if not low <= value <= high:
            raise ValidationError(f"{key} must be between {low} and {high} (got {value})")
        return value


@dataclass(frozen=True, slots=True)
class AgentContext:
    """Who asks: the settings (persona, backends), the health thresholds, and who records drift samples."""

    settings: Settings
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    record: str | None = None
    """Append a drift sample when health is collected (the name of who took it), or None."""
    progress: Callable[[str], None] | None = None
    """Told one line when a path waits for the process that owns the embedded index."""


Handler = Callable[[AgentContext, Args], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Registered:
    path: str
    handler: Handler
    summary: str


class UnknownPathError(NotFoundError):
    def __init__(self, path: str, suggestions: list[str]) -> None:
        self.path = path
        self.suggestions = suggestions
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else "; `kgents invoke --list` lists them"
        super().__init__(f"unknown AGENTESE path {path!r:.80}{hint}")


class Registry:
    """Paths → handlers."""

    def __init__(self) -> None:
        self._handlers: dict[str, Registered] = {}

    def register(self, path: str, summary: str) -> Callable[[Handler], Handler]:
        parsed = str(AgentPath.parse(path))

        def add(handler: Handler) -> Handler:
            if parsed in self._handlers:
                raise ValueError(f"{parsed} is registered twice")
            self._handlers[parsed] = Registered(parsed, handler, summary)
            return handler

        return add

    def paths(self) -> list[Registered]:
        return [self._handlers[p] for p in sorted(self._handlers)]

    def suggest(self, path: str) -> list[str]:
        """The nearest registered paths (by spelling, then by shared prefix)."""
        names = sorted(self._handlers)
        close = difflib.get_close_matches(path, names, n=SUGGESTIONS, cutoff=0.6)
        if not close:
            prefix = path.rsplit(".", 1)[0]
            close = [n for n in names if n.startswith(prefix + ".")][:SUGGESTIONS]
        return close

    def resolve(self, path: str) -> Registered:
        if isinstance(path, str) and path in self._handlers:
            return self._handlers[path]
        try:
            parsed = str(AgentPath.parse(path))
        except ValidationError:
            if isinstance(path, str) and path.strip():
                raise UnknownPathError(path, self.suggest(path.strip().lower())) from None
            raise
        if parsed not in self._handlers:
            raise UnknownPathError(parsed, self.suggest(parsed))
        return self._handlers[parsed]

    async def invoke(self, ctx: AgentContext, path: str, args: Args | None = None) -> Any:
        return await self.resolve(path).handler(ctx, args or Args())
