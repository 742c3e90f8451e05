"""The verifier (meaning, not topic), `archivist verify`, answer tidying, running headers, the
refusal's asking sentence and the eval's key terms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistants.tidy import cut_off, debris, names_keys, tidy, words_before_quotes
from ingest.running import without_running
from retriever.answerable import answerability, asking_part
from retriever.verify import CONTRADICTED, NOT_FOUND, SUPPORTED, align, asked_opposites, opposed
from tests.shared import make_pdf

SENTENCE = (
    "The variations read.csv2 and read.delim2 are appropriate for use in those locales where the comma is "
    "used for the decimal point and (for read.csv2) for spreadsheets which use semicolons to separate fields."
)
WRITE = "In some locales the comma is used as the decimal point: use write.csv2 for appropriate defaults."


@pytest.mark.parametrize(
    ("claim", "window", "label"),
    [
        ("read.csv2 is appropriate where the comma is used for the decimal point.", [SENTENCE], SUPPORTED),
        ("write.csv2 reads files where the comma is the decimal point.", [WRITE], CONTRADICTED),
        ("read.csv2 is not appropriate where the comma is the decimal point.", [SENTENCE], CONTRADICTED),
        ("The lamp runs on a 12 volt supply.", ["The lamp runs on a 24 volt supply."], CONTRADICTED),
        ("read.fwf reads files where the comma is the decimal point.", [SENTENCE], NOT_FOUND),
        ("The keeper paints the tower red every spring.", ["The keeper cleans the lens every Tuesday."], NOT_FOUND),
        # each word of the pair is in both: only how often each is said tells the swap
        (
            "The last subscript moves fastest and the last subscript slowest.",
            ["The first subscript moves fastest and the last subscript slowest."],
            CONTRADICTED,
        ),
        (
            "readBin and writeBin write to and write from connections.",
            ["readBin and writeBin read from and write to connections."],
            CONTRADICTED,
        ),
        (
            "The first subscript moves fastest and the last subscript slowest.",
            ["The first subscript moves fastest and the last subscript slowest."],
            SUPPORTED,
        ),
        (
            "Such an assignment does not not replace the component.",
            ["Such an assignment does not replace the component."],
            CONTRADICTED,
        ),
        # the sentence copied with a name swapped for one its neighbour names: not what it says
        (
            SENTENCE.replace("read.csv2 and", "read.table and"),
            ["The function read.table is the most convenient way to read in a rectangular grid of data.", SENTENCE],
            NOT_FOUND,
        ),
        # ... or with a word of quantity changed
        (
            "The main reason is that R and S have the same defaults for unordered factors.",
            ["The main reason is that R and S have different defaults for unordered factors."],
            NOT_FOUND,
        ),
        # a plain word for a synonym stays a fair copy
        (
            "Function read.fwf offers a simple way to read such files, specifying a vector of field widths.",
            ["Function read.fwf provides a simple way to read such files, specifying a vector of field widths."],
            SUPPORTED,
        ),
    ],
)
def test_a_claim_is_supported_only_when_its_window_says_it(claim: str, window: list[str], label: str) -> None:
    from retriever.grounding import facts

    joined = " ".join(window)
    missing = tuple(f for f in facts(claim) if f.lower() not in joined.lower())
    assert align(claim, window, missing).label == label


def test_a_question_about_reading_is_opposed_by_a_sentence_about_writing() -> None:
    assert opposed(asked_opposites("How do I read it?"), WRITE)
    assert not opposed(asked_opposites("How do I read it?"), SENTENCE)
    assert not opposed(asked_opposites("Which function should I use to write them?"), WRITE)


@pytest.mark.slow
def test_cli_verify_tells_supported_from_contradicted_and_not_found(harbor, capsys) -> None:  # type: ignore[no-untyped-def]
    from app import cli

    def verify(claim: str) -> dict:  # type: ignore[type-arg]
        rc = cli.main(["verify", "harbor", claim, "--json"])
        out = json.loads(capsys.readouterr().out)["claims"]
        assert len(out) == 1 and rc == (0 if out[0]["verdict"] == "supported" else 1)
        return out[0]

    ok = verify("The lens of the Greywater lighthouse is cleaned every Tuesday.")
    assert ok["verdict"] == "supported"
    assert ok["evidence"]["page"] == 2 and "every Tuesday" in ok["evidence"]["sentence"]
    assert verify("The lamp of the Greywater lighthouse runs on a 12 volt supply.")["verdict"] == "contradicted"
    assert verify("The lens of the Greywater lighthouse is never cleaned.")["verdict"] == "contradicted"
    assert verify("Puffins nest in the oil house from April to August.")["verdict"] != "supported"
    rc = cli.main(["verify", "harbor", "Puffins nest on the cliffs below the tower from April to August."])
    out = capsys.readouterr().out
    assert rc == 0 and "\u2713 supported" in out and "harbor.pdf, page 4" in out


def test_template_debris_goes_and_a_cut_off_end_stops_at_the_last_sentence() -> None:
    text = "Use read.csv2 for such files [1]. <> It reads semicolons. The comma used in the CSV file is likely to"
    assert debris(text) == ["<>"] and cut_off(text)
    assert tidy(text) == "Use read.csv2 for such files [1]. It reads semicolons."
    assert tidy("Call `a <> b` first.") == "Call `a <> b` first."  # code is left alone
    assert cut_off("Use sink() [2]") and not cut_off("Use sink(). [2]")
    assert tidy("only words without an end") == "only words without an end"  # nothing complete to stop at


def test_running_headers_and_page_numbers_leave_the_page_text() -> None:
    words = "apples pears plums cherries grapes lemons melons figs".split()  # noqa: SIM905
    pages = []
    for i in range(1, 9):
        chapter = 3 if i <= 4 else 4
        body = f"Body text of page {i} that goes on.\nIt says something new: {words[i - 1]} are ripe."
        pages.append((i, f"Chapter {chapter}: Title of chapter {chapter} {10 + i}\n{body}\n{10 + i}\n"))
    out = dict(without_running(pages))
    assert all(not t.startswith("Chapter") for t in out.values())
    assert all(f"It says something new: {words[i - 1]} are ripe." in out[i] for i in out)
    assert all(not t.rstrip().endswith(str(10 + i)) for i, t in out.items())
    short = [(1, "Alone\nA page of its own.")]
    assert dict(without_running(short)) == {1: "Alone\nA page of its own."}


def test_a_pdf_with_running_headers_is_read_without_them(tmp_path: Path) -> None:
    from ingest import load_bytes

    said = ["Tables come first.", "Then lists.", "Vectors are next.", "Arrays follow.", "Frames close it.", "The end."]
    pages = [f"Chapter 2: Reading data {5 + i}\n{said[i]}\nMore text here, page {i}." for i in range(6)]
    pdf = make_pdf(tmp_path / "book.pdf", pages)
    doc = load_bytes(pdf.read_bytes(), "book.pdf")
    assert all("Chapter 2" not in p.text for p in doc.pages)
    assert all(said[i] in p.text for i, p in enumerate(doc.pages))


def test_a_name_said_in_passing_does_not_refuse_the_question() -> None:
    q = "A colleague in France wants CSV files with decimal commas. Which function should I use to write them?"
    assert asking_part(q) == "Which function should I use to write them?"
    present = lambda words: [w for w in words if w != "france"]  # noqa: E731
    assert answerability(q, present).answerable()
    asked = "How do I export a table to France's tax office?"
    assert not answerability(asked, present).answerable()


def test_key_terms_are_loaded_and_judged(tmp_path: Path) -> None:
    from retriever.evaluate import load_questions, with_keys
    from runtime.errors import ArchivistError

    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"id": "a", "document": "d.pdf", "question": "q?", "pages": [1]}) + "\n")
    keys = tmp_path / "keys.jsonl"
    keys.write_text(json.dumps({"id": "a", "keys": ["sink", ["read.csv2", "read.delim2"]]}) + "\n")
    (q,) = with_keys(load_questions(qa), keys)
    assert q.keys == (("sink",), ("read.csv2", "read.delim2"))
    assert names_keys("Call sink() then read.delim2 ()", q.keys)
    assert not names_keys("Call sink() then read.table()", q.keys)
    keys.write_text(json.dumps({"id": "zz", "keys": ["x"]}) + "\n")
    with pytest.raises(ArchivistError, match="not in the set: zz"):
        with_keys(load_questions(qa), keys)
    keys.write_text(json.dumps({"id": "a", "keys": [""]}) + "\n")
    with pytest.raises(ArchivistError, match=r"keys.jsonl:1"):
        with_keys(load_questions(qa), keys)
    assert words_before_quotes("Use sink().\n> \u201cquote\u201d [1]") == 2


def test_a_negation_more_than_the_documents_have_is_contradicted() -> None:
    from retriever.verify import CONTRADICTED, SUPPORTED, align

    said = (
        "For [[ and $ partial matching is used if exact matching fails, so x$aa will match x$aabb if x does not "
        'contain a component named "aa".'
    )
    assert align(said, [said]).label == SUPPORTED
    added = said.replace("matching is used", "matching is not used")  # the documents' other "not" stays
    assert align(added, [said]).label == CONTRADICTED
    doubled = "An assignment does not not replace the component u of the data frame."
    assert align(doubled, ["An assignment does not replace the component u of the data frame."]).label == CONTRADICTED
