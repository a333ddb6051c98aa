"""An optional LLM through any OpenAI-compatible chat endpoint: phrases answers and proposes extractions.

Nothing here runs unless KGENTS_LLM_URL is set; every failure falls back to the K-gent's own words.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import httpx

from kgents.config import Settings
from kgents.garden.model import EntryType, GardenEntry
from kgents.kgent.extract import Statement, affinities_for, tidy
from kgents.soul.model import DialogueMode

log = logging.getLogger(__name__)
TIMEOUT_S = 20.0
EXTRACT_PROMPT = (
    "Does the user's message state a lasting preference, value, behavior or pattern of theirs? Reply with JSON only:"
    ' {"kind": "PREFERENCE|VALUE|BEHAVIOR|PATTERN|NONE", "subject": "...", "polarity": 1 or -1,'
    ' "confidence": 0..1}'
)


class LLM:
    """A chat-completions client: `await llm.chat(system, user)` → the reply's text."""

    def __init__(self, url: str, model: str, api_key: str | None = None) -> None:
        self.url = url.rstrip("/") + "/chat/completions"
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(timeout=TIMEOUT_S, headers=headers)

    @classmethod
    def from_settings(cls, settings: Settings) -> LLM | None:
        if not settings.llm_url:
            return None
        return cls(settings.llm_url, settings.llm_model or "default", settings.llm_api_key)

    async def chat(self, system: str, user: str) -> str:
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        }
        response = await self._client.post(self.url, json=body)
        response.raise_for_status()
        return str(response.json()["choices"][0]["message"]["content"]).strip()

    async def phrase(self, mode: DialogueMode, question: str, entries: Sequence[GardenEntry], draft: str) -> str | None:
        """The answer in the LLM's words (None on any failure: the draft stands)."""
        known = "\n".join(f"- {e.content} [{e.id.hex[:8]}]" for e in entries)
        system = (
            f"You are K-gent in {mode.value} mode. Answer from these facts about the user only, citing their ids"
            f" in brackets:\n{known}\nA draft answer:\n{draft}"
        )
        try:
            return await self.chat(system, question) or None
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
            log.warning("the LLM did not answer (%s); using K-gent's own words", type(exc).__name__)
            return None

    async def propose(self, text: str) -> Statement | None:
        """A statement the LLM recognised in `text`, if any."""
        try:
            data = json.loads(await self.chat(EXTRACT_PROMPT, text))
            kind = str(data.get("kind", "NONE")).upper()
            if kind not in {t.value for t in EntryType} or kind == EntryType.INSIGHT.value:
                return None
            polarity = -1 if int(data.get("polarity", 1)) < 0 else 1
            confidence = min(1.0, max(0.0, float(data.get("confidence", 0.5))))
            subject = str(data.get("subject") or text)
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            log.warning("the LLM proposed nothing usable (%s)", type(exc).__name__)
            return None
        return Statement(
            EntryType(kind), tidy(text), subject, polarity, confidence, False, affinities_for(subject, polarity)
        )

    async def close(self) -> None:
        await self._client.aclose()
