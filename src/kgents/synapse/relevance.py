"""The relevance scale of a hybrid recall: one number in [0, 1] that means the same whatever the query, the
garden or the other hits, so that one `min_score` cuts alike everywhere. Pure functions, no I/O.

    relevance = (0.6 * meaning + 0.4 * words²) * known²

- meaning: the dense cosine of the entry to the query above `MEANING_FLOOR`, rescaled to [0, 1]: (cos - 0.2) / 0.8
  (0 below; 0 for an entry only the lexical signal found, its cosine being under the hundredth dense
  candidate's). Unrelated short notes reach a cosine of 0.1 (median) to 0.24 (90th percentile) with the bundled
  model (bench/paraphrase.py's garden, every pair): a cosine of 0.2 means nothing yet;
- words: the share of the query's content words the entry holds, each weighted by its IDF (a rare word counts
  more than a common one; the index's own IDF, read back from the lexical hits' scores: `term_weights`; a word
  no candidate holds weighs as much as the rarest one some candidate holds); squared, so that a memory holding
  half the words counts a quarter and an incidental common word cannot outvote a paraphrase;
- known: the share of the query's content words that any candidate of the searched memories holds at all (at
  least 0.1). A question about something never said ("When did Melanie go skydiving?") holds a word no memory
  holds, and every hit of it scores low, however close its other words; squared, because such a word weighs
  more than the hits' own matches.

Content words are the query's stemmed words less stop and question words (`lexical.tokens`), less the request
words of a question ("say", "tell", "remember": they ask, they are not what about), less the names of the people
it names (`who.py`: a name says whose memory, not what) and the time phrase (`when.py`).

Measured on bench/recall.py (LoCoMo dev, 760 questions, and tests/data/never_said.tsv): `DEFAULT_MIN_SCORE`
keeps an evidence turn for 95 % of the questions whose evidence is in the top 10 and returns nothing for most
questions about things never said (bench/recall.py prints both). With the bundled static embedder, an entry
found by meaning alone, sharing no word with the query, scores low on this scale: a cut drops it.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from kgents.garden.records import Glance
from kgents.resonance.protocols import RankedHit

MEANING_FLOOR = 0.2
MEANING_SHARE = 0.6
"""The dense cosine's share of the match (the words' is the rest): bench/recall.py's dev split, 0.5 to 0.67
within a point of recall_any@10; under 0.6 bench/paraphrase.py's paraphrases (no shared word) lose r@1."""
WORDS_POWER = 2.0
KNOWN_POWER = 2.0
KNOWN_FLOOR = 0.1
DEFAULT_MIN_SCORE = 0.08
"""The cut of the chat and of the MCP `recall` tool (the Python face and HTTP cut nothing unless asked)."""
REQUEST_WORDS = frozenset(
    {"say", "said", "tell", "told", "mention", "talk", "discuss", "rememb", "recal", "know", "knew", "note"}
    | {"anyth", "someth"}
)
"""Stems of the words a question asks with ("what did I say about", "remind me what I told you")."""


@dataclass(slots=True)
class Candidate:
    """One candidate of a hybrid recall and what its score came from (not frozen, like `RankedHit`: a recall
    builds hundreds, and each step of `fusion.py` updates them in place)."""

    id: uuid.UUID
    score: float = 0.0
    meaning: float = 0.0
    words: float = 0.0
    dense_rank: int | None = None
    lexical_rank: int | None = None
    terms: dict[int, float] | None = None
    """The query's terms it holds (lexical candidates), with their weights."""
    person: bool | None = None
    """Of a person the query names (None: it names none)."""
    in_time: bool | None = None
    """Observed in the time the query names (None: it names none, or that time is a filter)."""
    glance: Glance | None = None
    """Its row's content, time and tags, where the recall read its row."""
    near: tuple[uuid.UUID | None, uuid.UUID | None] = (None, None)
    """The memories observed just before and after it, where the recall read its row."""
    neighbour: float = 0.0
    """The best score among its neighbours, averaged into its own (`fusion.with_context`)."""
    own: float | None = None
    """Its score before that (None: no neighbours' lift was applied)."""


def term_weights(lexical: Sequence[RankedHit]) -> dict[int, float]:
    """Each query term's IDF as the index applied it, read back from the lexical hits: a hit's score is the sum of
    IDF * weight over the terms it holds, so a hit holding one term gives that term's IDF, and a hit holding
    several, once all but one are known, the last one's. Terms left unsolved share their hits' remainder."""
    known: dict[int, float] = {}
    pending = [h for h in lexical if h.terms]
    while pending:
        left = []
        for hit in pending:
            assert hit.terms is not None
            unknown = [t for t in hit.terms if t not in known]
            if len(unknown) == 1 and hit.terms[unknown[0]] > 0:
                rest = sum(known[t] * w for t, w in hit.terms.items() if t in known)
                known[unknown[0]] = max(0.0, (hit.score - rest) / hit.terms[unknown[0]])
            elif unknown:
                left.append(hit)
        if len(left) == len(pending):
            break
        pending = left
    for hit in pending:  # several unknown terms in every hit left: they share what the known ones leave
        assert hit.terms is not None
        unknown = [t for t in hit.terms if t not in known]
        rest = hit.score - sum(known.get(t, 0.0) * w for t, w in hit.terms.items() if t in known)
        mass = sum(hit.terms[t] for t in unknown)
        for t in unknown:
            known.setdefault(t, max(0.0, rest) / mass if mass > 0 else 0.0)
    return known


def content_terms(terms: Iterable[int], left_out: Collection[int]) -> frozenset[int]:
    """The query's content terms: its terms less `left_out` (names, request words); all of them if that leaves
    none (a query that is only a name still searches for it)."""
    kept = frozenset(t for t in terms if t not in left_out)
    return kept or frozenset(terms)


def pool_terms(lexical: Sequence[RankedHit]) -> frozenset[int]:
    """Every query term some lexical candidate holds."""
    seen: set[int] = set()
    for hit in lexical:
        if hit.terms:
            seen.update(hit.terms)
    return frozenset(seen)


def meaning(cosine: float) -> float:
    """A dense cosine on the relevance scale: 0 at `MEANING_FLOOR` and below, 1 at 1."""
    return max(0.0, (cosine - MEANING_FLOOR) / (1.0 - MEANING_FLOOR))


def candidates(dense: Sequence[RankedHit], lexical: Sequence[RankedHit]) -> dict[uuid.UUID, Candidate]:
    """Every candidate of both signals once, by id, in the order first seen (dense first), without its score."""
    found: dict[uuid.UUID, Candidate] = {}
    for rank, hit in enumerate(dense, start=1):
        if hit.id not in found:
            found[hit.id] = Candidate(hit.id, meaning=meaning(hit.score), dense_rank=rank)
    for rank, hit in enumerate(lexical, start=1):
        got = found.get(hit.id)
        if got is None:
            got = found[hit.id] = Candidate(hit.id)
        elif got.lexical_rank is not None:
            continue
        got.lexical_rank, got.terms = rank, hit.terms
    return found


def score(
    found: Iterable[Candidate],
    pooled: AbstractSet[int],
    content: AbstractSet[int],
    weights: Mapping[int, float],
) -> float:
    """Set each candidate's words and relevance for these content terms (in place), `pooled` being the terms
    some lexical candidate holds (`pool_terms`); the query's known share."""
    seen = content & pooled
    share = len(seen) / len(content) if content else 1.0
    known = max(share, KNOWN_FLOOR) ** KNOWN_POWER
    held = [weights.get(t, 0.0) for t in seen]
    total = sum(held) + max(held, default=0.0) * (len(content) - len(seen))
    weight = {t: weights.get(t, 0.0) / total for t in seen} if total > 0 else {}
    meaning_share, words_share = MEANING_SHARE * known, (1.0 - MEANING_SHARE) * known
    for c in found:
        if not content:
            c.words = 1.0
        elif c.terms and weight:
            c.words = sum(weight.get(t, 0.0) for t in c.terms) ** WORDS_POWER
        else:
            c.words = 0.0
        c.score = meaning_share * c.meaning + words_share * c.words
    return share
