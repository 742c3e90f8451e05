"""What a reader stumbles on in a model's answer, found and mended: template debris (`<>`, `<</`,
`<|im_end|>`), an end cut off mid-sentence by the token budget, and whether the answer names the
terms a question's right answer must name (the eval's `keys`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from retriever.sentences import in_fence, split_sentences

# Pieces of chat templates and markup a small model writes into its prose: "<>", "<</SYS>>", "<|im_end|>",
# "[INST]", "</s>". Code in backticks or a fenced block is left alone.
DEBRIS = re.compile(r"<\|[^|<>\n]{0,30}\|?>?|<</?[A-Za-z]{0,10}>{0,2}|<>|\[/?INST\]|</?s>|<\|")
_CITES = re.compile(r"(?:\s*\[\d{1,2}\])+\s*$")
_COMPLETE = re.compile(r"""(?:[.!?]|```|\.\)|:\s*$)["'”’)\]]*$""")


def _code_spans(text: str) -> list[tuple[int, int]]:
    spans = [m.span() for m in re.finditer(r"```.*?(?:```|$)", text, re.S)]
    spans += [m.span() for m in re.finditer(r"`[^`\n]+`", text)]
    return spans


def _debris_matches(text: str) -> list[re.Match[str]]:
    code = _code_spans(text)
    return [m for m in DEBRIS.finditer(text) if not any(a <= m.start() < b for a, b in code)]


def debris(text: str) -> list[str]:
    """The template and markup pieces in `text` outside code."""
    return [m.group() for m in _debris_matches(text)]


def without_debris(text: str) -> str:
    out, pos = [], 0
    for m in _debris_matches(text):
        out.append(text[pos : m.start()])
        pos = m.end()
    out.append(text[pos:])
    return re.sub(r"[ \t]{2,}", " ", "".join(out)).strip()


def cut_off(text: str) -> bool:
    """Does the answer end inside a sentence (no closing punctuation after its last words)?"""
    bare = _CITES.sub("", text.rstrip()).rstrip()
    if not bare:
        return False
    if bare.count("```") % 2 == 1:
        return True  # a code block never closed
    last = bare.splitlines()[-1].strip()
    if last.startswith(("```", ">", "-", "*", "|")) or bare.endswith("```"):
        return False  # a list item, a quote line, a table row or a code block end: complete as written
    return not _COMPLETE.search(bare)


def complete(text: str) -> str:
    """`text` up to its last complete sentence (with the citations that follow it): an answer the
    token budget cut off stops where a sentence does. Unchanged when it ends complete, or when no
    sentence of it is complete."""
    if not cut_off(text):
        return text
    spans = split_sentences(text)
    for _a, b in reversed(spans[:-1]):
        end = b
        m = re.match(r"(?:\s*\[\d{1,2}\])+", text[b:])
        if m:
            end = b + m.end()
        if not cut_off(text[:end]):
            return text[:end].rstrip()
    return text


# A sentence that says nothing about the documents: "So the answer is: [4]", "So the above answer is
# correct.", "The answer is:" (words only from this list, citations aside).
_FILLER_WORDS = frozenset(
    [
        "so",
        "the",
        "answer",
        "is",
        "above",
        "correct",
        "right",
        "this",
        "that",
        "as",
        "follows",
        "here",
        "thus",
        "therefore",
    ]
)


def _filler(sentence: str) -> bool:
    """Only announces an answer, or gives a bare yes or no after it ("So, yes."): nothing a check of
    the documents could vouch for (the quote before it says what they say)."""
    words = re.findall(r"[a-z]+", re.sub(r"\[\d{1,2}\]", " ", sentence.lower()))
    if not words or not set(words) <= _FILLER_WORDS | {"yes", "no"}:
        return False
    return "answer" in words or "yes" in words or "no" in words


_ANNOUNCED = re.compile(r"^(?:so,?\s+)?(?:the\s+)?(?:correct\s+)?answer\s+is\s*:?\s*", re.I)


def without_filler(text: str) -> str:
    """`text` without the sentences after its first that repeat what came before (word for word, or
    announced: 'The answer is: "<a sentence quoted above>"'), only announce an answer or give a bare
    yes or no ("So, yes.", "So the answer is: [4]": on a 135M model as often wrong as right, and
    nothing the check can read), or end the answer on a colon that introduces nothing ("You can use
    [2]:")."""
    spans = split_sentences(text)
    if len(spans) < 2:
        return text
    said, keys = "", set()
    out, pos = [], 0
    for n, (a, b) in enumerate(spans):
        sentence = text[a:b]
        if in_fence(text, a) or sentence.lstrip().startswith("```"):
            continue  # code is left as written
        key = re.sub(r"\W+", " ", _ANNOUNCED.sub("", sentence).lower()).strip()
        last = n == len(spans) - 1
        dangling = last and _CITES.sub("", sentence).rstrip().endswith(":")
        if n and (key in keys or (len(key) >= 12 and key in said) or _filler(sentence) or dangling):
            out.append(text[pos:a].rstrip(" \t"))
            pos = b
            continue
        said += " " + re.sub(r"\W+", " ", sentence.lower())
        keys.add(key)
    out.append(text[pos:])
    joined = "".join(out)
    return re.sub(r"[ \t]{2,}", " ", re.sub(r"\n{3,}", "\n\n", joined)).strip()


def tidy(text: str) -> str:
    """The answer as a reader should get it: no debris, no sentence cut off, no sentence repeated
    or only announcing an answer."""
    return without_filler(complete(without_debris(text)))


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text).lower()


def names_keys(text: str, keys: Sequence[Sequence[str]]) -> bool:
    """Does `text` name every key group (any one alternative of each), case and spacing aside?"""
    have = _squash(text)
    return all(any(_squash(t) in have for t in group) for group in keys)


def words_before_quotes(text: str) -> int:
    """Words of the answer a reader reads before the quoted lines ("> ...") begin."""
    n = 0
    for line in text.splitlines():
        if line.lstrip().startswith(">"):
            break
        n += len(line.split())
    return n
