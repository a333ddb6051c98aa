"""Hand-written cues of one sentence, the inputs of the learner (`memorable`) beside the embedder's features.

Each cue is a number in about [0, 1] answering one question a person would ask of a line: is the speaker its
subject, does it tell of a past or planned event, is it a reaction to the other person, a request to the agent, a
hypothetical, a quote, small talk, a question, an exclamation about anything but the speaker? Pure functions, no
I/O.
"""

from __future__ import annotations

import re

_SPLIT = re.compile(r"(?<=[.!?])\s+|\s+[-\u2013\u2014]\s+")
_FIRST_SUBJECT = re.compile(r"\b(i|i'm|i've|i'd|i'll|im|ive|we|we're|we've|we'd|we'll)\b")
_FIRST_OBJECT = re.compile(r"\b(my|our|mine|ours|me|us|myself)\b")
_STARTS_FIRST = re.compile(
    r"^(?:(?:yeah|yes|yep|oh|haha|ha|well|so|and|but|actually|also|plus|btw|honestly)[,!]?\s+)*"
    r"(i|my|we|our|i'm|i've|me and|just|gonna|been|started|got)\b"
)
_YOU = re.compile(r"\b(you|your|you're|you've|yours|yourself|u|ya)\b")
_TIME = re.compile(
    r"\b(yesterday|last (?:week|month|year|night|weekend|summer|winter|spring|fall|time|friday|saturday|sunday)|"
    r"ago|recently|lately|next (?:week|month|year|weekend|summer)|this (?:week|month|year|weekend|summer|fall)|"
    r"tomorrow|since|when i was|growing up|as a kid|every (?:day|week|morning|night|sunday|saturday)|"
    r"used to|these days|now|always|someday|one day|(?:in|since|back in) (?:19|20)\d\d|the other day|"
    r"over the (?:weekend|summer|holidays)|this (?:morning|afternoon|evening)|tonight|earlier today|"
    r"last (?:monday|tuesday|wednesday|thursday)|(?:on|this|next) (?:monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday)|for (?:a few|several|many|two|three|four|five|\d+) (?:days|weeks|months|years))\b"
)
_EVENT = re.compile(
    r"\b(i|we|i've|we've|i just|we just|just|finally|i finally|i recently|i also|i even)\s+(\w+ed|went|got|had|made|"
    r"took|saw|found|met|bought|began|started|became|gave|ran|won|lost|left|came|wrote|read|built|did|tried|joined|"
    r"moved|finished|visited|adopted|painted|signed|sold|grew|taught|drew|sang|flew|swam|threw|been)\b"
)
_DROPPED = re.compile(
    r"^(?:(?:yeah|yes|yep|oh|haha|ha|well|so|and|but|actually|also|plus|btw|honestly|thanks|wow)[,!]?\s+)*"
    r"(?:just |finally |recently |also )?(went|got|took|had|made|finished|started|joined|visited|bought|tried|"
    r"spent|signed up|picked up|ran|met|found|saw|did|been|came back|got back)\b"
)
"""A casual report with the subject dropped: "Just got back from Crete", "Went hiking with my dad"."""
_PLAN = re.compile(
    r"\b(i'm|i am|we're|we are|i'll|we'll|gonna|going to|planning|plan to|hoping to|want to|'d love to|"
    r"would love to|'d like to|thinking about|about to)\b"
)
_HAVE = re.compile(
    r"\b(i|we) (have|own|live|work|study|teach|play|speak|drive|volunteer|coach|collect|keep|"
    r"love|enjoy|hate|prefer|like|miss)\b|\bi'm (a|an|the|from|allergic|married|single|learning|"
    r"studying|training|writing|working|into)\b"
)
_REACT = re.compile(
    r"^(wow|aw+|oh|omg|congrats|congratulations|that's|that is|thats|that was|that must|that sounds|sounds|what a|"
    r"so cool|awesome|amazing|great|nice|cool|lovely|glad|yay|sorry|good luck|keep|your|you|bummer|whoa|"
    r"how (?:cool|nice|sweet|awesome|lovely)|such a)\b"
)
_ABOUT_YOU = re.compile(
    r"\bi(?:'m| am) (?:so |really |very |super )?(?:glad|happy|proud|sorry|excited|thrilled|stoked|impressed) "
    r"(?:for|of|to hear|that you|you)\b|\bi (?:love|like|admire|appreciate|adore) (?:that|this|it|how|your|you|"
    r"the idea)\b|\bi (?:can't wait|hope|bet|agree|understand|totally get|feel you|see what|know what you|"
    r"remember you|wish you)\b"
)
_OPINION = re.compile(
    r"^(?:(?:yeah|yes|oh|and|but|so|honestly|totally|well)[,!]?\s+)*(?:i (?:think|feel like|believe|guess|reckon|"
    r"find it|agree|totally agree)|i'm (?:so |really |very )?(?:grateful|thankful|lucky|blessed)|"
    r"it's (?:so |really |such )|it is (?:so |really )|there's (?:something|nothing)|"
    r"(?:life|art|music|nature|family|friendship|love|kindness) (?:is|can be|has))\b"
)
"""A view or a feeling rather than news: "I think it's so important to...", "I'm so grateful for..." (a value of the
speaker's or a passing remark: the fit weighs it)."""
_REQUEST = re.compile(
    r"^(please|let's|lets|can you|could you|would you|will you|go ahead|make|write|split|add|remove|fix|show|"
    r"tell me|give me|explain|help me|try|check|run|use|rename|translate|remind me|draft|summari[sz]e|delete|"
    r"undo|ignore|scratch that|never mind|nevermind|stop|don't|do not)\b|\b(i want you|i need you|i'd like you|"
    r"can you|could you|would you mind)\b"
)
_HYPOTHETICAL = re.compile(
    r"^(if|imagine|suppose|what if|let's say|in theory)\b|\b(would|could|might|should|if i "
    r"were|if i had)\b"
)
_QUOTE = re.compile(r"\b(said|says|told me|tells me|asked me|according to|as they say|used to say)\b|[\"\u201c]")
_SMALL = re.compile(
    r"^(hi|hey|hello|bye|goodbye|see you|see ya|talk soon|take care|catch you|catch ya|night|"
    r"morning|yo|thanks|thank you|ok|okay|sure|yeah|yep|me too|same|haha|lol)\b"
)
_CORRECTION = re.compile(r"^(no,|no no|nope|wait|oops|sorry,|that's wrong|that's not|i meant|not what)")
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
"""A year is a time, not a figure: left out of the number cue."""
_NAME = re.compile(r"(?<=\s)[A-Z][a-z]+")
_NOT_NAMES = frozenset({"I", "I'm", "I've", "I'll", "I'd"})

CUE_NAMES: tuple[str, ...] = (
    "first-person subject",
    "first-person object",
    "starts with the speaker",
    "you density",
    "time words",
    "past event",
    "plan",
    "has/is/does",
    "reaction opener",
    "about the other person",
    "opinion",
    "request",
    "hypothetical",
    "quote",
    "small talk",
    "correction",
    "question",
    "exclaimed reaction",
    "length",
    "number",
    "names",
)


def plain(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'").strip()


def sentences(text: str) -> list[str]:
    """The sentences of a message (a line with no stop is one sentence)."""
    found = [s.strip() for s in _SPLIT.split(plain(text)) if s.strip(" .!?")]
    return found or [plain(text)]


def cues(sentence: str) -> list[float]:
    """The cues of one sentence, in the order of CUE_NAMES."""
    text = plain(sentence)
    low = text.lower()
    words = low.split()
    n = max(1, len(words))
    flags = [
        _FIRST_SUBJECT.search(low),
        _FIRST_OBJECT.search(low),
        _STARTS_FIRST.search(low),
    ]
    more = [
        _TIME.search(low),
        _EVENT.search(low) or _DROPPED.search(low),
        _PLAN.search(low),
        _HAVE.search(low),
        _REACT.search(low),
        _ABOUT_YOU.search(low),
        _OPINION.search(low),
        _REQUEST.search(low),
        _HYPOTHETICAL.search(low),
        _QUOTE.search(text.lower()),
        _SMALL.search(low) and n <= 6,
        _CORRECTION.search(low),
        text.endswith("?"),
        text.endswith("!") and not _FIRST_SUBJECT.search(low) and not _FIRST_OBJECT.search(low),
    ]
    names = sum(1 for w in _NAME.findall(text) if w not in _NOT_NAMES)
    return [
        *(1.0 if f else 0.0 for f in flags),
        min(1.0, 5.0 * len(_YOU.findall(low)) / n),
        *(1.0 if f else 0.0 for f in more),
        min(n, 30) / 10.0,
        1.0 if any(c.isdigit() for c in _YEAR.sub("", low)) else 0.0,
        min(names, 3) / 3.0,
    ]
