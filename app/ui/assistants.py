"""Assistants: gallery, builder form for every field, import/export, and a live preview chat."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import streamlit as st

from app.ui.builder import draft_of, show_problems
from app.ui.builder_common import field_label
from app.ui.common import plain, safe_markdown, services, stream_markdown
from app.ui.evidence import show_citations
from assistants import Assistant, AssistantError, dump_assistant, parse_assistant
from assistants.bundle import PRIVATE_NETWORK, export_bundle, import_bundle, remote_destinations
from runtime.errors import ArchivistError

svc = services()
st.title("Assistants")
entries, errors = svc.library.entries()
for err in errors:
    st.warning(plain(str(err)))

# ---- gallery ---------------------------------------------------------------------------
cols = st.columns(3)
for i, e in enumerate(entries):
    with cols[i % 3].container(border=True):
        title = plain(e.assistant.display_name or e.assistant.name)
        st.markdown(f"**{title}**  \n{safe_markdown(e.assistant.description) or '(no description)'}")
        st.caption(plain(f"{e.source} · {', '.join(e.assistant.knowledge.collections)}"))
        if st.button("Edit", key=f"edit-{e.assistant.name}"):
            st.session_state["editing"] = e.assistant.name

# ---- import ----------------------------------------------------------------------------
with st.expander("Import an assistant (YAML, or a bundle .zip with its documents)"):
    up = st.file_uploader("Assistant file", type=["yaml", "yml", "zip"], key="import-file")
    overwrite = st.checkbox("Replace an assistant of the same name", key="import-overwrite")
    # servers a refused import would send data to: each is allowed only by its own tick, by name
    asked: list[str] = st.session_state.get("import-asks", []) if up is not None else []
    allowed = [
        d
        for d in asked
        if st.checkbox(
            "Let this assistant's web reader reach private addresses of my network"
            if d == PRIVATE_NETWORK
            else f"Send my questions, the instructions and passages of my documents to {d}",
            key=f"import-allow-{d}",
        )
    ]
    for problem in st.session_state.get("import-problems", []) if up is not None else []:
        st.error(plain(problem))
    if asked:
        st.info("Tick what you allow above and press Import again.")
    if up is not None and st.button("Import", key="import-go"):
        st.session_state["import-problems"] = []
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(up.name).name
            path.write_bytes(up.getvalue())
            try:
                if path.suffix == ".zip":
                    with st.spinner("Ingesting the bundle's documents..."):
                        a, results = import_bundle(
                            path,
                            svc.store,
                            svc.embedder,
                            taken=svc.library.taken,
                            overwrite=overwrite,
                            allow_remote=allowed,
                        )
                    svc.library.save(a, overwrite=overwrite)
                    st.success(f"Imported {a.name} with {len(results)} documents")
                else:
                    a = svc.library.import_yaml(path, overwrite=overwrite, allow_remote=allowed)
                    st.success(f"Imported {a.name}")
                st.session_state["import-asks"] = []
            except AssistantError as exc:
                st.session_state["import-problems"] = exc.problems
                more = [d for d in remote_destinations(exc.problems) if d not in asked]
                st.session_state["import-asks"] = [*asked, *more]
                st.rerun()  # the problems and the ticks they ask for, shown above the button

# ---- builder ---------------------------------------------------------------------------
names = [e.assistant.name for e in entries]
NEW = "(new assistant)"
# A save, an Edit button, a duplicate or a delete asks for an assistant; the selector follows it
# (set before the widget exists: its own state would otherwise keep the old choice).
wanted = st.session_state.pop("editing", None)
if wanted is None and "builder-choice" not in st.session_state:
    wanted = st.session_state.get("builder-loaded")  # back from another page: the assistant being edited
if wanted is not None:
    st.session_state["builder-choice"] = wanted if wanted in names else NEW
st.subheader("Builder")
choice = st.selectbox("Edit an assistant, or start a new one", [NEW, *names], key="builder-choice")
NOT_KEPT = ("f-upload", "f-upload-go", "f-upload-note")  # the uploader and its button hold no edit
loading = st.session_state.get("builder-loaded") != choice
if loading:  # another assistant: its values, not the last one's
    for k in [k for k in st.session_state if str(k).startswith("f-")]:
        del st.session_state[k]
    st.session_state["builder-loaded"] = choice
    st.session_state["builder-problems"] = {}
    st.session_state.pop("builder-renaming", None)
base = next((e.assistant for e in entries if e.assistant.name == choice), None)
d: dict[str, Any] = (
    base.model_dump(mode="json")
    if base
    else {
        "name": "",
        "description": "",
        "instructions": "Answer from the passages and cite them like [1].",
        "model": {},
        "knowledge": {"collections": []},
        "retrieval": {},
        "starters": [],
    }
)
d.setdefault("model", {})
d.setdefault("retrieval", {})
collections = sorted(svc.store.collection_names())
problems: dict[str, list[str]] = st.session_state.get("builder-problems", {})


def problem_map(exc: AssistantError) -> dict[str, list[str]]:
    """'path: message' problems by field path, for the messages next to each field."""
    found: dict[str, list[str]] = {}
    for p in exc.problems:
        field_path, _, msg = p.partition(": ")
        found.setdefault(field_path, []).append(msg)
    return found


def check(draft: dict[str, Any]) -> Assistant | None:
    """The draft as an assistant, or None with its messages put next to their fields."""
    try:
        a = parse_assistant(draft, "form")
        if (base is None or base.name != a.name) and svc.library.taken(a.name):  # the rule save applies
            msg = f"name: an assistant named {a.name!r} already exists; pick another name, or edit that one"
            raise AssistantError(a.name, [msg])
        st.session_state["builder-problems"] = {}
        return a
    except AssistantError as exc:
        st.session_state["builder-problems"] = problem_map(exc)
        return None


# Unsaved edits survive leaving the page (Streamlit forgets a page's fields when another page is shown):
# the draft is kept aside while it differs from what was loaded, and offered back when the same
# assistant's fields are drawn anew. Nothing is written until Save.


def field_values() -> dict[str, Any]:
    """What the fields hold now, by widget key (the uploader and its button hold no edit)."""
    return {str(k): v for k, v in st.session_state.items() if str(k).startswith("f-") and k not in NOT_KEPT}


stash: dict[str, Any] | None = st.session_state.get("builder-unsaved")
restoring = st.session_state.pop("builder-restore", False) and stash is not None and stash["choice"] == choice
fresh = "f-name" not in st.session_state  # the fields drawn anew: another choice, or back from another page
# Values put into the fields through the Session State API, before the fields exist, so the browser
# shows them too: a field the browser already drew keeps what it shows when its value only changes on
# this side (the old assistant's text stayed on screen, and was saved, after choosing another one).
put: dict[str, Any] = st.session_state.pop("builder-put", {})
if restoring:
    assert stash is not None
    put = stash["values"]
for k, v in put.items():
    st.session_state[k] = v

if fresh and not restoring and stash is not None and stash["choice"] == choice:
    st.session_state["builder-offer"] = choice  # asked until answered, or until the fields are edited anew
offered = st.session_state.get("builder-offer") == choice and not restoring

form, preview = st.columns([3, 2], gap="large")
with form:
    if offered:
        with st.container(border=True, key="builder-offer-box"):
            st.info(
                plain(f"You have unsaved changes to {choice} from before. Restore them?"), icon=":material/history:"
            )
            o1, o2 = st.columns(2)
            if o1.button("Restore my changes", key="b-restore", type="primary"):
                st.session_state.pop("builder-offer", None)
                st.session_state["builder-restore"] = True
                st.rerun()
            if o2.button("Discard them", key="b-discard"):
                st.session_state.pop("builder-offer", None)
                st.session_state.pop("builder-unsaved", None)
                st.rerun()
    draft = draft_of(d, collections, problems, svc)
    if loading:  # the chosen assistant's values, once more through the Session State API (see above)
        st.session_state["builder-initial"] = draft
        st.session_state["builder-put"] = field_values()
        st.rerun()
    if fresh and not restoring:
        st.session_state["builder-initial"] = draft  # what was loaded
    elif draft != st.session_state.get("builder-initial"):
        st.session_state["builder-unsaved"] = {"choice": choice, "draft": draft, "values": field_values()}
        st.session_state.pop("builder-offer", None)  # new edits: they are what is kept now
    elif stash is not None and stash["choice"] == choice and not offered:
        st.session_state.pop("builder-unsaved", None)  # edited back to what was loaded
    if st.session_state.get("builder-checked"):  # after a Save or Preview, messages follow each edit
        check(draft)
    show_problems(st.session_state.get("builder-problems", {}))
    saved = st.button("Save assistant", type="primary", key="b-save", icon=":material/save:")
    if (just_saved := st.session_state.pop("builder-saved", None)) is not None:
        st.success(plain(f"Saved {just_saved}"), icon=":material/check:")


def write(ready: Assistant, how: str) -> None:
    """Save the draft: over the assistant being edited ("same"), as a new one ("new", "copy"), or in
    place of the one being edited under its new name ("rename")."""
    try:
        if how == "rename" and base is not None:
            svc.rename_assistant(base.name, ready)
        else:
            svc.library.save(ready, overwrite=how == "same")
        st.session_state.pop("builder-unsaved", None)
        st.session_state["builder-loaded"] = None  # the fields drawn anew from what was saved
        st.session_state["editing"] = ready.name
        st.session_state["builder-saved"] = (
            f"{base.name} renamed to {ready.name}" if how == "rename" and base else ready.name
        )  # said after the rerun that shows it
    except AssistantError as exc:
        st.session_state["builder-problems"] = problem_map(exc)
    st.rerun()


if saved:
    st.session_state["builder-checked"] = True
    ready = check(draft)
    if ready is not None and base is not None and base.name != ready.name:
        st.session_state["builder-renaming"] = ready.name  # asked below: rename, or a copy
    elif ready is not None:
        write(ready, "new" if base is None else "same")
    st.rerun()

if base is not None and (new_name := st.session_state.get("builder-renaming")):
    ready = check(draft)
    if ready is None or ready.name != new_name:
        st.session_state.pop("builder-renaming", None)  # the name was changed again: ask again at Save
    else:
        with form, st.container(border=True, key="builder-rename-ask"):
            shipped = not svc.library.taken(base.name)
            st.warning(
                plain(f"You changed the name from {base.name} to {new_name}. ")
                + (
                    "Rename it (its conversations follow), or save a copy and keep both?"
                    if not shipped
                    else "It is a shipped assistant, so it is saved as a copy and the original stays."
                )
            )
            r1, r2, r3 = st.columns(3)
            if not shipped and r1.button(f"Rename to {new_name}", key="b-rename", type="primary"):
                st.session_state.pop("builder-renaming", None)
                write(ready, "rename")
            if r2.button(f"Save a copy as {new_name}", key="b-copy"):
                st.session_state.pop("builder-renaming", None)
                write(ready, "copy")
            if r3.button("Cancel", key="b-rename-cancel"):
                st.session_state.pop("builder-renaming", None)
                st.rerun()

# ---- preview: beside the fields, answering with what is on screen, saved or not ----------
with preview, st.container(border=True):
    st.markdown("**Preview**")
    st.caption("Answers as the assistant stands on the left, saved or not.")
    question = st.text_input("Ask the assistant", key="preview-q", placeholder="Type a question, then Preview")
    if st.button("Preview answer", key="b-preview", icon=":material/play_arrow:"):
        st.session_state["builder-checked"] = True
        shown = check(draft)
        if shown is None:
            marked = st.session_state.get("builder-problems", {})
            st.error(plain("Fix the fields marked on the left first: " + ", ".join(field_label(p) for p in marked)))
        elif not question.strip():
            st.info("Type a question above, then press Preview answer.")
        else:
            try:
                stream = svc.chat.ask(shown, question)
                stream_markdown(stream)
                show_citations([c.to_json() for c in stream.result().citations], key="preview")
            except AssistantError as exc:
                st.error("\n".join(f"- {plain(p)}" for p in exc.problems))
            except ArchivistError as exc:
                st.error(str(exc))
    elif base is not None and base.starters:
        st.caption(plain("Try: " + " · ".join(base.starters[:3])))

if base is not None:
    st.divider()
    c5, c6, c7 = st.columns(3)
    c5.download_button("Export YAML", dump_assistant(base), file_name=f"{base.name}.yaml", key="export-yaml")
    if c6.button("Export bundle", key="export-bundle"):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / f"{base.name}.zip"
            export_bundle(base, svc.store, out)
            st.session_state["bundle"] = (out.name, out.read_bytes())
    if "bundle" in st.session_state:
        c6.download_button("Download bundle", st.session_state["bundle"][1], file_name=st.session_state["bundle"][0])
    new_name = c7.text_input("Duplicate as", f"{base.name}-copy", key="dup-name")
    if c7.button("Duplicate", key="dup-go"):
        try:
            svc.library.duplicate(base.name, new_name)
            st.session_state["editing"] = new_name
            st.rerun()
        except AssistantError as exc:
            c7.error("\n".join(f"- {plain(p)}" for p in exc.problems))
    confirm = st.checkbox(f"Yes, delete {base.name}", key="delete-confirm")
    if st.button("Delete assistant", disabled=not confirm, key="delete-go"):
        try:
            svc.library.delete(base.name)
            st.session_state["editing"] = NEW
            st.rerun()
        except AssistantError as exc:
            st.error("\n".join(f"- {plain(p)}" for p in exc.problems))
