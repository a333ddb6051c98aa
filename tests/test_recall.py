"""Hybrid recall on both anchors and both index adapters: the lexical signal finds rare words, the dense one
paraphrases, filters hold inside both searches, coherency covers the lexical signal, COMPOST stays out."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from kgents.config import Settings
from kgents.garden.filters import EntryFilter
from kgents.garden.model import EntryType, Lifecycle
from kgents.resonance.lexical import document_terms, query_terms, tokens
from kgents.resonance.protocols import RankedHit as Ranked
from kgents.synapse import reading, relevance, who
from kgents.synapse.coherency import reconcile
from kgents.synapse.fusion import RecallMode
from kgents.synapse.recall import DENSE_MARGIN, POOL, HybridRecall
from tests.helpers import wait_until
from tests.synapse_env import INDEX_KINDS, Env, open_env

DISTRACTORS = [
    "We walked along the river after dinner",
    "The quarterly report is due on Friday",
    "My sister adopted a grey cat last spring",
    "I enjoy painting sunsets on weekends",
    "The train to the coast was delayed again",
]


@pytest.fixture(params=INDEX_KINDS)
async def env(anchor_settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    async with open_env(anchor_settings, request.param) as opened:
        yield opened


async def ids(recall: HybridRecall, query: str, mode: RecallMode = RecallMode.HYBRID, **kw: object) -> list[uuid.UUID]:
    return [h.entry.id for h in await recall.recall("kent", query, 10, mode=mode, **kw)]  # type: ignore[arg-type]


def test_tokens_are_stemmed_and_question_words_dropped() -> None:
    assert tokens("When did Caroline go to the LGBTQ support groups?") == ["carolin", "go", "lgbtq", "support", "group"]
    assert query_terms("running runs") == query_terms("run")
    assert not document_terms("🌱🌱")


def test_the_compiled_stemmer_agrees_with_the_reference_one() -> None:
    from snowballstemmer.english_stemmer import EnglishStemmer  # the pure-Python Snowball reference

    words = ["generously", "running", "caroline", "lgbtq", "happiness", "adoption", "agencies", "painted"]
    assert [t for w in words for t in tokens(w)] == EnglishStemmer().stemWords(words)


async def test_hybrid_finds_a_rare_name_and_a_paraphrase(env: Env) -> None:
    g = env.garden()
    for text in DISTRACTORS:
        await g.plant(text, "INSIGHT")
    rare = await g.plant("Caroline finally met Zorblax at the harbour market", "INSIGHT")
    minimal = await g.plant("I prefer minimal code", "PREFERENCE")
    await env.relay().drain()
    recall = env.recall()
    assert (await ids(recall, "zorblax"))[0] == rare.id
    assert (await ids(recall, "keep things small and simple"))[0] == minimal.id
    assert await ids(recall, "zorblax", RecallMode.LEXICAL) == [rare.id]
    assert minimal.id not in await ids(recall, "keep things small and simple", RecallMode.LEXICAL), "no shared word"
    explained = await recall.recall("kent", "Zorblax the harbour", 3)
    assert explained[0].entry.id == rare.id and explained[0].lexical_rank == 1 and explained[0].dense_rank


async def test_filters_hold_inside_both_searches(env: Env) -> None:
    g = env.garden()
    best = [await g.plant(f"zorblax harbour zorblax harbour note {i}", "VALUE") for i in range(8)]
    wanted = await g.plant("a short remark about zorblax", "INSIGHT", tags=["keep"])
    other = env.garden("someone-else")
    await other.plant("zorblax harbour zorblax harbour", "INSIGHT", tags=["keep"])
    await env.relay().drain()
    narrow = HybridRecall(env.store, env.queue, env.index, env.resolve, pool=3)  # shallower than the VALUE hits
    filters = EntryFilter(entry_types=(EntryType.INSIGHT,), tags=("keep",))
    for mode in RecallMode:
        hits = await narrow.recall("kent", "zorblax harbour", 5, filters, mode=mode)
        assert [h.entry.id for h in hits] == [wanted.id], mode
    confident = await narrow.recall("kent", "zorblax harbour", 5, EntryFilter(min_confidence=0.9))
    assert confident == []
    assert {h.entry.id for h in await narrow.recall("kent", "zorblax harbour", 5)} <= {b.id for b in best} | {wanted.id}


async def test_a_page_min_score_trims_is_searched_once(env: Env) -> None:
    """A full candidate pool with nothing the filter refuses: asking again without COMPOST finds the same, so a
    page that min_score cut short is not searched (embedded, fused, hydrated) a second time."""
    g = env.garden()
    for i in range(8):
        await g.plant(f"zorblax harbour zorblax harbour note {i}", "VALUE")
    await env.relay().drain()
    narrow = HybridRecall(env.store, env.queue, env.index, env.resolve, pool=3)
    before = env.index.signal_searches
    hits = await narrow.recall("kent", "zorblax harbour", 5, min_score=0.999)
    assert len(hits) < 5 and env.index.signal_searches == before + 1


async def test_dense_asks_the_engine_for_its_page_and_fills_it_past_compost(env: Env) -> None:
    """A dense recall asks for what its page needs, not the hybrid's pool; COMPOST crowding that page (left out
    only by the truth's filter) costs one more search without it, and the page is still full."""
    g = env.garden()
    crowd = [await g.plant(f"zorblax harbour zorblax harbour note {i}", "VALUE") for i in range(8)]
    for entry in crowd:
        await g.compost(entry.id)
    live = [await g.plant(f"a short remark about zorblax number {i}", "INSIGHT") for i in range(4)]
    await env.relay().drain()
    recall, asked = env.recall(), env.index.signal_limits
    dense = RecallMode.DENSE
    hits = await recall.recall("kent", "zorblax harbour", 3, mode=dense)
    assert len(hits) == 3 and {h.entry.id for h in hits} <= {e.id for e in live}
    assert asked == [DENSE_MARGIN * 3, POOL]  # the page crowded out: once more without COMPOST
    asked.clear()
    everything = await recall.recall("kent", "zorblax harbour", 3, EntryFilter(include_compost=True), mode=dense)
    assert len(everything) == 3 and asked == [3]  # nothing the truth refuses: the page's depth, one search


async def test_observed_at_filters_hold_inside_both_searches(env: Env) -> None:
    g = env.garden()
    recent = datetime(2024, 5, 1, tzinfo=UTC)
    for i in range(8):
        await g.plant(f"zorblax harbour zorblax harbour note {i}", "INSIGHT", observed_at=recent)
    wanted = await g.plant("a short remark about zorblax", "INSIGHT", observed_at=datetime(2020, 1, 2, tzinfo=UTC))
    await env.relay().drain()
    narrow = HybridRecall(env.store, env.queue, env.index, env.resolve, pool=3)  # shallower than the recent hits
    early = EntryFilter(observed_before=datetime(2021, 1, 1, tzinfo=UTC))
    for mode in RecallMode:
        hits = await narrow.recall("kent", "zorblax harbour", 5, early, mode=mode)
        assert [h.entry.id for h in hits] == [wanted.id], mode
    late = await narrow.recall("kent", "zorblax harbour", 5, EntryFilter(observed_after=recent))
    assert late and wanted.id not in {h.entry.id for h in late}


async def test_coherency_covers_the_lexical_signal(env: Env) -> None:
    g = env.garden()
    entries = [await g.plant(f"memory of Quillon number {i}", "VALUE") for i in range(4)]
    await env.relay().drain()
    collection = (await env.current_state()).active.collection
    assert await env.index.has_lexical(collection)
    await env.index.drop_lexical(collection, [entries[1].id])
    before = await env.coherency()
    assert (before.matched, before.stale) == (3, 1) and entries[1].id in before.stale_ids
    assert entries[1].id not in await ids(env.recall(), "quillon", RecallMode.LEXICAL)
    report = await reconcile(env.queue, env.index, env.resolve, await env.current_state())
    assert report.repaired == 1 and report.after.coherent
    assert entries[1].id in await ids(env.recall(), "quillon", RecallMode.LEXICAL)


async def test_the_relay_keeps_the_lexical_signal_in_step(env: Env) -> None:
    env.start()
    g = env.garden()
    entry = await g.plant("a note about Brandywine", "INSIGHT")
    recall = env.recall()
    await wait_until(lambda: ids(recall, "brandywine", RecallMode.LEXICAL), lambda found: found == [entry.id])
    await g.update(entry.id, content="a note about Tamarack")
    await wait_until(lambda: ids(recall, "tamarack", RecallMode.LEXICAL), lambda found: found == [entry.id])
    assert await ids(recall, "brandywine", RecallMode.LEXICAL) == []


async def test_compost_is_left_out_unless_asked_for(env: Env) -> None:
    g = env.garden()
    entry = await g.plant("the Velloran recipe for bread", "INSIGHT")
    await g.compost(entry.id)
    await env.relay().drain()
    recall = env.recall()
    for mode in RecallMode:
        assert await ids(recall, "velloran bread recipe", mode) == [], mode
    everything = EntryFilter(include_compost=True)
    assert [h.entry.id for h in await recall.recall("kent", "velloran bread recipe", 5, everything)] == [entry.id]
    named = EntryFilter(lifecycles=(Lifecycle.COMPOST,))
    assert [h.entry.id for h in await recall.recall("kent", "velloran bread", 5, named)] == [entry.id]


async def test_min_score_drops_weak_hits(env: Env) -> None:
    g = env.garden()
    strong = await g.plant("Marisol plays the cello", "INSIGHT")
    for text in DISTRACTORS:
        await g.plant(text, "INSIGHT")
    await env.relay().drain()
    hits = await env.recall().recall("kent", "Marisol cello", 10, min_score=0.5)
    assert [h.entry.id for h in hits] == [strong.id] and hits[0].score >= 0.5


async def test_reindex_rebuilds_the_lexical_signal(env: Env) -> None:
    from kgents.synapse.reindex import reindex
    from kgents.synapse.state import collection_prefix
    from tests.synapse_support import CountingEmbedder

    g = env.garden()
    entry = await g.plant("the Ostrava archive of letters", "INSIGHT")
    await env.relay().drain()
    second = CountingEmbedder(env.embedder.inner, name="test-second-embedder")
    env.extra_embedders[second.name] = second
    schema = env.settings.postgres_schema if env.settings.postgres_url else None
    prefix = collection_prefix(env.queue.backend, schema)
    report = await reindex(env.queue, env.index, second, env.resolve, await env.current_state(), prefix)
    assert report.coherency.coherent
    assert await env.index.has_lexical(report.new.collection)
    assert await ids(env.recall(), "ostrava", RecallMode.LEXICAL) == [entry.id]


async def test_a_neighbouring_turns_strong_match_lifts_an_entry(env: Env) -> None:
    g = env.garden()
    day = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)

    async def turn(text: str, at: datetime, entry_type: str = "INSIGHT") -> uuid.UUID:
        return (await g.plant(text, entry_type, observed_at=at)).id

    asked = await turn("Did you finally visit the Zorblax harbour?", day, "VALUE")
    answer = await turn("Yes, I went there with my sister last week.", day + timedelta(seconds=1))
    after = await turn("That sounds lovely, tell me more.", day + timedelta(seconds=2))
    later = day + timedelta(days=30)
    before_twin = await turn(DISTRACTORS[0], later)
    twin = await turn("Yes, I went there with my sister last week.", later + timedelta(seconds=1))  # same words
    after_twin = await turn(DISTRACTORS[1], later + timedelta(seconds=2))
    await env.relay().drain()
    near = await env.store.get_with_neighbours("kent", [asked, answer, twin, uuid.uuid4()])
    expected = {asked: (None, answer), answer: (asked, after), twin: (before_twin, after_twin)}
    assert {i: n.near for i, n in near.items()} == expected
    assert near[answer].entry == await env.store.get("kent", answer)
    query = "zorblax harbour, went there with my sister"
    flat = HybridRecall(env.store, env.queue, env.index, env.resolve, context=0.0)
    scores = {h.entry.id: h.score for h in await flat.recall("kent", query, 10)}
    assert scores[answer] == pytest.approx(scores[twin]), "the same words: only the context can tell them apart"
    lifted = await env.recall().recall("kent", query, 10)
    lifted_scores = {h.entry.id: h.score for h in lifted}
    assert lifted_scores[answer] > lifted_scores[twin] and all(0.0 < h.score <= 1.0 for h in lifted)
    assert [h.entry.id for h in lifted].index(answer) < [h.entry.id for h in lifted].index(twin)
    insights = await env.recall().recall("kent", query, 10, EntryFilter(entry_types=(EntryType.INSIGHT,)))
    assert asked not in {h.entry.id for h in insights} and answer in {h.entry.id for h in insights}


# -- the relevance scale, who said it, time in the question ---------------------------------------------------


def test_term_weights_read_the_indexs_idf_back_from_the_hits() -> None:
    a, b, c = 11, 22, 33
    idf = {a: 2.0, b: 5.0, c: 0.5}

    def hit(terms: dict[int, float]) -> Ranked:
        return Ranked(uuid.uuid4(), sum(idf[t] * w for t, w in terms.items()), terms)

    hits = [hit({b: 1.3, a: 0.7}), hit({a: 1.1}), hit({c: 0.9, b: 1.0, a: 1.2}), hit({b: 0.8, c: 1.0})]
    assert relevance.term_weights(hits) == pytest.approx(idf)
    together = relevance.term_weights([hit({a: 1.0, b: 1.0})])  # never apart: they share what they add up to
    assert sum(together.values()) == pytest.approx(7.0)


def test_relevance_is_absolute_a_word_no_memory_holds_lowers_every_hit() -> None:
    a, b, sail = 11, 22, 99
    first, second = uuid.uuid4(), uuid.uuid4()
    dense = [Ranked(first, 0.6), Ranked(second, 0.5)]
    lexical = [Ranked(first, 4.0, {a: 1.0, b: 1.0}), Ranked(second, 2.0, {a: 1.0})]
    weights = {a: 2.0, b: 2.0}
    pooled = relevance.pool_terms(lexical)
    asked = relevance.candidates(dense, lexical)
    assert relevance.score(asked.values(), pooled, {a, b}, weights) == 1.0
    full = {i: c.score for i, c in asked.items()}
    assert full[first] == pytest.approx(0.6 * 0.5 + 0.4 * 1.0), "cosine 0.6 is meaning 0.5: (0.6 - 0.2) / 0.8"
    assert full[second] == pytest.approx(0.6 * 0.375 + 0.4 * 0.25), "half the words count a quarter"
    never = relevance.candidates(dense, lexical)
    assert relevance.score(never.values(), pooled, {a, b, sail}, weights) == pytest.approx(2 / 3)
    lowered = {i: c.score for i, c in never.items()}
    assert all(0.0 <= s < full[i] * (2 / 3) ** 2 + 1e-9 for i, s in lowered.items()), "known² and the unknown word"
    assert lowered[first] > lowered[second], "the order between them holds"


def test_whose_memory_and_who_a_question_names() -> None:
    assert who.person_of("Caroline: I went to a support group") == "caroline"
    assert who.person_of("Thanks, Caroline! That was lovely") is None, "a mention is not a speaker"
    assert who.person_of("Ran 5k today", ("run", "speaker:Ana")) == "ana"
    assert who.person_of("lives in Oslo", ("about:sister",)) == "sister"
    people = {"caroline", "melanie", "will"}
    assert who.named("What did Caroline's mom say?", people) == {"caroline": "Caroline"}
    assert who.named("When did Mel paint a sunrise?", people) == {"melanie": "Mel"}
    assert who.named("what will i do next week", people) == {"will": "will"}, "all lower case: any word may be one"
    assert who.named("What will Caroline do?", people) == {"caroline": "Caroline"}, "'will' in lower case is a verb"


def test_a_time_is_a_boost_a_filter_when_it_is_the_whole_question_and_the_callers_window_wins() -> None:
    now = datetime(2024, 5, 15, 10, tzinfo=UTC)
    boost = reading.read("What did I say about the deploy last week?", now, EntryFilter())
    assert (boost.use, boost.text) == ("boost", "What did I say about the deploy ?") and boost.boost is not None
    whole = reading.read("What did I tell you yesterday?", now, EntryFilter())
    assert whole.use == "filter" and whole.boost is None
    narrowed = whole.narrow(EntryFilter())
    day = datetime(2024, 5, 14, tzinfo=UTC)
    assert (narrowed.observed_after, narrowed.observed_before) == (day, day + timedelta(days=1))
    mine = EntryFilter(observed_after=datetime(2020, 1, 1, tzinfo=UTC))
    ignored = reading.read("What did I say about the deploy last week?", now, mine)
    assert ignored.use == "ignored" and ignored.narrow(mine) == mine
    plain = "What did Caroline research?"
    assert reading.read(plain, now, EntryFilter()) == reading.Reading(plain)


async def planted(env: Env, lines: list[tuple[str, datetime]]) -> list[uuid.UUID]:
    g = env.garden()
    out = [(await g.plant(text, "INSIGHT", observed_at=when)).id for text, when in lines]
    await env.relay().drain()
    return out


async def test_a_question_naming_a_person_prefers_their_memories_and_keeps_the_rest(env: Env) -> None:
    day = datetime(2024, 3, 1, tzinfo=UTC)
    caroline, melanie, *_ = await planted(
        env,
        [
            ("Caroline: I painted the lake in the evening", day),
            ("Melanie: I painted the lake at sunrise", day + timedelta(days=3)),
            *[(f"Melanie: {text}", day + timedelta(days=10 + i)) for i, text in enumerate(DISTRACTORS)],
        ],
    )
    question = "What did Caroline paint at the lake at sunrise?"
    hits = await env.recall().recall("kent", question, 5)
    assert [h.entry.id for h in hits[:2]] == [caroline, melanie], "hers first, the other still there"
    explained = hits[0].why or {}
    assert explained["people"] == ["caroline"] and explained["person"] is True
    assert (hits[1].why or {})["person"] is False
    plain = await HybridRecall(env.store, env.queue, env.index, env.resolve, prefer=False).recall("kent", question, 5)
    assert plain[0].entry.id == melanie, "without the preference, the memory holding every word wins"


async def test_a_time_in_the_question_lifts_what_was_observed_then(env: Env) -> None:
    asked = datetime(2024, 5, 15, 10, tzinfo=UTC)
    old, recent, _ = await planted(
        env,
        [
            ("The deploy of the billing service failed on the migration step", datetime(2024, 2, 2, tzinfo=UTC)),
            ("The deploy of billing failed", datetime(2024, 5, 8, 9, tzinfo=UTC)),
            ("Lunch with the team was great", datetime(2024, 5, 14, 12, tzinfo=UTC)),
        ],
    )
    recall = env.recall()
    hits = await recall.recall("kent", "What did I say about the billing deploy last week?", 5, asked_at=asked)
    assert [h.entry.id for h in hits[:2]] == [recent, old]
    assert (hits[0].why or {})["time"] == {
        "phrase": "last week",
        "after": "2024-05-06T00:00:00+00:00",
        "before": "2024-05-13T00:00:00+00:00",
        "use": "boost",
    }
    in_feb = await recall.recall("kent", "the billing deploy in February", 5, asked_at=asked)
    assert in_feb[0].entry.id == old
    yesterday = await recall.recall("kent", "What did I say yesterday?", 5, asked_at=asked)
    assert [h.entry.content for h in yesterday] == ["Lunch with the team was great"], "the whole question: a filter"


async def test_the_default_bar_keeps_what_answers_and_empties_what_was_never_said(env: Env) -> None:
    g = env.garden()
    for text in DISTRACTORS:
        await g.plant(text, "INSIGHT")
    cat = await g.plant("My sister adopted a grey cat named Pixel", "INSIGHT")
    await env.relay().drain()
    recall = env.recall()
    bar = relevance.DEFAULT_MIN_SCORE
    asked = await recall.recall("kent", "What is the name of my sister's cat?", 3, min_score=bar)
    assert asked and asked[0].entry.id == cat.id
    for never in ("When did I go skydiving in Peru?", "Which opera did we see in Vienna?"):
        assert await recall.recall("kent", never, 3, min_score=bar) == [], never
        assert await recall.recall("kent", never, 3), "without the bar the nearest come back, scored low"
