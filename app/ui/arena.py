"""Arena: two assistants answer the same question side by side, names hidden until the vote;
the leaderboard rates every configuration by Bradley-Terry with 95% intervals."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import streamlit as st

from app.ui.common import quotes_open, safe_markdown, services, show_answer
from app.ui.evidence import show_citations, show_quotes
from assistants.arena import VOTE_LABELS, Side, config_hash, leaderboard
from assistants.ratings import MIN_VOTES, PROVISIONAL
from retriever.evaluate import Question, load_questions
from runtime.errors import ArchivistError

svc = services()
st.title("Arena")
st.caption(
    "Compare your own assistants blind: two of the ones you pick answer the same question, both answers appear "
    "together in random order, and the names show only after your vote. Every vote is kept against the "
    "assistant's exact configuration, so an edited assistant starts a new row."
)

entries, _ = svc.library.entries()
by_name = {e.assistant.name: e.assistant for e in entries}
battle_tab, board_tab = st.tabs(["Battle", "Leaderboard"])

with battle_tab:
    picked = st.multiselect(
        "Assistants (two or more; each battle takes two at random)",
        ["all", *by_name],
        key="arena_pick",
        placeholder="Choose assistants",
    )
    names = list(by_name) if "all" in picked else [n for n in picked if n in by_name]
    starters = sorted({s for n in names for s in by_name[n].starters})
    evalset = st.file_uploader("Questions from an eval set (JSONL, as `archivist eval` reads)", type=["jsonl"])
    asked: dict[str, Question] = {}
    if evalset is not None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "questions.jsonl"
            path.write_bytes(evalset.getvalue())
            try:
                asked = {q.question: q for q in load_questions(path)}
            except ArchivistError as exc:
                st.error(str(exc).replace(str(path), evalset.name))  # names the uploaded file and the line
    with st.form("arena_question"):
        choices = [*starters, *asked]
        taken = st.selectbox("Take a starter or eval question", ["", *choices]) if choices else ""
        own = st.text_input("Or ask your own question", key="arena_own")
        go = st.form_submit_button("Battle", type="primary", disabled=len(names) < 2)
    if len(names) < 2:
        st.info("Pick two or more assistants (or all) to start a battle.")
    question = (own or taken or "").strip()
    if go:
        if not question:
            st.error("Type a question or take a starter or eval question.")
        else:
            picked_q = asked.get(question)
            with st.spinner("Both assistants are answering; their answers appear together when both are done..."):
                try:
                    battle = svc.arena.battle(
                        [by_name[n] for n in names],
                        question,
                        question_id=picked_q.id if picked_q else None,
                        evidence=picked_q.evidence if picked_q else (),
                    )
                    st.session_state["arena_battle"] = battle.id
                except ArchivistError as exc:
                    st.error(str(exc))

    battle_id = st.session_state.get("arena_battle")
    if battle_id is not None:
        battle = svc.arena_store.get(int(battle_id))
        st.markdown(f"**Question:** {safe_markdown(battle.question)}")
        revealed = battle.vote is not None
        columns = st.columns(2, gap="large")
        sides: tuple[tuple[str, Side], ...] = (("A", battle.a), ("B", battle.b))
        for col, (label, side) in zip(columns, sides, strict=True):
            with col, st.container(border=True):
                st.subheader(f"Assistant {label}" + (f": {side.name}" if revealed else ""))
                show_answer(side.text, side.details)
                quotes = side.details.get("quotes", [])
                k = f"arena-{battle.id}-{label}"
                show_quotes(quotes, key=k, expanded=quotes_open(side.details), citations=side.citations)
                show_citations(side.citations, key=k, quotes=quotes)
        if not revealed:
            st.markdown("**Which answer is better?**")
            buttons = st.columns(4)
            icons = {
                "a": ":material/arrow_back:",
                "b": ":material/arrow_forward:",
                "tie": ":material/balance:",
                "bad": ":material/thumb_down:",
            }
            for col, (vote, label) in zip(buttons, VOTE_LABELS.items(), strict=True):
                if col.button(label, key=f"vote-{vote}", icon=icons[vote], width="stretch"):
                    svc.arena.vote(battle.id, vote)
                    st.rerun()
        else:
            st.success(
                f"You voted: {VOTE_LABELS[battle.vote or 'tie']}. A was **{battle.a.name}**, B was **{battle.b.name}**."
            )
            if st.button("Next battle", type="primary"):
                del st.session_state["arena_battle"]
                st.rerun()

with board_tab:
    mode = st.radio(
        "Votes",
        ["human", "auto"],
        horizontal=True,
        format_func=lambda m: {"human": "Your votes", "auto": "Automatic arena"}[m],
    )
    current = {n: config_hash(a) for n, a in by_name.items()}
    battles = svc.arena_store.battles(mode)
    rows = leaderboard(battles, current)
    if not rows:
        st.info(
            "No votes yet: start a battle."
            if mode == "human"
            else "No automatic battles yet: `archivist arena A B --auto --questions QA.jsonl` runs them."
        )
    else:
        st.caption(
            f"Bradley-Terry ratings on the Elo scale with 95% bootstrap intervals; rank 1 + the number of "
            f"assistants whose interval lies wholly above. A rating shows after {MIN_VOTES} votes and is "
            f"provisional while its interval is wider than \u00b1{PROVISIONAL:.0f}. Evidence and supported: "
            "measured on the answers themselves."
        )
        st.table(
            [
                {
                    "rank": r.rank,
                    "assistant": r.name,
                    "configuration": r.hash[:7] + ("" if r.current else " (edited or deleted)"),
                    "rating": f"{r.rating:.0f}" if r.shown else "\u2014",
                    "95% interval": f"{r.lower:.0f} to {r.upper:.0f}" if r.shown else f"after {MIN_VOTES} votes",
                    "provisional": "yes" if r.provisional or not r.shown else "no",
                    "votes": r.votes,
                    "win rate": f"{r.win_rate:.2f}",
                    "evidence held": "\u2014" if r.evidence_recall is None else f"{r.evidence_recall:.2f}",
                    "sentences supported": "\u2014" if r.supported is None else f"{r.supported:.2f}",
                }
                for r in rows
            ],
        )
    export = "\n".join(json.dumps(b.to_json(), ensure_ascii=False) for b in battles)  # the battles rated above
    st.download_button("Export battles (JSONL)", export or "", file_name=f"arena-{mode}.jsonl", disabled=not battles)
