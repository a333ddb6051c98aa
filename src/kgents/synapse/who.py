"""Who said it: the person a memory is of, and the people a question names. Pure functions, no I/O.

A memory is of a person when its content starts with their name as a label ("Caroline: I went to a support
group", the LoCoMo protocol and any transcript) or when it carries the tag `speaker:<name>` or `about:<name>`.
A question names a person when one of its words is that name (any case; "Caroline's" too) or, written with a
capital, the start of it ("Mel" for Melanie). Only the people of the candidates a recall looked at are looked
for, so nothing scans the garden. A hybrid recall then prefers the memories of the people named: the others keep
their place among themselves but count `PERSON_SHARE` less (bench/recall.py's dev split: + 2 to 3 points
recall_any@10; a memory that merely mentions the person by name, as in "Thanks, Caroline!", is not theirs:
counting those lost 2.5 points).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_LABEL = re.compile(r"\s*([A-Z][\w'\u2019.-]*(?:\s+[A-Z][\w'\u2019.-]*){0,2})\s*:\s")
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)?")
TAG_PREFIXES = ("speaker:", "about:")


def person_of(content: str, tags: Sequence[str] = ()) -> str | None:
    """The person a memory is of, in lower case: a `speaker:`/`about:` tag, else the label it starts with."""
    for tag in tags:
        for prefix in TAG_PREFIXES:
            if tag.startswith(prefix) and len(tag) > len(prefix):
                return tag[len(prefix) :].lower()
    colon = content.find(":", 1, 64)  # most memories carry no label: one search instead of a pattern
    label = _LABEL.match(content, 0, colon + 2) if colon > 0 else None
    return label[1].lower() if label else None


def named(query: str, people: Iterable[str]) -> dict[str, str]:
    """The people (lower case, as `person_of` gives them) the query names, each with the query's word for them.
    A word counts as a name only written with a capital, unless the whole query is in lower case ("what will I
    do" never names Will)."""
    anycase = query == query.lower()
    words = [w.removesuffix("'s").removesuffix("\u2019s") for w in _WORD.findall(query)]
    words = [w for w in words if anycase or w[0].isupper()]
    found: dict[str, str] = {}
    for person in sorted(set(people)):
        first = person.split()[0]
        for word in words:
            low = word.lower()
            if low in (first, person) or (len(word) >= 3 and word[0].isupper() and first.startswith(low)):
                found[person] = word
                break
    return found
