"""The optional LLM, against a fake OpenAI-compatible server on loopback (a real HTTP server in this process, never a
mocked client): mem0's two steps (facts from the user's message alone, then ADD / UPDATE / DELETE / NONE against the
nearest memories) applied through the face; a stalled, failing or garbling endpoint falls back to the rule-based
learner within the timeout, with one warning naming the status and the URL (never the key)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kgents.config import Settings
from kgents.garden.filters import EntryFilter
from kgents.garden.model import EntryType, Lifecycle
from kgents.kgent.learn import Action
from kgents.kgent.llm import LLM
from kgents.kgent.llm_learn import DECIDE_PROMPT, FACTS_PROMPT
from kgents.kgent.session import KGent
from kgents.memory import AsyncMemory
from tests.helpers import kgents_env

KEY = "sk-test-0123456789abcdef"
Answer = tuple[int, str] | None
"""(status, the completion's text), or None: stall until the test ends."""


@dataclass
class FakeLLM:
    """What the fake endpoint answers (`facts`, `decide`, `phrase`: request body → Answer) and what it was sent."""

    url: str = ""
    facts: Callable[[str], Answer] = lambda message: (200, '{"facts": []}')
    decide: Callable[[dict[str, Any]], Answer] = lambda request: (200, '{"memory": []}')
    phrase: Callable[[str], Answer] = lambda question: (200, "From the LLM.")
    seen: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def answer(self, body: dict[str, Any]) -> Answer:
        system, user = body["messages"][0]["content"], body["messages"][1]["content"]
        if system == FACTS_PROMPT:
            return self.facts(user)
        if system == DECIDE_PROMPT:
            return self.decide(json.loads(user))
        return self.phrase(user)

    def kinds(self) -> list[str]:
        names = {FACTS_PROMPT: "facts", DECIDE_PROMPT: "decide"}
        return [names.get(s["body"]["messages"][0]["content"], "phrase") for s in self.seen]


def completion(content: str) -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    script = FakeLLM()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            script.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
            answer = script.answer(body)
            if answer is None:
                script.release.wait(60)  # a stalled endpoint: accepts, never answers
                return
            status, content = answer
            data = completion(content) if status < 300 else b'{"error": "busy"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    script.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield script
    script.release.set()
    server.shutdown()
    server.server_close()


def settings_for(tmp_path: Path, fake: FakeLLM, **llm: Any) -> Settings:
    options = {"llm_timeout_s": 5.0, "llm_retries": 2, "llm_backoff_s": 0.01} | llm
    return Settings(
        home=tmp_path / "home", persona="kent", llm_url=fake.url, llm_model="tiny", llm_api_key=KEY, **options
    )


@pytest.fixture
async def memory(tmp_path: Path) -> AsyncIterator[AsyncMemory]:
    async with AsyncMemory(settings=Settings(home=tmp_path / "home", persona="kent")) as opened:
        yield opened


def facts_of(*facts: tuple[str, str]) -> Callable[[str], Answer]:
    return lambda message: (200, json.dumps({"facts": [{"text": t, "type": k} for t, k in facts]}))


def decided(*events: tuple[int, str, str | None]) -> Callable[[dict[str, Any]], Answer]:
    """Decisions for (fact, event, the text of the memory it names or None): the fake finds that memory's number."""

    def decide(request: dict[str, Any]) -> Answer:
        shown = {m["text"]: m["id"] for m in request["existing_memories"]}
        items = [{"fact": f, "event": e, "id": None if t is None else shown[t]} for f, e, t in events]
        return 200, "```json\n" + json.dumps({"memory": items}) + "\n```"  # fenced, as models often write

    return decide


async def test_two_steps_add_facts_from_the_users_words_only(
    tmp_path: Path, fake: FakeLLM, memory: AsyncMemory
) -> None:
    fake.facts = facts_of(("I live in Berlin", "INSIGHT"), ("I have two cats", "BEHAVIOR"))
    fake.decide = decided((0, "ADD", None), (1, "ADD", None))
    kg = KGent(memory, LLM.from_settings(settings_for(tmp_path, fake)))
    reply = await kg.observe("I live in Berlin and I have two cats, you know")
    assert "Noted: I live in Berlin" in reply.text and "Noted: I have two cats" in reply.text
    entries = {e.content: e for e in await memory.list()}
    assert set(entries) == {"I live in Berlin", "I have two cats"}
    assert entries["I have two cats"].entry_type is EntryType.BEHAVIOR and "llm" in entries["I have two cats"].tags
    assert entries["I live in Berlin"].evidence == ("I live in Berlin and I have two cats, you know",)
    fake.facts = facts_of()
    await kg.observe("Please split this function in two")  # an order: no fact, no rule asked
    assert fake.kinds() == ["facts", "decide", "facts"]
    facts_asked = [
        s["body"]["messages"][1]["content"] for s in fake.seen if s["body"]["messages"][0]["content"] == FACTS_PROMPT
    ]
    assert facts_asked == ["I live in Berlin and I have two cats, you know", "Please split this function in two"]
    assert all("Noted" not in json.dumps(s["body"]) for s in fake.seen)  # the K-gent's replies never go in
    assert all(s["auth"] == f"Bearer {KEY}" and s["body"]["model"] == "tiny" for s in fake.seen)
    await kg.close()


async def test_update_supersedes_delete_composts_with_a_reason_none_keeps(
    tmp_path: Path, fake: FakeLLM, memory: AsyncMemory
) -> None:
    lisbon = await memory.remember("I live in Lisbon", tags=["kgent"])
    cat = await memory.remember("I have a cat named Miso", tags=["kgent"])
    code = await memory.remember("I prefer minimal code", type=EntryType.PREFERENCE, tags=["kgent"])
    kg = KGent(memory, LLM.from_settings(settings_for(tmp_path, fake)))

    fake.facts, fake.decide = facts_of(("I live in Porto", "INSIGHT")), decided((0, "UPDATE", "I live in Lisbon"))
    moved = await kg.observe("I've moved to Porto")
    assert moved.learned is not None and moved.learned.action is Action.SUPERSEDED
    old = await memory.get(lisbon.id)
    assert old.lifecycle is Lifecycle.COMPOST and f"superseded-by:{moved.learned.entry.id}" in old.tags
    assert moved.learned.entry.content == "I live in Porto" and len(await memory.history(lisbon.id)) == 2

    fake.facts, fake.decide = (
        facts_of(("I prefer minimal code", "PREFERENCE")),
        decided((0, "UPDATE", "I prefer minimal code")),
    )
    again = await kg.observe("Again: I prefer minimal code")
    assert again.learned is not None and again.learned.action is Action.NURTURED and again.learned.entry.id == code.id

    fake.facts, fake.decide = (
        facts_of(("I no longer have a cat", "INSIGHT")),
        decided((0, "DELETE", "I have a cat named Miso")),
    )
    gone = await kg.observe("Miso went to live with my parents for good")
    assert "Forgotten: I have a cat named Miso" in gone.text
    composted = await memory.get(cat.id)
    assert composted.lifecycle is Lifecycle.COMPOST
    assert "the user said: Miso went to live with my parents for good" in composted.evidence
    assert (await memory.history(cat.id))[-1].new is not None  # the reason is in its history

    before = {e.id: e.version for e in await memory.list(EntryFilter(include_compost=True))}
    fake.facts, fake.decide = facts_of(("I live in Porto", "INSIGHT")), decided((0, "NONE", "I live in Porto"))
    known = await kg.observe("Porto is where I live")
    assert known.text == "That matches what I knew."
    assert {e.id: e.version for e in await memory.list(EntryFilter(include_compost=True))} == before
    await kg.close()


async def test_a_decision_naming_no_memory_shown_is_dropped(tmp_path: Path, fake: FakeLLM, memory: AsyncMemory) -> None:
    fake.facts = facts_of(("I like tea", "PREFERENCE"), ("I like jazz", "PREFERENCE"))
    fake.decide = lambda request: (
        200,
        json.dumps(
            {
                "memory": [
                    {"fact": 0, "event": "DELETE", "id": "7"},  # no memory 7 was shown
                    {"fact": 5, "event": "ADD"},  # no fact 5
                    {"fact": "1", "event": "add"},
                ]
            }
        ),
    )
    kg = KGent(memory, LLM.from_settings(settings_for(tmp_path, fake)))
    await kg.observe("I like tea and jazz")
    assert [e.content for e in await memory.list()] == ["I like jazz"]
    await kg.close()


@pytest.mark.parametrize(
    "broken",
    [
        {"facts": lambda m: (200, "Sure! Here are the facts: none really.")},
        {"facts": facts_of(("I prefer Blorptastic muffins", "PREFERENCE")), "decide": lambda r: (200, '{"memory": 3}')},
        {"facts": lambda m: (200, '{"facts": "I prefer Blorptastic muffins"}')},
    ],
    ids=["facts-not-json", "decisions-not-a-list", "facts-not-a-list"],
)
async def test_a_malformed_reply_falls_back_to_the_rules_with_one_warning(
    tmp_path: Path, fake: FakeLLM, memory: AsyncMemory, broken: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    for name, answer in broken.items():
        setattr(fake, name, answer)
    kg = KGent(memory, LLM.from_settings(settings_for(tmp_path, fake)))
    with caplog.at_level(logging.WARNING, logger="kgents.kgent.llm"):
        reply = await kg.observe("I prefer Blorptastic muffins")
    assert reply.learned is not None and reply.learned.action is Action.PLANTED  # the rule-based learner's
    assert "Noted: I prefer Blorptastic muffins" in reply.text
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"{fake.url}/chat/completions" in warnings[0] and "JSON" in warnings[0]
    await kg.close()


async def test_a_stalled_endpoint_falls_back_within_the_timeout_then_rests(
    tmp_path: Path, fake: FakeLLM, memory: AsyncMemory, caplog: pytest.LogCaptureFixture
) -> None:
    fake.facts = lambda message: None
    kg = KGent(memory, LLM.from_settings(settings_for(tmp_path, fake, llm_timeout_s=0.5)))
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="kgents.kgent.llm"):
        first = await kg.observe("I prefer Blorptastic muffins")
        took = time.monotonic() - began
        second = await kg.observe("I value quiet mornings")  # the LLM rests: no second wait
    assert "Noted: I prefer Blorptastic muffins" in first.text and "Noted: I value quiet mornings" in second.text
    assert took < 5.0 and len(fake.seen) == 1  # one stalled request, given up at the deadline, not retried
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no answer within 0.5 s" in warnings[0] and fake.url in warnings[0]
    await kg.close()


async def test_a_busy_endpoint_is_retried_with_back_off_and_a_failing_one_named(
    tmp_path: Path, fake: FakeLLM, memory: AsyncMemory, caplog: pytest.LogCaptureFixture
) -> None:
    answers = iter([(503, ""), (429, ""), (200, json.dumps({"facts": [{"text": "I like tea", "type": "PREFERENCE"}]}))])
    fake.facts = lambda message: next(answers)
    fake.decide = decided((0, "ADD", None))
    kg = KGent(memory, LLM.from_settings(settings_for(tmp_path, fake, llm_retries=2)))
    with caplog.at_level(logging.WARNING, logger="kgents.kgent.llm"):
        busy = await kg.observe("I like tea")
        assert busy.learned is not None and "llm" in busy.learned.entry.tags and not caplog.records
        fake.facts = lambda message: (500, "")
        failing = await kg.observe("I prefer Blorptastic muffins")
    assert "Noted: I prefer Blorptastic muffins" in failing.text
    assert fake.kinds() == ["facts"] * 3 + ["decide"] + ["facts"] * 3  # the first try and two retries each
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "HTTP 500" in warnings[0] and fake.url in warnings[0]
    assert KEY not in caplog.text
    await kg.close()


async def test_the_llm_phrases_answers(tmp_path: Path, fake: FakeLLM, memory: AsyncMemory) -> None:
    await memory.remember("I prefer minimal code", type=EntryType.PREFERENCE, tags=["kgent", "likes"])
    kg = KGent(memory, LLM.from_settings(settings_for(tmp_path, fake)))
    answer = await kg.observe("What do you know about my style?")
    assert answer.text == "From the LLM." and answer.cited
    await kg.close()


def test_no_llm_unless_configured(tmp_path: Path) -> None:
    assert LLM.from_settings(Settings(home=tmp_path)) is None
    code = "import sys, kgents.kgent.llm, kgents.kgent.llm_learn; print('httpx' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"  # nothing of the network is even loaded


def test_a_piped_chat_stays_usable_beside_a_stalled_llm(tmp_path: Path, fake: FakeLLM) -> None:
    fake.facts = lambda message: None
    env = kgents_env(Settings(home=tmp_path / "home")) | {
        "KGENTS_LLM_URL": fake.url,
        "KGENTS_LLM_API_KEY": KEY,
        "KGENTS_LLM_TIMEOUT": "1",
    }
    kgents = str(Path(sys.executable).with_name("kgents"))
    done = subprocess.run(
        [kgents, "chat", "--no-dream"],
        input="I prefer Blorptastic muffins\nI value quiet mornings\n/quit\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Noted: I prefer Blorptastic muffins" in done.stdout and "Noted: I value quiet mornings" in done.stdout
    warnings = [line for line in done.stderr.splitlines() if "LLM" in line]
    assert len(warnings) == 1 and "no answer within 1 s" in warnings[0] and KEY not in done.stderr, done.stderr
