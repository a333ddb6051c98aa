"""An optional LLM through any OpenAI-compatible chat endpoint (KGENTS_LLM_URL): it proposes and weighs facts
(`llm_learn.py`) and phrases answers. Nothing here runs, and nothing touches the network, unless the URL is set.

Every call has a deadline (KGENTS_LLM_TIMEOUT, retries included). A refusal for a while (connection refused or
reset, HTTP 429 or 5xx) is retried KGENTS_LLM_RETRIES times after KGENTS_LLM_BACKOFF seconds, doubled each time;
a stall is not retried (the deadline is spent). A failure logs one warning naming the status and the URL (with any
password redacted; the API key travels only in the Authorization header and is never shown), and the K-gent then
uses its own rules for REST_S seconds before it asks the LLM again, so a down or stalled endpoint costs one wait,
not one per message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kgents.config import Settings, redact_url
from kgents.garden.model import GardenEntry
from kgents.soul.model import DialogueMode

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)
REST_S = 30.0
"""How long the K-gent leaves the LLM alone after a failure."""
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)


class LLMFailure(Exception):
    """The LLM gave no usable answer: `status` says why (e.g. `HTTP 503`, `no answer within 2 s`)."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class LLM:
    """A chat-completions client: `await llm.chat(system, user)` → the reply's text."""

    def __init__(
        self,
        url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 10.0,
        retries: int = 2,
        backoff_s: float = 0.5,
    ) -> None:
        import httpx  # only with an LLM configured: no other command pays for importing it

        self.url = url.rstrip("/") + "/chat/completions"
        self.shown_url = redact_url(self.url)
        self.model = model
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client: httpx.AsyncClient = httpx.AsyncClient(timeout=timeout_s, headers=headers)
        self._resting_until = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LLM | None:
        if not settings.llm_url:
            return None
        return cls(
            settings.llm_url,
            settings.llm_model or "default",
            settings.llm_api_key,
            timeout_s=settings.llm_timeout_s,
            retries=settings.llm_retries,
            backoff_s=settings.llm_backoff_s,
        )

    @property
    def available(self) -> bool:
        """False for REST_S after a failure."""
        return time.monotonic() >= self._resting_until

    def deadline(self) -> float:
        """A deadline (monotonic) for one message's calls: KGENTS_LLM_TIMEOUT from now."""
        return time.monotonic() + self.timeout_s

    def failed(self, failure: LLMFailure, what: str) -> None:
        """One warning for a failed step, then rest."""
        self._resting_until = time.monotonic() + REST_S
        log.warning(
            "the LLM at %s failed %s (%s); the K-gent uses its own rules for the next %g s",
            self.shown_url,
            what,
            failure.status,
            REST_S,
        )

    async def chat(self, system: str, user: str, *, deadline: float | None = None) -> str:
        """The reply's text; LLMFailure when there is none by the deadline (default: KGENTS_LLM_TIMEOUT)."""
        deadline = self.deadline() if deadline is None else deadline
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": 0,
        }
        import httpx

        status = "not tried"
        for attempt in range(self.retries + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                async with asyncio.timeout(left):
                    response = await self._client.post(self.url, json=body, timeout=left)
            except TimeoutError:
                raise LLMFailure(f"no answer within {self.timeout_s:g} s") from None
            except (httpx.HTTPError, OSError) as exc:  # refused, reset, a bad TLS handshake
                status = f"unreachable: {type(exc).__name__}"
            else:
                if response.status_code < 300:
                    return completion_text(response)
                status = f"HTTP {response.status_code}"
                if response.status_code not in RETRY_STATUSES:
                    break
            pause = self.backoff_s * 2**attempt
            if attempt == self.retries or time.monotonic() + pause >= deadline:
                break
            await asyncio.sleep(pause)
        raise LLMFailure(status)

    async def phrase(self, mode: DialogueMode, question: str, entries: Sequence[GardenEntry], draft: str) -> str | None:
        """The answer in the LLM's words (None on any failure, or while resting: the draft stands)."""
        if not self.available:
            return None
        known = "\n".join(f"- {e.content} [{e.id.hex[:8]}]" for e in entries)
        system = (
            f"You are K-gent in {mode.value} mode. Answer from these facts about the user only, citing their ids"
            f" in brackets:\n{known}\nA draft answer:\n{draft}"
        )
        try:
            return await self.chat(system, question) or None
        except LLMFailure as failure:
            self.failed(failure, "to phrase an answer")
            return None

    async def close(self) -> None:
        await self._client.aclose()


def completion_text(response: httpx.Response) -> str:
    """The text of a chat completion, or LLMFailure naming what was wrong with it."""
    try:
        data = response.json()
        return str(data["choices"][0]["message"]["content"] or "").strip()
    except (ValueError, KeyError, IndexError, TypeError):
        raise LLMFailure(f"HTTP {response.status_code} with a reply that is not a chat completion") from None


def json_object(text: str) -> dict[str, Any]:
    """The JSON object a reply holds (in a code fence or around a line of prose, as models write), or LLMFailure."""
    fenced = _FENCE.match(text.strip())
    body = fenced.group(1) if fenced else text
    start, end = body.find("{"), body.rfind("}")
    try:
        data = json.loads(body[start : end + 1]) if 0 <= start < end else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise LLMFailure(f"a reply that is not the JSON object asked for: {text[:80]!r}")
    return data
