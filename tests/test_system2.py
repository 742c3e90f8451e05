"""Answers a user can trust: faithful decoding, best of N judged by the check, the honest fallback,
context shaped for small models, refusals, and the answer-level evaluation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistants.answer_eval import evidence_recall, summarize, token_f1
from assistants.system2 import FALLBACK_NOTE
from runtime.faithful import FaithfulLogits, SourceWords
from runtime.protocol import GenerationParams
from tests.shared import BAD, GOOD, OnePool, ScriptedModel, assistant, use

SOURCES = 'Command lines are limited to about 4095 bytes. Use read.table(file) or sink("out.txt"). Run R --vanilla.'


def test_source_words_allow_content_only_as_the_sources_write_it() -> None:
    w = SourceWords(SOURCES + " [1] R-intro.pdf, page 11")
    assert w.allows_word("4095", False, finished=True) and w.allows_word("4095.", False, finished=True)
    assert w.allows_word("409", False) and not w.allows_word("409", False, finished=True)  # a prefix, not a number
    assert not w.allows_word("4096", False)
    assert w.allows_word("read.table(", False) and w.allows_word("read.table()", False, finished=True)
    assert not w.allows_word("read.csv", False)
    assert w.allows_word("--vanilla", False) and not w.allows_word("--verbose", False)
    assert w.allows_word("[1]", False, finished=True) and not w.allows_word("[2]", False)
    assert not w.allows_word("Smith", False) and not w.allows_word("Smith", True)  # a name, even opening a sentence
    assert w.allows_word("The", True) and w.allows_word("Command", True) and not w.allows_word("The", False)
    assert w.allows_word("bytes,", False) and w.allows_word("e.g.", False)  # plain words are free


def test_the_processor_masks_every_token_that_would_write_an_unseen_number() -> None:
    texts = [" The", " limit", " is", " 4", "09", "5", "6", " bytes", ".", "\n", "<eos>"]
    guard = FaithfulLogits(texts, SOURCES, always=[10])
    for piece in (" The", " limit", " is", " 4", "09"):
        guard.feed(piece)
    logits = np.zeros(len(texts), np.float32)
    logits[6] = 9.0  # the model wants "4096"
    allowed = {texts[i] for i in np.flatnonzero(np.isfinite(guard(np.zeros(0, np.intc), logits)))}
    assert "6" not in allowed and "5" in allowed and "<eos>" in allowed
    assert " bytes" not in allowed  # "409" would end as a number the sources do not hold
    assert guard.masked >= 2


@pytest.mark.slow
def test_faithful_decoding_cannot_write_a_number_no_passage_holds(small_model) -> None:  # type: ignore[no-untyped-def]
    passage = "The Greywater lighthouse stands on the northern cliff. Its keeper cleans the lens by hand."
    messages = [
        {"role": "system", "content": "Answer with a number."},
        {
            "role": "user",
            "content": f"Passage: {passage}\n\nQuestion: How many steps lead up the lighthouse, and "
            "in which year was it built? Give both numbers.",
        },
    ]
    free = small_model.generate(messages, GenerationParams(max_tokens=40, temperature=0.0))
    assert re.search(r"\d", free), free  # unconstrained, the model invents numbers here
    sources = messages[0]["content"] + "\n" + messages[1]["content"]
    faithful = small_model.generate(messages, GenerationParams(max_tokens=40, temperature=0.0, sources=sources))
    assert faithful.strip() and not re.search(r"\d", faithful), faithful


def test_best_of_n_shows_the_candidate_the_check_supports(harbor) -> None:  # type: ignore[no-untyped-def]
    svc, _ = harbor
    model = ScriptedModel([BAD, GOOD, BAD])
    svc = use(svc, OnePool(model))
    a = svc.chat.ask(assistant(thinking="best_of_n", candidates=3), "How often is the lighthouse lens cleaned?")
    answer = a.result()
    assert answer.text == GOOD and answer.shown == "best-of-n"
    assert answer.candidates == 2 and len(model.prompts) == 2  # stopped at the fully supported candidate
    assert answer.grounding is not None and not answer.grounding.unsupported
    assert answer.details_json()["candidates"] == 2 and answer.judge_time > 0

    half = "The keeper cleans the Greywater lens every Tuesday [1]. The lamp uses 240 volts [1]."
    model = ScriptedModel([BAD, half, BAD])
    svc = use(svc, OnePool(model))
    answer = svc.chat.ask(assistant(thinking="best_of_n", candidates=3), "How often is the lens cleaned?").result()
    assert answer.candidates == 3 and answer.text == half  # none fully supported: all three judged, the best shown
    assert answer.grounding is not None and len(answer.grounding.unsupported) == 1


def test_fallback_shows_the_quotes_and_says_the_answer_was_unsupported(harbor) -> None:  # type: ignore[no-untyped-def]
    svc, _ = harbor
    svc = use(svc, OnePool(ScriptedModel([BAD])))
    stream = svc.chat.ask(assistant(fallback="quotes"), "How often is the lighthouse lens cleaned?")
    assert len([p for p in stream if p]) == 1  # judged before it is shown: one piece of text (the rest heartbeats)
    a = stream.result()
    assert a.shown == "quotes" and a.text.startswith(FALLBACK_NOTE)
    assert "cleaned every Tuesday" in a.text and "Captain Ahab" not in a.text
    assert a.grounding is not None and not a.grounding.unsupported
    details = a.details_json()
    assert details["shown"] == "quotes" and details["refused"] is False

    svc = use(svc, OnePool(ScriptedModel([GOOD])))
    a = svc.chat.ask(assistant(fallback="quotes"), "How often is the lighthouse lens cleaned?").result()
    assert a.text == GOOD and a.shown == "generated"


def test_context_can_lead_with_the_quotes_or_give_only_them(harbor) -> None:  # type: ignore[no-untyped-def]
    svc, _ = harbor
    question = "How often is the lighthouse lens cleaned?"
    prompts = {}
    for context in ("passages", "quotes-first", "quotes-only"):
        model = ScriptedModel([GOOD])
        svc = use(svc, OnePool(model))
        answer = svc.chat.ask(assistant(context=context, grounding="off"), question).result()
        prompts[context] = model.prompts[0][-1]["content"]
        assert "Spare bulbs" in answer.citations[0].text  # citations keep the whole passage, whatever the model read
    assert "Key sentences" not in prompts["passages"]
    first = prompts["quotes-first"]
    assert first.index("Key sentences") < first.index("[1] harbor.pdf") and "cleaned every Tuesday" in first
    only = prompts["quotes-only"]
    assert "Key sentences" not in only and "cleaned every Tuesday" in only
    assert len(only) < len(prompts["passages"])  # the passages' other sentences are left out
    for p in prompts.values():  # quotes are document text: inside the marked data, before the question
        assert p.index("cleaned every Tuesday") < p.index("Question:")
    # a model that starts copying the prompt's layout instead of answering is stopped there
    assert {"<</DOCS-", "\nQuestion:"} <= set(model.params[0].stop)


def test_a_question_below_the_relevance_floor_is_refused(harbor, capsys) -> None:  # type: ignore[no-untyped-def]
    from app import cli

    svc, _ = harbor
    svc.library.save(assistant(retrieval={"top_k": 3, "min_score": 0.99}))
    assert cli.main(["ask", "harbor", "How do I train a neural network?", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["refused"] is True and out["shown"] == "refusal" and out["answer"] == svc.library.get("harbor").refusal


def test_answer_measures() -> None:
    assert evidence_recall("R limits lines to about 4095 bytes.", "to about 4095 bytes (not characters)") == 2 / 3
    # two places that answer: the better one counts
    assert evidence_recall("R limits lines to about 4095 bytes.", "no such words here", "about 4095 bytes") == 1.0
    assert evidence_recall("anything", "") == 0.0
    assert token_f1("sink diverts output", "sink() diverts console output") == pytest.approx(2 * 1 * 0.75 / 1.75)
    assert token_f1("nothing alike", "sink diverts") == 0.0


def test_summary_counts_refusals_and_fallbacks() -> None:
    from assistants.answer_eval import AnswerRow

    rows = [
        AnswerRow(
            "a",
            True,
            1.0,
            [],
            "x",
            1.0,
            1.0,
            shown="generated",
            evidence_recall=0.8,
            token_f1=0.5,
            seconds=1.0,
            tokens=10,
            candidates=1,
            claims=2,
            supported_claims=2,
        ),
        AnswerRow(
            "b",
            True,
            1.0,
            [],
            "x",
            0.5,
            1.0,
            shown="quotes",
            evidence_recall=0.2,
            token_f1=0.1,
            seconds=3.0,
            tokens=20,
            candidates=1,
            claims=2,
            supported_claims=1,
        ),
        AnswerRow("u1", None, 1.0, [], "no", None, None, unanswerable=True, shown="refusal", refused=True, seconds=0.1),
        AnswerRow(
            "u2",
            None,
            1.0,
            [],
            "x",
            0.0,
            1.0,
            unanswerable=True,
            shown="generated",
            seconds=2.0,
            claims=1,
            supported_claims=0,
        ),
    ]
    s = summarize(rows)
    assert s["answered"] == 0.5 and s["generated"] == 0.5 and s["fallback"] == 0.5
    assert s["refused_unanswerable"] == 0.5 and s["refused_answerable"] == 0.0
    assert s["supported_sentences"] == 0.6 and s["seconds_p50"] == 1.5
    assert rows[2].right is True and rows[3].right is False and rows[1].right is False


@pytest.mark.slow
def test_cli_eval_counts_any_listed_evidence_in_the_quotes(harbor, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Through the real embedder and the CLI: evidence listed as two places is found in the quotes
    when either is; a place the documents never say is not."""
    from app import cli

    line = {"document": "harbor.pdf", "question": "How often is the lens cleaned?", "pages": [2]}
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        json.dumps({**line, "id": "listed", "evidence": ["polished by divers at midnight", "cleaned every Tuesday"]})
        + "\n"
        + json.dumps({**line, "id": "absent", "evidence": ["polished by divers at midnight"]})
        + "\n"
    )
    assert cli.main(["eval", str(qa), "-c", "harbor", "--mode", "hybrid", "--answers", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)["answers"]["rows"]}
    assert rows["listed"]["evidence_in_quotes"] is True
    assert rows["absent"]["evidence_in_quotes"] is False


@pytest.mark.slow
def test_cli_eval_generate_reports_answers_and_unanswerable(harbor, tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from app import cli, commands

    svc, _ = harbor
    svc = use(svc, OnePool(ScriptedModel([GOOD, GOOD, BAD])))
    monkeypatch.setattr(commands, "services", lambda args: svc)  # the CLI answers with the scripted model
    svc.library.save(assistant(retrieval={"top_k": 3, "min_score": 0.3}, fallback="quotes"))
    qa = tmp_path / "qa.jsonl"
    extra = tmp_path / "unanswerable.jsonl"
    qa.write_text(
        json.dumps(
            {
                "id": "lens",
                "document": "harbor.pdf",
                "question": "How often is the lens cleaned?",
                "pages": [2],
                "evidence": "cleaned every Tuesday",
                "answer": "Every Tuesday, by the keeper.",
            }
        )
    )
    extra.write_text(
        json.dumps(
            {
                "id": "tax",
                "document": "harbor.pdf",
                "question": "What is the corporate tax rate in Norway?",
                "unanswerable": True,
            }
        )
    )
    rc = cli.main(
        [
            "eval",
            str(qa),
            str(extra),
            "-c",
            "harbor",
            "--mode",
            "hybrid",
            "--answers",
            "--generate",
            "--assistant",
            "harbor",
            "--json",
        ]
    )
    assert rc == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert out["results"][0]["questions"] == 1  # retrieval is scored on the answerable question only
    rows = {r["id"]: r for r in out["answers"]["rows"]}
    assert rows["lens"]["right"] is True and rows["lens"]["shown"] == "generated"
    assert rows["tax"]["unanswerable"] is True and rows["tax"]["refused"] is True and rows["tax"]["right"] is True
    s = out["answers"]["summary"]
    assert s["answerable"] == 1 and s["unanswerable"] == 1 and s["answered"] == 1.0 and s["seconds_p50"] > 0
    assert s["refused_unanswerable"] == 1.0 and s["generated"] == 1.0


def test_a_question_naming_what_no_document_mentions_is_refused_before_any_search() -> None:
    from retriever.answerable import answerability, question_words

    assert question_words("How do I read an Excel file with read_excel?") == [
        ("read", False),
        ("Excel", True),
        ("file", False),
        ("read_excel", True),
    ]
    docs = {"read", "file", "lens", "cleaned", "often", "lighthouse"}
    a = answerability("How do I read an Excel file?", lambda ws: docs.intersection(ws))
    assert not a.answerable() and a.names_missing == ("Excel",) and "never mention Excel" in a.reason()
    a = answerability("How often is the lighthouse lens cleaned?", lambda ws: docs.intersection(ws))
    assert a.answerable() and a.coverage == 1.0
    # an ordinary word the documents do not use lowers the coverage but does not refuse on its own
    a = answerability("How often is the lighthouse lens wiped?", lambda ws: docs.intersection(ws))
    assert a.answerable() and a.missing == ("wiped",)
    a = answerability("How do I define an R6 class in a 2x2 layout?", lambda ws: docs | {"define", "class", "layout"})
    assert a.names_missing == ("R6",) and "2x2" not in a.words  # a name with a digit; numbers are not looked up
    a = answerability("Which deep keras layers train fastest?", lambda ws: docs.intersection(ws))
    assert not a.answerable() and not a.names_missing and a.coverage == 0.0
    # a key users abbreviate counts when the documents spell it out, and only then
    spelled = {"catch", "exception", "control", "c"}
    a = answerability("Why doesn't except Exception catch Ctrl-C?", lambda ws: spelled.intersection(ws) | {"except"})
    assert a.answerable() and a.missing == ("doesn",)
    a = answerability("Why doesn't except Exception catch Ctrl-C?", lambda ws: (spelled - {"control"}).intersection(ws))
    assert not a.answerable() and a.names_missing == ("Ctrl-C",)


def test_refusal_through_the_real_keyword_index(harbor, capsys) -> None:  # type: ignore[no-untyped-def]
    from app import cli

    svc, _ = harbor
    svc = use(svc, OnePool(ScriptedModel([GOOD])))
    svc.library.save(assistant())
    assert cli.main(["ask", "harbor", "Can I pay for parking with PayPal?", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["refused"] is True and "never mention PayPal" in out["refusal_reason"] and out["citations"] == []
    # the words the porter stemmer folds ("cleans" -> "clean") are found; the question is answered
    a = svc.chat.ask(svc.library.get("harbor"), "How often does the keeper clean the Greywater lens?").result()
    assert not a.refused and a.text == GOOD and a.citations


def test_trim_leaves_out_the_unsupported_sentences_and_lists_them(harbor) -> None:  # type: ignore[no-untyped-def]
    svc, _ = harbor
    half = "The keeper cleans the Greywater lens every Tuesday [1]. The lamp uses 240 volts from a windmill [1]."
    svc = use(svc, OnePool(ScriptedModel([half])))
    a = svc.chat.ask(assistant(fallback="trim"), "How often is the lighthouse lens cleaned?").result()
    assert a.text == "The keeper cleans the Greywater lens every Tuesday [1]." and a.shown == "generated"
    assert a.left_out == ["The lamp uses 240 volts from a windmill [1]."]
    assert a.grounding is not None and not a.grounding.unsupported and a.citations[0].cited
    assert a.details_json()["left_out"] == a.left_out

    svc = use(svc, OnePool(ScriptedModel([BAD])))  # nothing supported: the quotes, not an empty answer
    a = svc.chat.ask(assistant(fallback="trim"), "How often is the lighthouse lens cleaned?").result()
    assert a.shown == "quotes" and a.text.startswith(FALLBACK_NOTE) and not a.left_out


def test_faithful_assistants_give_the_model_their_passages_and_question_as_sources(harbor) -> None:  # type: ignore[no-untyped-def]
    svc, _ = harbor
    for decoding, expected in (("free", False), ("faithful", True)):
        model = ScriptedModel([GOOD])
        svc = use(svc, OnePool(model))
        svc.chat.ask(assistant(decoding=decoding), "How often is the lighthouse lens cleaned?").result()
        sources = model.params[0].sources
        assert (sources is not None) is expected
        if sources is not None:
            assert "24 volt supply" in sources and "How often is the lighthouse lens cleaned?" in sources


def test_anchored_answers_open_with_the_best_quotes_passage(harbor) -> None:  # type: ignore[no-untyped-def]
    svc, _ = harbor
    model = ScriptedModel([GOOD])
    svc = use(svc, OnePool(model))
    svc.chat.ask(assistant(anchor="best-quote"), "How often is the lighthouse lens cleaned?").result()
    assert model.params[0].prefix == "According to [1], "
    model = ScriptedModel([GOOD])
    svc = use(svc, OnePool(model))
    svc.chat.ask(
        assistant(anchor="best-quote", citation_style="document-page"), "How often is the lens cleaned?"
    ).result()
    assert model.params[0].prefix == "According to harbor.pdf (p. 2), "
    model = ScriptedModel([GOOD])  # anchor: quote - the best quote itself opens the answer, cited
    svc = use(svc, OnePool(model))
    a = svc.chat.ask(assistant(anchor="quote"), "How often is the lighthouse lens cleaned?").result()
    best = " ".join(a.quotes[0].text.split()).rstrip(".")
    assert "Tuesday" in best and model.params[0].prefix == f'According to [{a.quotes[0].passage}]: "{best}." '


@pytest.mark.slow
def test_the_model_continues_from_the_prefix(small_model) -> None:  # type: ignore[no-untyped-def]
    messages = [{"role": "user", "content": "Passage: The lens is cleaned every Tuesday.\n\nHow often is it cleaned?"}]
    params = GenerationParams(max_tokens=20, temperature=0.0, prefix="According to the passage, ")
    pieces = list(small_model.stream(messages, params))
    assert pieces[0] == "According to the passage, " and "".join(pieces[1:]).strip()


def test_a_quote_copied_again_after_the_opening_is_left_out() -> None:
    from assistants.system2 import without_repeats

    lead = 'According to [1]: "The lens is cleaned every Tuesday by the keeper." '
    text = lead + "The lens is cleaned every Tuesday. The lamp runs on 24 volts [1]. Yes."
    assert without_repeats(text, lead) == lead + "The lamp runs on 24 volts [1]. Yes."
    assert without_repeats("No opening here.", lead) == "No opening here."


def test_stop_keeps_what_was_written_marked_stopped_and_stores_it(harbor) -> None:  # type: ignore[no-untyped-def]
    svc, _ = harbor
    model = ScriptedModel([GOOD, GOOD, GOOD])
    svc = use(svc, OnePool(model))
    conv = svc.conversations.create("harbor")
    stream = svc.conversation.ask(assistant(thinking="best_of_n"), conv.id, "How often is the lighthouse lens cleaned?")
    pieces = iter(stream)
    assert next(pieces) == ""  # a heartbeat while the first candidate is written: a reader may stop here
    answer = stream.stop()
    assert answer.stopped and answer.text == GOOD.split(" ")[0]  # the one piece written, no more candidates
    assert len(model.params) == 1 and stream.stop() is answer
    stored = svc.conversations.messages(conv.id)
    assert [m.role for m in stored] == ["user", "assistant"] and stored[1].text == answer.text
    assert stored[1].details["stopped"] is True


@pytest.mark.slow
def test_the_shipped_default_opens_with_the_best_quote_on_the_real_model(harbor, model_pool) -> None:  # type: ignore[no-untyped-def]
    """The default assistant settings on the bundled model: the answer leads with the best quote,
    cited and supported, and whatever the model adds is checked like any answer."""
    from assistants.schema import Assistant

    svc, _ = harbor
    svc = use(svc, model_pool)
    bot = Assistant.model_validate({"name": "harbor", "knowledge": {"collections": ["harbor"]}})
    assert bot.anchor == "quote" and bot.thinking == "off"
    a = svc.chat.ask(bot, "How often is the lighthouse lens cleaned?").result()
    best = " ".join(a.quotes[0].text.split()).rstrip(".")
    assert "Tuesday" in best and a.text.startswith(f'According to [{a.quotes[0].passage}]: "{best}."'), a.text
    assert a.shown in ("generated", "best-of-n") and a.grounding is not None and not a.grounding.unsupported
    assert a.citations[a.quotes[0].passage - 1].cited


# ---------------------------------------------------------------- the answer a question asks for


def test_the_kind_of_answer_a_question_asks_for() -> None:
    from retriever.answer_kind import expects

    assert expects("How do I read a CSV file with semicolons?") == {"name"}
    assert expects("How many arguments can a user-defined Rd macro take?") == {"number"}
    assert "reason" in expects("Why does sqrt(2)*sqrt(2) == 2 return FALSE?")
    assert expects("Does range(10) include 10?") == {"yes-no"}
    assert expects("Tell me about factors.") == frozenset()


def test_a_sentence_that_names_what_the_question_lacks_gives_the_answer() -> None:
    from retriever.answer_kind import expects, gives

    q = "My UTF-8 file starts with a BOM that ends up in the first line I read. How do I read it without the mark?"
    kinds = expects(q)
    answer = "For reading such files, use the 'utf-8-sig' codec to automatically skip the mark if present."
    restated = "The BOM will be silently dropped when the file is read."
    assert gives(answer, q, kinds) > gives(restated, q, kinds)
    # a name the question already holds is no answer to it
    assert gives("The UTF-8 encoding is common.", "What is UTF-8?", expects("What is UTF-8?")) == 0.0
    many = "How many arguments can a user-defined Rd macro take?"
    assert gives("As in LaTeX, at most 9 arguments may be defined.", many, expects(many)) == 1.0
    assert gives("Macros are defined with \\newcommand.", many, expects(many)) == 0.0


def test_tidy_drops_repeated_and_empty_announcing_sentences() -> None:
    from assistants.tidy import tidy

    quote = 'According to [4]: "The --help option is free."'
    assert tidy(f"{quote} So, yes. So, yes.") == quote  # a bare yes after the quote: nothing to check it by
    assert tidy(f"{quote} So the answer is: [4]") == quote
    assert tidy("Use read.csv2 [1]. So the above answer is correct.") == "Use read.csv2 [1]."
    assert (
        tidy("The answer is no. The order does not matter [2].") == "The answer is no. The order does not matter [2]."
    )


def test_an_answer_never_ends_on_a_colon_that_introduces_nothing_nor_repeats_its_quote() -> None:
    from assistants.system2 import opening
    from assistants.tidy import tidy
    from retriever.quotes import Quote

    lead = 'According to [1]: "Rscript also checks R_SCRIPT_DEFAULT_PACKAGES."'
    assert tidy(f"{lead} You can use [2]:") == lead
    said = "Note: to create an empty set you have to use set(), not {}."
    assert tidy(f'According to [1]: "{said}" The answer is: "{said}') == f'According to [1]: "{said}"'
    assert tidy("Do it like this:\n\n```\nx = set()\n```") == "Do it like this:\n\n```\nx = set()\n```"
    # the opening quote loses a last sentence that introduces what the quote does not hold
    q = Quote(f"Curly braces create sets. {said}\n\nHere is a brief demonstration:", "d.html", "c", None, 0, 1, 1.0, 1)
    assert opening(q, "numbered", with_quote=True) == f'According to [1]: "Curly braces create sets. {said}" '
