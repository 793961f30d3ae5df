"""What kind of value a question asks for, and whether a text holds one.

"How many ...?" is answered by a number, "When was ...?" by a date, "How far ...?" by a measure with its
unit, "Which environment variable ...?" by a name of a form one can recognise. The decline decision
(core.decline) reads whether the best sentences hold a value of the kind asked; the quick answer
(kind_first) prefers a sentence that does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .hits import Hit
from .quick_answer import MIN_QUICK_SCORE, ScoredSentence
from .sentences import belonging_line_end, line_end

# -- what kind of value the question asks for --------------------------------------------------------------
# "How many ...?" is answered by a number and "When was ...?" by a date. Near-topic questions the files
# cannot answer ("Which port ...?", "What is the cover price of ...?") retrieve passages on the right subject
# whose best sentence is close in meaning but holds no value of that kind; an answerable one nearly always
# does (all 36 of the tune split's answerable questions).
# Only a past event's "when" asks for a date, or a release to come: "When does the ferry leave?" is answered
# by a time or a day.
_ASKS_DATE = re.compile(
    r"^\s*when\s+(?:was|were|did)\b|\b(?:what|which|in what|in which)\s+year\b|\bwhat date\b"
    # and a release to come: "When is 3.0 going to be released?", "When will it be out?" ("When is the rent
    # due?" is answered by a day)
    r"|^\s*when\s+(?:is|are|will)\b.*\b(?:released?|published|(?:come|be)\s+out)\b",
    re.IGNORECASE,
)
_FILLER = r"(?:\s+(?!(?:the|a|an|of|to|in|for|on|with|by|do|does|did)\b)[\w.'’-]+){0,3}?"
_WHAT = r"(?:what|which)(?:['’]s)?\b"  # "What's the oldest GCC version ...?" asks as "What is" does
_ASKS_NUMBER = re.compile(
    r"\bhow (?:many|much|large|big)\b|\bhow long ago\b|"  # the other "how ...?" ask for a measure, first
    # "What is the default port ...?", "Which batch size ...?": the measure is what the question is about
    # (the noun phrase it opens with; "What keeps the rate ...?" asks for something else)
    r"^\s*" + _WHAT + r"(?:\s+(?:is|was|are|were|does|did))?(?:\s+the)?" + _FILLER + r"\s+"
    r"(?:port|percentage|rate|size|number|count|amount|age|length|duration|limit|population"
    r"|temperature|weight|height|distance|speed|score|accuracy)s?\b",
    re.IGNORECASE,
)
_ASKS_MONEY = re.compile(
    r"^\s*(?:" + _WHAT + r"|how much\b)(?:\s+(?:is|was|are|were|does|did))?(?:\s+the)?" + _FILLER
    + r"\s+(?:price|cost|fee|salary|wage|income|earning|revenue|rent)s?\b"
    # "How much does the printed manual from Network Theory cost?" ("How much memory does it cost?": a number)
    r"|^\s*how much\s+(?:does|do|did|is|are|was|were|will|would|should|can|could)\b.*"
    r"\b(?:cost|costs|charge|charges|earn|earns|earned|paid|pay|pays)\b",
    re.IGNORECASE,
)
_NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
    " seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand"
    " million billion dozen half twice".split()
)
_MONTHS = frozenset(
    "january february march april may june july august september october november december".split()
)
_CURRENCY = frozenset("dollar dollars usd eur euro euros pound pounds gbp cent cents yen".split())
_YEAR = re.compile(r"^(?:1[0-9]|20)\d\d$")
_TOKEN = re.compile(r"\w+(?:[.,:/-]\w+)*")  # "3.9", "10,000", "2014-02-26" and "l2" whole
# Numbers that only label: "3) Each node ...", "6 Discussion", "5. Network" at the start of a line, and
# a page number alone on its line.
_ENUMERATOR = re.compile(r"(?m)^\s*\(?\d+(?:\.\d+)*[.)]?\s+(?=[A-Z])|^\s*\d+\s*$")
_LABEL = re.compile(r"^\d+(?:\.\d+){2,}$|^\d+(?:-\d+){2,}$|^\d+(?:st|nd|rd|th)$")
KIND_SENTENCES = 2  # the value may be in any of the best sentences
COUNT_SENTENCES = 6  # a count next to what it counts is rarely there by chance: look further


# "Which release ...?", "Under which licence ...?": the question names the type of thing it wants, and some
# types have a recognisable form. (question says -> what a sentence holding the answer shows)
_WHICH = (
    r"^\s*(?:(?:in|at|under|from|with|since)\s+)?" + _WHAT + r"(?:\s+(?:is|was|are|were))?(?:\s+the)?"
    + _FILLER + r"\s+"
)
_TYPED = {
    "version": (
        re.compile(_WHICH + r"(?:release|version)s?\b(?!\s+control)", re.IGNORECASE),
        re.compile(r"(?<![\w/])v?\d+\.\d+(?:\.\d+)*\b"),
    ),
    "licence": (
        re.compile(_WHICH + r"licen[cs]es?\b", re.IGNORECASE),
        re.compile(r"\b(?:MIT|BSD|L?GPL|Apache|Creative Commons|CC[- ]BY|public domain|MPL|ISC)\b", re.I),
    ),
    "venue": (
        re.compile(_WHICH + r"(?:conference|venue|journal|workshop|symposium)s?\b", re.IGNORECASE),
        re.compile(r"\b(?:conference|proceedings|symposium|workshop|journal|USENIX|ACM|IEEE)\b", re.I),
    ),
    "variable": (
        re.compile(_WHICH + r"(?:environment\s+)?variables?\b", re.IGNORECASE),
        re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b|\b[A-Z]{3,}\b"),
    ),
    "percentage": (
        re.compile(r"\bin percent\b|\bwhat percent(?:age)?\b|\bhow many percent\b", re.IGNORECASE),
        re.compile(r"\d\s?%|\d\s+percent\b", re.IGNORECASE),
    ),
}


# "What is the default chunk size ...?": a sentence that gives a default says so ("(Default 100)", "by
# default", "defaults to"), whatever the value looks like.
_ASKS_DEFAULT = re.compile(r"\bdefault\b", re.IGNORECASE)
_SAYS_DEFAULT = re.compile(r"\bdefault(?:s|ed)?\b", re.IGNORECASE)


# "How old ...?", "How long ...?", "How far ...?" ask for a measure: a number with its unit ("twenty-one
# years", "0.48 seconds", "512GB", "about a mile"), or a default said bare ("The timeout defaults to 30.");
# another number in a sentence on the subject ("bash-1.14", "retries=1", "Table 3", a year) is not one. "How
# big/large ...?" stays a number question: "18 datasets", "135 million parameters" measure by counting.
_ASKS_MEASURE = re.compile(
    r"\bhow (?:old|long|far|often|fast|slow|tall|high|heavy|wide|deep)\b(?!\s+ago\b)", re.IGNORECASE
)
_UNITS = frozenset(
    # time
    "ns µs ms sec secs second seconds minute minutes min mins hour hours hr hrs day days week weeks"
    " fortnight fortnights month months year years yr yrs decade decades century centuries"
    # data and text
    " bit bits byte bytes kb mb gb tb kib mib gib tib kilobyte kilobytes megabyte megabytes gigabyte"
    " gigabytes terabyte terabytes word words token tokens character characters char chars letter letters"
    " lines page pages column columns row rows entries elements items slots records digits paragraphs"
    # length, weight, money, rate
    " mm cm km metre metres meter meters kilometre kilometres kilometer kilometers inch inches foot feet"
    " yard yards mile miles gram grams kg mg kilogram kilograms lb lbs pound pounds ounce ounces oz ton"
    " tons tonne tonnes stone percent % times fps hz khz mhz ghz mph rpm"
    " dollar dollars usd eur euro euros gbp cent cents yen shilling shillings guinea guineas".split()
)
_ATTACHED_UNITS = _UNITS | {"s", "h", "m", "b", "k", "g", "x"}  # "30s", "5h", "400M": joined to the number
_UNIT_AFTER = 2  # "8.8 hours", "thirty thousand pounds": the unit within two words of the number
_ATTACHED_UNIT = re.compile(r"^\d[\d.,]*([a-zµ%]+)$")  # "512GB", "100ms", "30%"
_FREQUENCY = re.compile(
    r"\b(?:once|twice|hourly|daily|nightly|weekly|monthly|yearly|annually)\b|\bevery\s+(?:\w+\s+)?"
    r"(?:second|minute|hour|day|night|week|fortnight|month|year|morning|evening|time)s?\b",
    re.IGNORECASE,
)
_AGE = frozenset({"aged", "age"})
_OF_AGE = frozenset("girl boy man woman child lad lass youth person age".split())  # "a girl of seventeen"


# An age is also said bare: "She was twenty-one.", "He is 40." (not "was one of the few", "is 3.5")
_NUMBER_WORD = "(?:" + "|".join(sorted(_NUMBER_WORDS)) + ")"
_NUMBER = rf"(?:\d{{1,3}}(?![\d.,]\d)|{_NUMBER_WORD}(?:[- ]{_NUMBER_WORD})?)"
_BARE_AGE = re.compile(
    r"\b(?:is|was|were|are|turned|turns|be|been)\s+(?:nearly\s+|almost\s+|about\s+|just\s+|over\s+)?"
    + _NUMBER
    + r"(?=\s*(?:[.,;:!?)\u201d\"](?!\d)|$|and\b|but\b|when\b))",
    re.IGNORECASE,
)


def _measure_words(text: str) -> list[str]:
    """Lower-cased words, "twenty-one" and "30-day" in two, "512GB" and "3.5" whole."""
    return [w for w in (w.strip(".,:").lower() for w in re.split(r"[^\w.,:%µ]+|_", text)) if w]


def holds_measure(text: str, question: str) -> bool:
    """Whether `text` holds a number with a unit (or one unit: "a mile") that the question does not, or a
    default; for "how old", an age said without one."""
    often = re.search(r"\bhow often\b", question, re.IGNORECASE)
    if _ONE_UNIT.search(text) or (often and _FREQUENCY.search(text)):
        return True
    old = bool(re.search(r"\bhow old\b", question, re.IGNORECASE))
    if old and _BARE_AGE.search(text):
        return True
    asked = set(_measure_words(question))
    words = _measure_words(text)
    default = bool(_SAYS_DEFAULT.search(text))
    for i, w in enumerate(words):
        if not _is_amount(w, asked) or _YEAR.match(w):
            continue
        attached = _ATTACHED_UNIT.match(w)
        if default or (attached and attached.group(1) in _ATTACHED_UNITS):
            return True
        if any(u in _UNITS for u in words[i + 1 : i + 1 + _UNIT_AFTER] if not _is_amount(u, asked)):
            return True
        before = words[max(i - 2, 0) : i]
        if before[-1:] and (before[-1] in _AGE or (old and before[0] in _OF_AGE and before[-1] == "of")):
            return True
    return False


# "With the -jp profiler, how do I see how much time each line takes?" asks for a way (an option), and "Why
# does it take 30 seconds?" for a reason: a question whose asking clause (the last before the "?") opens by
# asking how to do something, or why, asks for no value, whatever its other clauses name ("Since I don't
# know how to set it, what is the default port?" asks for a number).
_FIRST_ASKING = re.compile(r"\b(?:what|which|who|whom|whose|when|where|why|how)\b", re.IGNORECASE)
_WAY = re.compile(r"(?:how\s+(?:do|does|did|can|could|should|would|will|to)|why)\b", re.IGNORECASE)


def _asks_way(question: str) -> bool:
    asking = question.split("?", 1)[0]
    for text in (re.split(r"[,;]", asking)[-1], asking):  # the asking clause, else the whole question
        first = _FIRST_ASKING.search(text)
        if first is not None:
            return bool(_WAY.match(text, first.start()))
    return False


def asked_kind(question: str) -> str | None:
    """"date", "money", "measure", "number", a named type of `_TYPED` ("version", "licence", ...), "default",
    or None when the question asks for no particular kind of value."""
    if _asks_way(question):
        return None
    for kind, (asks, _) in _TYPED.items():
        if asks.search(question):
            return kind
    if _ASKS_DATE.search(question):
        return "date"
    if _ASKS_MONEY.search(question):
        return "money"
    if _ASKS_MEASURE.search(question):
        return "measure"
    if _ASKS_NUMBER.search(question):
        return "number"
    if _ASKS_DEFAULT.search(question):
        return "default"
    return None


# "How many layers does ...?" is answered by a count of layers: the words between "how many" and the verb
# name what is counted, and a count stands next to one of them ("24 layers", "layers: 24", "max_layers=24").
_COUNTED = re.compile(
    r"\bhow many\s+(?:(?:different\s+)?(?:kinds?|types?|sorts?)\s+of\s+)?"  # "kinds of hooks" counts hooks
    r"((?:(?!(?:does|do|did|is|are|was|were|can|could|will|would|has|have|had|may|might|should"
    r"|must|of|in|per|for|on|at|to|by|with|the|a|an)\b)[\w'-]+\s*){1,3})",
    re.IGNORECASE,
)
COUNT_REACH = 8  # words between a count and what it counts


def counted_words(question: str) -> set[str]:
    """Stems of the words naming what a "how many ...?" question counts (empty for other questions)."""
    m = _COUNTED.search(question)
    return {_stem(w) for w in re.split(r"[\W_]+", m.group(1).lower()) if len(w) > 2} if m else set()


def _stem(word: str) -> str:
    """Plural to singular, enough to match "copies" with "copy" and "boxes" with "box"."""
    if len(word) <= 4 or not word.endswith("s") or word.endswith("ss"):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    return word[:-1]


def holds_kind(kind: str, text: str, question: str) -> bool:
    """Whether `text` holds a value of `kind` that the question itself does not."""
    text = _ENUMERATOR.sub("", text)
    asked = {t.lower() for t in _TOKEN.findall(question)}
    counted = counted_words(question) if kind == "number" else set()
    if counted:
        words = [w.strip(".,:") for w in re.split(r"[^\w.,:/-]+|_", text)]
        words = [w for w in words if w]
        near = {i for i, w in enumerate(words) if _stem(w.lower()) in counted}
        # "Exercise 4.3", "Table 2": a capitalised noun followed by a number names one, it does not count them
        labels = {i + 1 for i in near if words[i][0].isupper()}
        return any(
            _is_amount(w.lower(), asked) and i not in labels and any(abs(i - j) <= COUNT_REACH for j in near)
            for i, w in enumerate(words)
        )
    if kind == "default":
        return bool(_SAYS_DEFAULT.search(text))
    if kind == "measure":
        return holds_measure(text, question)
    if kind in _TYPED:
        asked_values = set(_TYPED[kind][1].findall(question))
        return any(v not in asked_values for v in _TYPED[kind][1].findall(text))
    new = [t for t in (t.lower() for t in _TOKEN.findall(text)) if t not in asked]
    if kind == "date":
        return any(_YEAR.match(part) or part in _MONTHS for t in new for part in re.split(r"[.,:/-]", t))
    if kind == "money":
        return bool(re.search(r"[$€£¥]\s?\d", text)) or any(t in _CURRENCY for t in new)
    # A count stands alone or leads ("32GB", "400M"); "l2" or "HTTP/2" name things, and a version
    # ("2.2.20"), an ISBN ("0-9541617-7-7") or an ordinal ("2nd") is a label, not an amount.
    return any(_is_amount(t, asked) for t in new) or bool(_ONE_UNIT.search(text))


# "How far ...?" - "about a mile"; "How long ...?" - "an hour": one unit is an amount without a number.
_ONE_UNIT = re.compile(
    r"\b(?:a|an|half an?)\s+(?:mile|kilomet(?:re|er)|metre|meter|foot|yard|inch|hour|minute|day|week"
    r"|fortnight|month|year|decade|century|dozen|hundred|thousand|million|billion|kilo(?:gram)?|pound|ton"
    r"|tonne|litre|liter|gallon|(?:kilo|mega|giga|tera)?byte)\b",
    re.IGNORECASE,
)


def _is_amount(token: str, asked: set[str]) -> bool:
    if not token or token in asked:
        return False
    return (token[0].isdigit() and not _LABEL.match(token)) or token in _NUMBER_WORDS


def sentence_window(text: str, start: int, end: int) -> str:
    """The sentence at [start, end) of `text` and the rest of its line, with the next line when that belongs
    to it (sentences.belonging_line_end)."""
    return text[start : belonging_line_end(text, start, end) or line_end(text, end)]


# A section can be named by the variable or the version its sentences point at ("## `SSL_CERT_FILE`", "Changes
# in bash-5.1"): its code names and dotted or underscored words count for those kinds. A count, a date or a
# measure in a section name ("Chapter 3", "Python 3 tutorial") is not the value asked for, nor is an acronym
# ("FAQ") a variable.
_SECTION_KINDS = frozenset({"variable", "version"})
_SECTION_NAME = re.compile(r"`[^`\n]+`|\b\w*[_.]\w+\b")
_SECTION_NUMBER = re.compile(r"^\s*\d+(?:\.\d+)*[.)]?\s+")  # "3.1 `httpx.Client`": no version 3.1


def kind_window(hit: Hit, s: ScoredSentence, kind: str) -> str:
    """Where to look for a value of `kind`: the sentence's window, under the names its section gives for the
    kinds a section can name (the sentence "If this environment variable is set ..." only points at it)."""
    window = sentence_window(hit.text, s.span.start, s.span.end)
    if kind not in _SECTION_KINDS:
        return window
    names = _SECTION_NAME.findall(_SECTION_NUMBER.sub("", hit.heading.rpartition(" > ")[2]))
    return f"[{' '.join(names)}] {window}" if names else window  # bracketed: no enumerator to drop


# -- the quick answer prefers a value of the kind asked ------------------------------------------------------
# "How far from Highbury does Mr. Knightley live?": two sentences score alike, and the one that says "about a
# mile" answers. Among the best few, one holding the asked kind of value gets a bonus. On the QA set (quick
# row), a bonus of 0.1 / 0.15 / 0.2 / 0.3 within the best 8 stated 0 / 0 / 1 / 1 more facts on tune (of 34)
# and 1 / 3 / 3 / 3 more on the held-out splits (of 149), none fewer. The decline reads the plain ranking.
KIND_BONUS = 0.2
KIND_DEPTH = 8


def kind_first(
    ranked: Sequence[ScoredSentence], hits: Sequence[Hit], question: str, min_score: float = MIN_QUICK_SCORE
) -> list[ScoredSentence]:
    """`ranked` with its best KIND_DEPTH sentences reordered, a sentence holding the kind of value the
    question asks for (asked_kind) scoring KIND_BONUS more if it could be a quick answer on its own (scores
    `min_score`); unchanged when no kind is asked."""
    kind = asked_kind(question)
    if kind is None:
        return list(ranked)

    def bonus(s: ScoredSentence) -> float:
        if not 0 < s.n <= len(hits) or s.score < min_score:
            return s.score
        holds = holds_kind(kind, kind_window(hits[s.n - 1], s, kind), question)
        return s.score + (KIND_BONUS if holds else 0.0)

    head = sorted(ranked[:KIND_DEPTH], key=bonus, reverse=True)  # stable: ties keep their order
    return head + list(ranked[KIND_DEPTH:])
