"""The weights of the supporting quotes' sentence score and the rules that join sentences into
quotes (`retriever.quotes`), each with what it was measured to do."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QuoteSettings:
    """Weights of the sentence score and how many quotes to give."""

    # Evidence inside the quotes, measured on both dev sets (R-intro + R-FAQ; bench/eval/second-dev.jsonl)
    # over the top 5 passages: the sentence alone, keyword 0.25: 0.825 / 0.575 (keyword 0.5: the
    # same). Read 0.4 with the sentence before it: 0.875 / 0.650 at keyword 0.5 (0.3-0.5 of it and
    # keyword 0.25-0.5: 0.825-0.875 / 0.650; keyword 0.75-1.0: 0.850-0.875 / 0.600-0.650). Reading
    # only the 12 best candidates so gave the same figures as reading all (5 to 1000 measured alike)
    # and costs one small embedding batch: the quotes' median time 159 -> 222 ms on the dev set.
    # A relative floor only lost quotes.
    dense_weight: float = 1.0
    context_weight: float = 0.4  # share of the dense score read with the sentence before it
    context_candidates: int = 12  # how many of the best candidates are read so (an embedding each)
    keyword_weight: float = 0.5
    # What the passage of a sentence says about it: its rank (weight / rank) and its own cosine with
    # the question (the stored chunk embedding). Evidence inside the quotes, both dev sets: rank 0.2
    # alone 0.900 / 0.800; with the passage's cosine, rank 0.05-0.1 and cosine 0.2-0.6 all gave
    # 0.925 / 0.825 (rank 0.15 or 0, or cosine 0.8, lost a question on one set). The cosine tells a
    # third passage that is close to the question from one that is third by a wide margin (found:
    # rdata-06's answer in a third passage, behind sentences of the first that only name its topic).
    rank_weight: float = 0.075
    passage_weight: float = 0.4
    reranker_weight: float = 0.5
    # A sentence about the opposite action of the question's (it writes where the question reads, adds
    # where it removes) and not about the asked one loses this much: "How do I read it?" was answered
    # with write.csv2's paragraph while read.csv2's sentence stood third.
    opposite_penalty: float = 0.3
    # Four sentences, with `chain` and `chain_forward` below: 0.875 -> 0.900 (R-intro + R-FAQ) and
    # 0.675 -> 0.725 (second-dev); the bundled model's answers (README's `--generate` command, same
    # run) answered 0.825 -> 0.875 and 0.625 -> 0.775, token F1 0.32 -> 0.29 and 0.18 -> 0.17
    # (longer answers), median 1.30 -> 1.54 s and 1.12 -> 1.21 s. Three with both rules: 0.850 / 0.675.
    max_sentences: int = 4
    relative_floor: float = 0.0  # a later quote must score at least this share of the best
    # A chosen sentence brings in the next one when that one refers back to it ("To read such
    # files ...", "This is ..."), as a connective sentence brings in the one before it. Evidence
    # inside the quotes, measured on both dev sets: 0.800 -> 0.825 (R-intro + R-FAQ) and
    # 0.425 -> 0.500 (bench/eval/second-dev.jsonl).
    follow_on: bool = True
    # The best sentence always brings in the one after it in its passage (the answer often follows
    # the sentence that names the question's topic: "If a separator is specified, leading white
    # space is part of the field. To strip the space, use strip.white = TRUE."). Measured on both
    # dev sets, three sentences at most either way: 0.825 -> 0.825 (R-intro + R-FAQ) and 0.500 ->
    # 0.575 (second-dev); for the two best sentences it lost dev questions (0.775).
    pair_best: bool = True
    # A sentence that ends in a colon and the one it introduces (an example, code) come together,
    # whichever of them is chosen ("For example, here's a case-insensitive string comparison:").
    # Found on second-set misses, so confirmed on the dev set only as doing no harm: 0.875 -> 0.875
    # (R-intro + R-FAQ) and 0.625 -> 0.650 (second-dev, through `archivist eval`).
    introduced: bool = True
    # A sentence brought in for the one after it ("This means ...") brings in the sentence that
    # introduces it in turn ("... named as follows:" before a line of code). Found on a second-set
    # miss; evidence inside the quotes 0.875 -> 0.875 (R-intro + R-FAQ), 0.675 -> 0.700 (second-dev).
    chain: bool = True
    # The sentence that follows a chosen one, or its pair, brings in the next one when that one
    # refers back too ("... losing the unnecessary extent. After much discussion this has been
    # determined to be a feature. To prevent this happening, add the option drop = FALSE ...").
    # Found on a dev miss, with four sentences: 0.875 -> 0.900 (R-intro + R-FAQ), 0.725 -> 0.725
    # (second-dev): no harm there.
    chain_forward: bool = True
    # A sentence that opens on a connective ("It modifies the list in-place (and returns None to
    # avoid confusion).", "Therefore, if you change your modules, you must restart ...") leans on the
    # one before it and is quoted with it: it is scored as read with it (the pair's cosine with the
    # question, for every such candidate, not only the best), and it brings that sentence in even
    # when that takes the quotes one sentence past `max_sentences`, so no quote opens on a dangling
    # "It". Evidence inside the quotes over each set's top 5 passages (R-intro + R-FAQ /
    # bench/eval/second-dev.jsonl / third-dev / fourth-dev): 37 / 33 / 20 / 30 -> 37 / 34 / 22 / 30,
    # median characters 550 / 514 / 582 / 421 -> 568 / 514 / 570 / 439. The scoring alone: 37 / 34 /
    # 21 / 29 (fourth's mod-01 chose "Therefore, ..." as the fourth sentence, with no room for the
    # answer before it); the room alone: unchanged on all four; the pair's cosine at 0.75 of the score
    # rather than all of it: 37 / 33 / 22 / 30. Found on a second-set miss (py-sort-01).
    leaning: bool = True
    # The quotes are ordered by their best sentence's score plus this share of how much they give
    # the kind of answer the question asks for (`retriever.answer_kind`: a name the question does not
    # hold for "how"/"which", a number for "how many", a reason for "why"), so the quote that answers
    # opens the answer rather than the one that restates the question ("use the 'utf-8-sig' codec"
    # over "the BOM ... will be silently dropped"). The opening quote names every key term
    # (bench/eval/keys; dev / second / third / fourth): 32 / 28 / 24 / 24 -> 33 / 29 / 24 / 26 at
    # 0.2 (0.1: 33 / 29 / 24 / 25; 0.3: 30 / 29 / 24 / 26; 0.5: 29 / 30 / 23 / 25). Scoring the
    # sentences so, rather than ordering the quotes, lost dev questions at every weight tried
    # (0.1-0.5: dev 32 -> 32-23, fourth 24 -> 22-26).
    answer_order_weight: float = 0.2
    # When no chosen sentence gives the kind of answer asked for (`answer_kind.gives` >= 0.7), the best
    # sentence that does is added, if it scores at least this share of the best sentence. The opening
    # quote names every key term (dev / second / third / fourth): 33 / 29 / 24 / 26 -> 33 / 30 / 24 /
    # 27 at 0.8 (0.6 and 0.7 the same; 0.9: unchanged).
    answer_slot: float = 0.8
