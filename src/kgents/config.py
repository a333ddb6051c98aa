"""One settings object, read from the environment and overridden by CLI flags.

Every URL is checked up front so that a typo produces one line naming the setting (never a traceback), and every
URL is shown redacted: a password never reaches a log, an error or a ghost file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from kgents.errors import ConfigError

HOME_DIR = ".kgents"
"""The default KGENTS_HOME: `~/.kgents`, one place per user whatever the working directory."""
SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
"""A PostgreSQL schema name kgents accepts: a lower-case identifier that never needs escaping inside quotes."""
DEFAULT_PERSONA = "default"
DEFAULT_SCHEMA = "kgents"

PERSONA_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

POSTGRES_SCHEMES = ("postgresql", "postgres")
REDIS_SCHEMES = ("redis", "rediss", "unix")
QDRANT_SCHEMES = ("http", "https")
SERVER_SCHEMES = ("http", "https")

TOKEN_RE = re.compile(r"^[\x21-\x7e]{16,512}$")
"""A bearer token: 16-512 visible ASCII characters (it travels in an HTTP header)."""

AnchorBackend = Literal["sqlite", "postgres"]

DEFAULT_SOUL_TTL_S = 24 * 3600.0
MAX_SOUL_TTL_S = 30 * 24 * 3600.0
DEFAULT_SPARK_PREFIX = "default"
DEFAULT_LLM_TIMEOUT_S = 10.0
DEFAULT_DEAD_LETTER_KEEP_DAYS = 30.0
DEFAULT_LLM_RETRIES = 2
DEFAULT_LLM_BACKOFF_S = 0.5


def check_soul_ttl(value: object) -> float:
    """KGENTS_SOUL_TTL in seconds: a number in (0, 30 days]."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"KGENTS_SOUL_TTL must be a number of seconds (got {value!r:.40})") from None
    if isinstance(value, bool) or not 0 < seconds <= MAX_SOUL_TTL_S:
        raise ConfigError(f"KGENTS_SOUL_TTL must be in (0, {MAX_SOUL_TTL_S:g}] seconds (got {value!r:.40})")
    return seconds


def check_number(name: str, value: object, low: float, high: float, *, whole: bool = False) -> float:
    """A setting that is a number in [low, high] (a whole one with `whole`), else one ConfigError naming it."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not low <= number <= high or (whole and not number.is_integer()):
        kind = "a whole number" if whole else "a number"
        raise ConfigError(f"{name} must be {kind} in [{low:g}, {high:g}] (got {value!r:.40})")
    return number


def redact_url(url: str) -> str:
    """The URL with any password replaced by `***` (safe to print)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        port = ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}{port}", parts.path, parts.query, parts.fragment))


def check_url(setting: str, url: str, schemes: tuple[str, ...]) -> str:
    """Return `url` stripped, or raise ConfigError naming `setting` and what is wrong."""
    url = url.strip()
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{setting} is not a valid URL ({shown}): {exc}") from None
    if parts.scheme not in schemes:
        expected = ", ".join(f"{s}://" for s in schemes)
        raise ConfigError(f"{setting} must start with one of {expected} (got {shown})")
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigError(f"{setting} has no host (got {shown})")
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"{setting} has an invalid port (got {shown})")
    return url


def check_server_token(token: str) -> str:
    """KGENTS_SERVER_TOKEN: 16-512 visible ASCII characters; the error never shows the token."""
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
        raise ConfigError("KGENTS_SERVER_TOKEN must be 16-512 visible ASCII characters (no spaces)")
    return token


def default_home() -> Path:
    return Path.home() / HOME_DIR


def absolute_home(home: Path | str) -> Path:
    """KGENTS_HOME as an absolute path (`~` expanded, a relative one taken from the working directory)."""
    return Path(home).expanduser().absolute()


def check_persona(persona: str) -> str:
    if not PERSONA_RE.fullmatch(persona):
        raise ConfigError(
            "persona must be 1-64 characters of letters, digits, '_', '.' or '-', starting with a letter or digit"
            f" (got {persona!r:.80})"
        )
    return persona


@dataclass(frozen=True, slots=True)
class Settings:
    """Where kgents keeps its memory and whom it remembers for."""

    home: Path = field(default_factory=default_home)
    persona: str = DEFAULT_PERSONA
    postgres_url: str | None = None
    postgres_schema: str = DEFAULT_SCHEMA
    qdrant_url: str | None = None
    qdrant_api_key: str | None = None
    redis_url: str | None = None
    embedder: str | None = None
    """The embedder's name (KGENTS_EMBEDDER); None leaves it to the index's recorded or default one."""
    soul_ttl_seconds: float = DEFAULT_SOUL_TTL_S
    spark_prefix: str = DEFAULT_SPARK_PREFIX
    llm_url: str | None = None
    """An OpenAI-compatible endpoint for the K-gent (KGENTS_LLM_URL, e.g. http://127.0.0.1:8000/v1); None: no LLM."""
    llm_model: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)
    llm_timeout_s: float = DEFAULT_LLM_TIMEOUT_S
    """Seconds the K-gent waits for the LLM on one message, retries included (KGENTS_LLM_TIMEOUT); then its own
    rules answer."""
    llm_retries: int = DEFAULT_LLM_RETRIES
    """Retries of a request the LLM refused for a while (connection refused, 429, 5xx) (KGENTS_LLM_RETRIES)."""
    llm_backoff_s: float = DEFAULT_LLM_BACKOFF_S
    """Seconds before the first retry, doubled before each next one (KGENTS_LLM_BACKOFF)."""
    server_url: str | None = None
    """A running `kgents serve` to go through (KGENTS_SERVER_URL); None finds this home's own server, if any."""
    server_token: str | None = field(default=None, repr=False)
    """The bearer token of that server (KGENTS_SERVER_TOKEN); None reads this home's token file. Never printed."""
    audit_keep_days: float | None = None
    """Audit rows older than this many days are pruned (KGENTS_AUDIT_KEEP_DAYS); None keeps them all."""
    audit_keep_rows: int | None = None
    """Only the newest this many audit rows are kept (KGENTS_AUDIT_KEEP_ROWS); None keeps them all."""
    dead_letter_keep_days: float | None = DEFAULT_DEAD_LETTER_KEEP_DAYS
    """Dead letters older than this many days are pruned (KGENTS_DEAD_LETTER_KEEP_DAYS)."""

    def __post_init__(self) -> None:
        if isinstance(self.home, str) and not self.home.strip():  # Path("") would be the working directory
            raise ConfigError("KGENTS_HOME (--home) is empty; name a folder, or leave it out for ~/.kgents")
        object.__setattr__(self, "home", absolute_home(self.home))
        check_persona(self.persona)
        if not SCHEMA_RE.fullmatch(self.postgres_schema):
            raise ConfigError(
                "KGENTS_POSTGRES_SCHEMA must be a lower-case SQL identifier (letters, digits, '_'),"
                f" got {self.postgres_schema!r:.80}"
            )
        if self.postgres_url is not None:
            object.__setattr__(
                self, "postgres_url", check_url("KGENTS_POSTGRES_URL", self.postgres_url, POSTGRES_SCHEMES)
            )
        if self.qdrant_url is not None:
            object.__setattr__(self, "qdrant_url", check_url("KGENTS_QDRANT_URL", self.qdrant_url, QDRANT_SCHEMES))
        if self.redis_url is not None:
            object.__setattr__(self, "redis_url", check_url("KGENTS_REDIS_URL", self.redis_url, REDIS_SCHEMES))
        if self.llm_url is not None:
            object.__setattr__(self, "llm_url", check_url("KGENTS_LLM_URL", self.llm_url, ("http", "https")))
        if self.server_url is not None:
            url = check_url("KGENTS_SERVER_URL", self.server_url, SERVER_SCHEMES).rstrip("/")
            object.__setattr__(self, "server_url", url)
        if self.server_token is not None:
            check_server_token(self.server_token)
        object.__setattr__(self, "soul_ttl_seconds", check_soul_ttl(self.soul_ttl_seconds))
        object.__setattr__(self, "llm_timeout_s", check_number("KGENTS_LLM_TIMEOUT", self.llm_timeout_s, 0.05, 600))
        retries = check_number("KGENTS_LLM_RETRIES", self.llm_retries, 0, 10, whole=True)
        object.__setattr__(self, "llm_retries", int(retries))
        object.__setattr__(self, "llm_backoff_s", check_number("KGENTS_LLM_BACKOFF", self.llm_backoff_s, 0, 60))
        self._check_retention()
        if not isinstance(self.spark_prefix, str) or not PERSONA_RE.fullmatch(self.spark_prefix):
            raise ConfigError(
                "KGENTS_SPARK_PREFIX must be 1-64 characters of letters, digits, '_', '.' or '-'"
                f" (got {self.spark_prefix!r:.80})"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from `KGENTS_*` variables; keyword overrides (CLI flags) win when not None."""
        env = os.environ if env is None else env

        def pick(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        values: dict[str, object] = {
            "home": pick("KGENTS_HOME") or default_home(),
            "persona": pick("KGENTS_PERSONA") or DEFAULT_PERSONA,
            "postgres_url": pick("KGENTS_POSTGRES_URL"),
            "postgres_schema": pick("KGENTS_POSTGRES_SCHEMA") or DEFAULT_SCHEMA,
            "qdrant_url": pick("KGENTS_QDRANT_URL"),
            "qdrant_api_key": pick("KGENTS_QDRANT_API_KEY"),
            "redis_url": pick("KGENTS_REDIS_URL"),
            "embedder": pick("KGENTS_EMBEDDER"),
            "soul_ttl_seconds": pick("KGENTS_SOUL_TTL") or DEFAULT_SOUL_TTL_S,
            "spark_prefix": pick("KGENTS_SPARK_PREFIX") or DEFAULT_SPARK_PREFIX,
            "llm_url": pick("KGENTS_LLM_URL"),
            "llm_model": pick("KGENTS_LLM_MODEL"),
            "llm_api_key": pick("KGENTS_LLM_API_KEY"),
            "llm_timeout_s": pick("KGENTS_LLM_TIMEOUT") or DEFAULT_LLM_TIMEOUT_S,
            "llm_retries": pick("KGENTS_LLM_RETRIES") or DEFAULT_LLM_RETRIES,
            "llm_backoff_s": pick("KGENTS_LLM_BACKOFF") or DEFAULT_LLM_BACKOFF_S,
            "server_url": pick("KGENTS_SERVER_URL"),
            "server_token": pick("KGENTS_SERVER_TOKEN"),
            "audit_keep_days": pick("KGENTS_AUDIT_KEEP_DAYS"),
            "audit_keep_rows": pick("KGENTS_AUDIT_KEEP_ROWS"),
            "dead_letter_keep_days": pick("KGENTS_DEAD_LETTER_KEEP_DAYS") or DEFAULT_DEAD_LETTER_KEEP_DAYS,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def _check_retention(self) -> None:
        for name, env, whole in (
            ("audit_keep_days", "KGENTS_AUDIT_KEEP_DAYS", False),
            ("audit_keep_rows", "KGENTS_AUDIT_KEEP_ROWS", True),
            ("dead_letter_keep_days", "KGENTS_DEAD_LETTER_KEEP_DAYS", False),
        ):
            value = getattr(self, name)
            if value is not None:
                number = check_number(env, value, 1 if whole else 0.001, 1e9, whole=whole)
                object.__setattr__(self, name, int(number) if whole else number)

    def with_persona(self, persona: str) -> Settings:
        return replace(self, persona=persona)

    @property
    def anchor_backend(self) -> AnchorBackend:
        return "postgres" if self.postgres_url else "sqlite"

    @property
    def sqlite_path(self) -> Path:
        return self.home / "anchor.db"

    def describe_anchor(self) -> str:
        """Where the truth lives, safe to print."""
        if self.postgres_url:
            return f"PostgreSQL {redact_url(self.postgres_url)} (schema {self.postgres_schema})"
        return f"SQLite {self.sqlite_path}"
