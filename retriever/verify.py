"""The verifier: does a passage say what a sentence claims, not only talk about the same topic?

No entailment model ships on the registries this project installs from, so a claim is aligned
with the documents' sentences by rules, each a way a sentence built from a passage's own words can
still say something the passage does not:

- the embedder finds the sentences closest to the claim; each is read with its neighbours (a
  window), and one window must hold the whole claim: two passages' facts joined into one claim
  pass only where one window says both;
- every fact the claim states (number, identifier, option, name) must stand in that window;
- most of its content words must too (a crude stem of each; alternatives a paraphrase uses are
  not guessed);
- its polarity must be the aligned sentence's ("can" against "cannot", "is" against "is never");
- no word of it may stand where the aligned sentence has the word's opposite (read/write,
  enable/disable, before/after, server/client ...).

A claim is *supported* when some window passes every rule; *contradicted* when the closest window
is on its topic (similarity at least `TOPIC`) but the polarity, an opposite word or a number turns
it around; otherwise *not found*.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

import numpy as np
import numpy.typing as npt

SUPPORTED, CONTRADICTED, NOT_FOUND = "supported", "contradicted", "not found"
TOPIC = 0.45  # a window this close to the claim (cosine) is on its topic
COVERAGE = 0.7  # share of the claim's content words its window must hold
WINDOWS = 4  # closest sentences tried, each with its neighbours
FOREIGN_ALLOWED_FROM = 6  # a claim of this many content words may hold one word the passages use elsewhere

# Words that deny what follows them ("None" is Python's value, not a denial; a word ending in "n't" also
# denies).
_NEGATORS = frozenset(["not", "no", "never", "cannot", "cant", "dont", "doesnt", "isnt", "wont", "without"])
OVERLAP = 0.3  # share of a claim's content words a window sentence holds to count as one it stands on
NEGATION_SCOPE = 2  # content words after a negator that it denies (up to punctuation or a conjunction)
_SCOPE_ENDS = frozenset("because but and or while which that so if when where since whereas".split())  # noqa: SIM905
# The pairs that name what a question asks to do (or where): a question that reads is not answered by a
# sentence that writes. Word pairs such as first/last, row/column or use/ignore describe rather than ask,
# and a question's "first line ... column names" is well answered by a sentence on rows.
ACTIONS = frozenset(
    [
        "read/write",
        "reads/writes",
        "reading/writing",
        "input/output",
        "import/export",
        "load/save",
        "enable/disable",
        "add/remove",
        "insert/delete",
        "server/client",
        "install/uninstall",
        "encode/decode",
        "send/receive",
        "show/hide",
        "include/exclude",
    ]
)
# Each pair: a word and its opposite, as a reader would call one the other's swap (compared as stems):
# the actions above and the pairs that describe.
OPPOSITES: tuple[tuple[str, str], ...] = tuple(
    tuple(pair.split("/"))  # type: ignore[misc]
    for pair in [
        *sorted(ACTIONS),
        "before/after",
        "true/false",
        "increase/decrease",
        "minimum/maximum",
        "min/max",
        "first/last",
        "open/close",
        "start/stop",
        "upper/lower",
        "left/right",
        "above/below",
        "more/less",
        "larger/smaller",
        "large/small",
        "faster/slower",
        "always/never",
        "allow/forbid",
        "row/column",
        "rows/columns",
        "ascending/descending",
        "begin/end",
        "local/global",
        "public/private",
        "optional/required",
        "inside/outside",
        "positive/negative",
        "lowest/highest",
        "ignore/use",
        "accept/reject",
        "comma/semicolon",
        "single/double",
        "mutable/immutable",
        "sync/async",
    ]
)
_OPPOSITE: dict[str, set[str]] = {}
# Words that carry no claim of their own: the grammar of a sentence and the words an answer wraps a
# passage's statement in ("You can use ...", "The manual says ...").
_LIGHT = frozenset(
    """
    a an the and or but if then so as at by for from in into of on onto to with within without via
    is are was were be been being am do does did done doing has have had having can could may might
    must shall should will would it its this that these those there here which who whom whose what
    when where why how you your yours we our us they them their he she his her i me my
    also just only very such some any each every all both either neither one ones other another
    than too again further more most much many same own use used uses using usual usually
    say says said tell tells told call called calls note manual document documents passage passages
    example instance way ways thing things make makes made let lets see seen e g ie eg etc
    """.split()  # noqa: SIM905
)
# An identifier ("write.csv2", "x$y", "pkg::f") is one word: its "write" is no verb of the sentence.
_WORD = re.compile(r"[A-Za-z_]\w*(?:(?:\.|\$|::)\w+)+|[A-Za-z][A-Za-z']*|\d+(?:\.\d+)?")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z']*|\d+(?:\.\d+)?|[.,;:!?()]")


def stem(word: str) -> str:
    """A crude stem, enough to match 'reads', 'reading' and 'read', or 'files' and 'file'."""
    w = word.lower().strip("'")
    for suffix in ("ations", "ation", "ings", "ing", "edly", "ies", "ied", "ed", "es", "s", "ly", "e"):
        if len(w) - len(suffix) >= 3 and w.endswith(suffix):
            w = w[: -len(suffix)]
            if suffix in ("ies", "ied"):
                w += "i"
            break
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiou":
        w = w[:-1]  # "writt(en)", "stopp(ed)"
    return w


_ACTION_OPPOSITE: dict[str, set[str]] = {}
for _a, _b in OPPOSITES:
    for table in (_OPPOSITE, _ACTION_OPPOSITE) if f"{_a}/{_b}" in ACTIONS else (_OPPOSITE,):
        table.setdefault(stem(_a), set()).add(stem(_b))
        table.setdefault(stem(_b), set()).add(stem(_a))


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def content_stems(text: str) -> list[str]:
    """The stems of the words that carry the claim, in order, once each."""
    return list(dict.fromkeys(stem(w) for w in words(text) if w not in _LIGHT and not _is_negator(w) and len(w) > 1))


def _is_negator(word: str) -> bool:
    w = word.lower().replace("'", "")
    return w in _NEGATORS or (w.endswith("nt") and word.lower().endswith("n't"))


def negations(text: str) -> int:
    """How many negators ("not", "never", "can't" ...) the text holds."""
    return sum(_is_negator(t) for t in _TOKEN.findall(text.replace("\u2019", "'")))


def denied(text: str) -> set[str]:
    """Stems a negator denies: the content words in the few words after "not", "never", "can't" ...,
    up to the next punctuation ("no-op" is a word, not a denial)."""
    text = re.sub(r"\bno-(?=\w)", "no", text.replace("\u2019", "'"))
    out: set[str] = set()
    scope = 0
    for tok in _TOKEN.findall(text):
        if not tok[0].isalnum() or tok.lower() in _SCOPE_ENDS:
            scope = 0
        elif _is_negator(tok):
            scope = NEGATION_SCOPE
        elif scope and tok.lower() not in _LIGHT:
            scope -= 1
            out.add(stem(tok))
    return out


def _stems(text: str) -> set[str]:
    return {stem(w) for w in words(text)}


def _with_parts(text: str) -> set[str]:
    """Its stems and those of its identifiers' parts: "write.csv2" says write too."""
    out = _stems(text)
    for w in words(text):
        if not w.isalpha():
            out.update(stem(p) for p in re.split(r"[^a-z]+", w) if len(p) > 2)
    return out


def asked_opposites(asked: str) -> dict[str, set[str]]:
    """The question's actions (`ACTIONS`), each with the opposites the question does not say."""
    q = _stems(asked)
    found = {w: _ACTION_OPPOSITE.get(w, set()) - q for w in q}
    return {w: o for w, o in found.items() if o}


def opposed(asked: dict[str, set[str]], sentence: str) -> bool:
    """Does `sentence` speak of the opposite of what the question names (`asked_opposites`: the
    question reads, the sentence writes; "write.csv2" counts as writing) without naming what it asks?"""
    s = _with_parts(sentence)
    return any(w not in s and not o.isdisjoint(s) for w, o in asked.items())


_DOUBLE_NEGATION = re.compile(r"\b(?:not|never|no)\s+(?:not|never)\b", re.I)


def _swapped_in_place(claim: str, aligned: str) -> tuple[str, str] | None:
    """A word of an opposite pair said once more than the documents' sentence says it, where that
    sentence says its opposite once more than the claim: "the last subscript moving fastest and the
    last slowest" against "the first ... fastest and the last slowest" (each word is in both, so only
    their counts tell)."""
    said = Counter(stem(w) for w in words(claim))
    source = Counter(stem(w) for w in words(aligned))
    for w, n in said.items():
        if n > source[w]:
            for o in _OPPOSITE.get(w, ()):
                if source[o] > said[o]:
                    return w, o
    return None


NEAR_COPY = 0.75  # share of a claim's words copied, in order, from one sentence: the claim is that sentence
_SAYS_MUCH = frozenset("same other more most only all every both".split())  # light, yet a change of them matters  # noqa: SIM905


def _carries(word: str) -> bool:
    return word not in _LIGHT or word in _SAYS_MUCH


def _changed_word(claim: str, aligned: str, window_stems: set[str]) -> tuple[str, str] | None:
    """A claim copied from the documents' sentence with a word changed ("the same value" where the
    sentence says "a different value", "length" where it says "on.exit"): (the claim's word, the
    sentence's), when the claim's word is one the window (for a name: the sentence) never says and
    either word is a name or a word of quantity."""
    said, source = words(claim), words(aligned)
    if len(said) < 4 or not source:
        return None
    source_stems = {stem(w) for w in source}
    matcher = SequenceMatcher(None, said, source, autojunk=False)
    copied = sum(block.size for block in matcher.get_matching_blocks())
    if copied < NEAR_COPY * len(said):
        return None
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op != "replace" or a2 - a1 > 2 or b2 - b1 > 2:
            continue
        # a name must stand in the sentence itself (its neighbours name other things); a word, in the window
        new = [
            w
            for w in said[a1:a2]
            if _carries(w) and not _is_negator(w) and stem(w) not in (window_stems if w.isalpha() else source_stems)
        ]
        old = [w for w in source[b1:b2] if _carries(w)]
        # a name, option or identifier put in another's place, or a quantity word changed ("same" for
        # "different", "all" for "some"); a plain word for another may be a fair synonym ("offers" for
        # "provides") and is left to the other checks
        if new and old and any(not w.isalpha() or w in _SAYS_MUCH for w in (*new, *old)):
            return new[0], old[0]
    return None


@dataclass(frozen=True)
class Alignment:
    """The outcome of reading one claim against one window of the documents."""

    label: str  # supported | contradicted | not found
    reason: str = ""


def align(
    claim: str, window: Sequence[str], missing_facts: Sequence[str] = (), elsewhere: Collection[str] = ()
) -> Alignment:
    """Read `claim` against `window` (document sentences: one with its neighbours); `missing_facts`:
    the claim's facts the window lacks; `elsewhere`: stems the other passages use (a claim word
    found there and not here is a fact of another passage)."""
    claim_stems = _stems(claim)
    wanted = content_stems(claim)
    read = [(s, words(s)) for s in window]
    stems = [{stem(w) for w in ws} for _, ws in read]
    window_stems = set().union(*stems)
    # the sentence that holds most of the claim's facts (then most of its words) is the one whose
    # polarity and words it must keep
    facts = [w for w in words(claim) if not w.isalpha()]
    best = max(
        range(len(read)), key=lambda k: (sum(f in read[k][1] for f in facts), len(stems[k] & set(wanted))), default=None
    )
    aligned, aligned_stems = (read[best][0], stems[best]) if best is not None else ("", set())
    aligned_parts = _with_parts(aligned)
    for w in sorted(claim_stems - aligned_parts):
        for o in _OPPOSITE.get(w, ()):
            if o in aligned_parts and o not in claim_stems:
                return Alignment(CONTRADICTED, f"the documents say {o!r} where it says {w!r}")
    swapped = _swapped_in_place(claim, aligned)
    if swapped:
        return Alignment(CONTRADICTED, f"the documents say {swapped[1]!r} where it says {swapped[0]!r}")
    if _DOUBLE_NEGATION.search(claim) and not _DOUBLE_NEGATION.search(aligned):
        return Alignment(CONTRADICTED, "it denies what the documents state (a negation doubled)")
    claim_denies, aligned_denies = denied(claim), denied(aligned)
    if claim_denies and not aligned_denies:
        return Alignment(CONTRADICTED, "it denies what the documents state")
    # more negations than the sentences it stands on: a "not" put in where the documents have another
    # one elsewhere ("partial matching is not used ... if x does not contain"), or "does not not"
    overlapping = [s for (s, _), st in zip(read, stems, strict=True) if len(st & set(wanted)) >= OVERLAP * len(wanted)]
    if negations(claim) > sum(negations(s) for s in overlapping or [aligned]):
        return Alignment(CONTRADICTED, "it denies what the documents state (one negation more)")
    if (claim_denies & aligned_stems) - aligned_denies:
        return Alignment(CONTRADICTED, f"it denies what the documents state: {', '.join(sorted(claim_denies)[:4])}")
    if (aligned_denies & claim_stems) - claim_denies:
        return Alignment(CONTRADICTED, f"the documents deny it: not {', '.join(sorted(aligned_denies)[:4])}")
    numbers = [f for f in missing_facts if re.fullmatch(r"[-+]?\d[\d,.]*%?", f)]
    if numbers and re.search(r"\d", aligned):
        return Alignment(CONTRADICTED, f"the documents give another number than {', '.join(numbers)}")
    changed = _changed_word(claim, aligned, window_stems)
    if changed:
        return Alignment(NOT_FOUND, f"the documents' sentence says {changed[1]!r} where it says {changed[0]!r}")
    if missing_facts:
        return Alignment(NOT_FOUND, f"not in the documents here: {', '.join(missing_facts)}")
    lacking = [w for w in wanted if w not in window_stems]
    foreign = [w for w in lacking if w in elsewhere]
    if len(foreign) > (1 if len(wanted) >= FOREIGN_ALLOWED_FROM else 0):
        return Alignment(NOT_FOUND, f"the documents say {', '.join(foreign[:4])} elsewhere, not here")
    if wanted and len(lacking) > (1 - COVERAGE) * len(wanted):
        return Alignment(NOT_FOUND, f"the documents' sentence does not say: {', '.join(lacking[:6])}")
    return Alignment(SUPPORTED)


@dataclass(frozen=True)
class Verdict:
    """A claim checked against the documents: the label, the sentence it was read against, why."""

    claim: str
    label: str
    sentence: int | None  # index into the passages' sentences of the aligned one
    similarity: float
    reason: str = ""
    missing: tuple[str, ...] = ()  # the claim's facts the closest window lacks

    @property
    def supported(self) -> bool:
        return self.label == SUPPORTED


def windows(
    vector: npt.NDArray[np.float32],
    sentence_vectors: npt.NDArray[np.float32],
    previous: Sequence[int | None],
    following: dict[int, int],
    k: int = WINDOWS,
) -> list[tuple[int, float, list[int]]]:
    """The `k` sentences closest to `vector`, best first: (index, cosine, the window's sentence
    indexes: the one before, itself, the one after)."""
    if not len(sentence_vectors):
        return []
    sims = sentence_vectors @ vector
    out = []
    for j in np.argsort(-sims)[:k]:
        j = int(j)
        around = [x for x in (previous[j], j, following.get(j)) if x is not None]
        out.append((j, float(sims[j]), around))
    return out


def decide(
    claim: str,
    tried: Sequence[tuple[int, float, Sequence[str], tuple[str, ...]]],
    topic: float = TOPIC,
    elsewhere: Collection[str] = (),
) -> Verdict:
    """The verdict over the windows tried, closest first: (sentence index, cosine, the window's
    sentences, the claim's facts that window lacks); `elsewhere`: stems the passages use."""
    first: tuple[Alignment, int, float, tuple[str, ...]] | None = None
    for j, sim, window, missing in tried:
        a = align(claim, window, missing, elsewhere)
        if a.label == SUPPORTED and sim >= topic:
            return Verdict(claim, SUPPORTED, j, sim)
        if first is None:
            first = (a, j, sim, missing)
    if first is None:
        return Verdict(claim, NOT_FOUND, None, 0.0, "no sentence of the documents is near it")
    a, j, sim, missing = first
    if sim < topic:
        return Verdict(claim, NOT_FOUND, j, sim, "no sentence of the documents is on its topic", missing)
    label = a.label if a.label != SUPPORTED else NOT_FOUND
    return Verdict(claim, label, j, sim, a.reason, missing)
