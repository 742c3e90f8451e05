"""What kind of answer a question asks for, and whether a sentence gives one.

A sentence that restates the question ("The BOM will be silently dropped when the file is read")
scores high on every similarity with it; the sentence that answers it names something the
question does not: the function, option, variable, path or value ("For reading such files, use
the 'utf-8-sig' codec"), the number a "how many" asks for, the reason a "why" asks for. This is
the answer-type check of classic question answering, kept to cues any technical document shares:

- `expects(question)`: the kinds of answer asked for: `name` (how to do something, which
  function, where, what is it called), `number` (how many, how much, what size), `reason` (why),
  `yes-no` (does, is, can ... without a wh-word).
- `gives(sentence, question, kinds)`: 0..1, how much the sentence gives an answer of those
  kinds that the question does not already hold: a name written as code (`read.csv2()`,
  `--prefix`, `R_LIBS_USER`, `inst/extdata`, `encoding="utf-8"`, a quoted 'value'), an
  instruction (use, set, pass, specify ...) with such a name, a number, a reason clause, a
  negation or a limit word for a yes-no question.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Code-like names: dotted or underscored words, calls, options, assignments, paths, upper-case
# variables, quoted values.
_CODE = re.compile(
    r"""(?x)
    (?<![\w-])--?[A-Za-z][\w-]*            # --prefix, -OO, -v
    | \b\w+(?:[._:]\w+)+(?:\(\))?           # read.csv2, sys.path, R_LIBS_USER, importlib.reload()
    | \b\w+\(\)                             # ord(), normalize()
    | \b\w+\s?=\s?["'\w]                    # type=int, header=TRUE, encoding="utf-8"
    | \b[A-Z][A-Z0-9]{2,}\b                 # TMPDIR, NULL, UTF
    | \b\w+(?:/\w+)+\b                      # inst/extdata
    | [‘'"“`][^‘’'"“”`\s]{1,40}[’'"”`]      # 'utf-8-sig', "store_true", ‘a4’
    """
)
_NUMBER = re.compile(r"\b(?:\d+(?:\.\d+)?|one|two|three|four|five|six|seven|eight|nine|ten|twelve|hundred)\b", re.I)
_INSTRUCTION = re.compile(
    r"\b(?:use|using|set|setting|pass|specify|call|add|run|give|put|write|type|enter|choose|select|"
    r"must|should|need to|can be|recommended|instead|default|defaults)\b",
    re.I,
)
_REASON = re.compile(r"\b(?:because|since|so that|due to|therefore|this means|reason|as a result|otherwise)\b", re.I)
_POLARITY = re.compile(r"\b(?:not|never|no|only|always|cannot|can't|doesn't|don't|isn't|must|both|either)\b", re.I)
_WH = re.compile(r"\b(?:how|what|which|where|why|when|who|whom|whose)\b", re.I)
_YES_NO = re.compile(r"^\s*(?:does|do|did|is|are|was|were|can|could|will|would|should|may|must|has|have)\b", re.I)


def expects(question: str) -> frozenset[str]:
    """The kinds of answer `question` asks for (empty: it asks for none that a cue can tell)."""
    q = question.lower()
    kinds: set[str] = set()
    if re.search(r"\bhow (?:many|much|long|large|big|often)\b|\bwhat (?:size|number|limit)\b|\bmaximum\b", q):
        kinds.add("number")
    if re.search(r"\bwhy\b", q):
        kinds.add("reason")
    if re.search(r"\b(?:how|which|what|where|who)\b", q) and "number" not in kinds:
        kinds.add("name")
    # a yes-no question: its last sentence opens on an auxiliary verb and holds no wh-word
    last = re.split(r"(?<=[.!?])\s+", question.strip())[-1]
    if _YES_NO.match(last) and not _WH.search(last):
        kinds.add("yes-no")
    return frozenset(kinds)


def _names(text: str) -> set[str]:
    return {m.group(0).strip("‘’'\"“”`").lower() for m in _CODE.finditer(text)}


def gives(sentence: str, question: str, kinds: Iterable[str]) -> float:
    """How much `sentence` gives an answer of `kinds` that `question` does not hold already (0..1)."""
    kinds = set(kinds)
    if not kinds:
        return 0.0
    asked = question.lower()
    score = 0.0
    if "name" in kinds or "yes-no" in kinds:
        new = [n for n in _names(sentence) if n not in asked]
        if new:
            score = max(score, 0.7 + 0.3 * bool(_INSTRUCTION.search(sentence)))
        elif "name" in kinds and _INSTRUCTION.search(sentence):
            score = max(score, 0.3)
    if "number" in kinds:
        have = set(_NUMBER.findall(asked))
        if any(n.lower() not in have for n in _NUMBER.findall(sentence)):
            score = max(score, 1.0)
    if "reason" in kinds and _REASON.search(sentence):
        score = max(score, 1.0)
    if "yes-no" in kinds and _POLARITY.search(sentence):
        score = max(score, 0.7)
    return score
