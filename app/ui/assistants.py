"""Assistants: gallery, builder form for every field, import/export, and a live preview chat."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import streamlit as st

from app.ui.common import plain, safe_markdown, services, show_citations, stream_markdown
from assistants import Assistant, AssistantError, dump_assistant, parse_assistant
from assistants.bundle import export_bundle, import_bundle
from runtime.errors import ArchivistError
from runtime.spec import BUNDLED

svc = services()
st.title("Assistants")
entries, errors = svc.library.entries()
for err in errors:
    st.warning(plain(str(err)))

# ---- gallery ---------------------------------------------------------------------------
cols = st.columns(3)
for i, e in enumerate(entries):
    with cols[i % 3].container(border=True):
        st.markdown(f"**{e.assistant.name}**  \n{safe_markdown(e.assistant.description) or '(no description)'}")
        st.caption(plain(f"{e.source} · {', '.join(e.assistant.knowledge.collections)}"))
        if st.button("Edit", key=f"edit-{e.assistant.name}"):
            st.session_state["editing"] = e.assistant.name

# ---- import ----------------------------------------------------------------------------
with st.expander("Import an assistant (YAML, or a bundle .zip with its documents)"):
    up = st.file_uploader("Assistant file", type=["yaml", "yml", "zip"], key="import-file")
    overwrite = st.checkbox("Replace an assistant of the same name", key="import-overwrite")
    if up is not None and st.button("Import", key="import-go"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(up.name).name
            path.write_bytes(up.getvalue())
            try:
                if path.suffix == ".zip":
                    with st.spinner("Ingesting the bundle's documents..."):
                        a, results = import_bundle(
                            path, svc.store, svc.embedder, taken=svc.library.taken, overwrite=overwrite
                        )
                    svc.library.save(a, overwrite=overwrite)
                    st.success(f"Imported {a.name} with {len(results)} documents")
                else:
                    a = svc.library.import_yaml(path, overwrite=overwrite)
                    st.success(f"Imported {a.name}")
            except AssistantError as exc:
                st.error("\n".join(f"- {plain(p)}" for p in exc.problems))

# ---- builder ---------------------------------------------------------------------------
names = [e.assistant.name for e in entries]
NEW = "(new assistant)"
# A save, an Edit button, a duplicate or a delete asks for an assistant; the selector follows it
# (set before the widget exists: its own state would otherwise keep the old choice).
wanted = st.session_state.pop("editing", None)
if wanted is not None:
    st.session_state["builder-choice"] = wanted if wanted in names else NEW
choice = st.selectbox("Edit an assistant, or start a new one", [NEW, *names], key="builder-choice")
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
defaults = Assistant(name="defaults", knowledge={"collections": ["-"]})  # type: ignore[arg-type]  # the schema's choices
collections = sorted(svc.store.collection_names())
models = [f"bundled:{n}" for n in BUNDLED] + sorted(str(p) for p in (svc.home / "models").rglob("*.gguf"))
if d["model"].get("path") and d["model"]["path"] not in models:
    models.append(d["model"]["path"])
problems: dict[str, list[str]] = st.session_state.get("builder-problems", {})


def pick(col: Any, label: str, choices: dict[str, str], current: str, key: str) -> str:
    """A selectbox over a setting's choices, each shown in words."""
    options = list(choices)
    return str(col.selectbox(label, options, index=options.index(current), format_func=choices.__getitem__, key=key))


@st.cache_data(show_spinner=False)
def tool_support_of(spec: str) -> tuple[bool, str]:
    """Read from the GGUF's metadata (its chat template), not by loading the model."""
    from runtime.toolcalls import model_tool_support

    return model_tool_support(spec)


def tools_draft(now: dict[str, Any], on: list[str], calls: str, allow_text: str) -> dict[str, Any]:
    """The form's tools: the settings each enabled tool had, the web reader's allowed addresses."""
    out: dict[str, Any] = {t: dict(now.get(t) or {}) for t in on}
    if "web" in out:
        raw = allow_text.strip()
        out["web"]["allow_private"] = (
            True if raw.lower() in ("all", "true", "*") else [a.strip() for a in raw.split(",") if a.strip()] or False
        )
    out["calls"] = calls
    return out


def problem_map(exc: AssistantError) -> dict[str, list[str]]:
    """'path: message' problems by field path, for the messages next to each field."""
    found: dict[str, list[str]] = {}
    for p in exc.problems:
        field_path, _, msg = p.partition(": ")
        found.setdefault(field_path, []).append(msg)
    return found


def field_errors(prefix: str) -> None:
    for path, msgs in problems.items():
        if path == prefix or path.startswith(prefix + "."):
            for m in msgs:
                st.error(plain(f"{path}: {m}"), icon=":material/error:")


with st.form("builder"):
    name = st.text_input("Name", d["name"], help="letters, digits, '-', '_' and '.'", key="f-name")
    field_errors("name")
    description = st.text_input("Description", d.get("description", ""), key="f-description")
    instructions = st.text_area("Instructions", d.get("instructions", ""), height=220, key="f-instructions")
    field_errors("instructions")
    c1, c2 = st.columns(2)
    model_path = c1.selectbox("Model", models, index=models.index(d["model"].get("path", models[0])), key="f-model")
    context = c2.number_input("Context window", 512, 262144, d["model"].get("context_window", 4096), key="f-ctx")
    temperature = c1.slider("Temperature", 0.0, 2.0, float(d["model"].get("temperature", 0.2)), key="f-temp")
    top_p = c2.slider("Top p", 0.05, 1.0, float(d["model"].get("top_p", 0.95)), key="f-topp")
    max_tokens = c1.number_input("Max answer tokens", 1, 32768, d["model"].get("max_tokens", 512), key="f-max")
    gpu_layers = c2.number_input("GPU layers (-1 = all)", -1, 1000, d["model"].get("gpu_layers", 0), key="f-gpu")
    threads = c1.number_input(
        "CPU threads (0 = physical cores)", 0, 512, d["model"].get("threads") or 0, key="f-threads"
    )
    field_errors("model")
    knowledge = st.multiselect(
        "Knowledge collections",
        sorted(set(collections) | set(d["knowledge"]["collections"])),
        d["knowledge"]["collections"],
        key="f-collections",
    )
    field_errors("knowledge")
    c3, c4 = st.columns(2)
    modes = ["hybrid", "dense", "keyword"]
    mode = c3.selectbox("Search mode", modes, index=modes.index(d["retrieval"].get("mode", "hybrid")), key="f-mode")
    top_k = c4.number_input("Passages per question", 1, 50, d["retrieval"].get("top_k", 5), key="f-topk")
    floor = c3.number_input(
        "Relevance floor (0 = off)", 0.0, 1.0, float(d["retrieval"].get("min_score") or 0.0), key="f-floor"
    )
    styles = ["numbered", "document-page", "none"]
    style = c4.selectbox(
        "Citation style", styles, index=styles.index(d.get("citation_style", "numbered")), key="f-style"
    )
    reranker = st.text_input(
        "Reranker: cross-encoder path or hub id (optional)", d["retrieval"].get("reranker") or "", key="f-reranker"
    )
    field_errors("retrieval")
    c5, c6 = st.columns(2)
    answer_modes = ["generate", "extractive"]
    answer_mode = c5.selectbox(
        "Answers",
        answer_modes,
        index=answer_modes.index(d.get("answer_mode", "generate")),
        format_func=lambda m: {"generate": "written by the model", "extractive": "the documents' own sentences"}[m],
        key="f-answer-mode",
    )
    checks = ["mark", "retry", "off"]
    grounding = c6.selectbox(
        "Grounding check",
        checks,
        index=checks.index(d.get("grounding", "mark")),
        format_func=lambda m: {
            "mark": "mark unsupported sentences",
            "retry": "retry, then quote the documents",
            "off": "off",
        }[m],
        key="f-grounding",
    )
    c7, c8 = st.columns(2)
    context_mode = pick(
        c7,
        "What the model reads",
        {
            "passages": "the passages",
            "quotes-first": "the supporting quotes, then the passages",
            "quotes-only": "the supporting quotes only",
        },
        d.get("context", defaults.context),
        "f-context",
    )
    decoding = pick(
        c8,
        "Decoding",
        {"faithful": "faithful: numbers, code and names only as the documents write them", "free": "free"},
        d.get("decoding", defaults.decoding),
        "f-decoding",
    )
    thinking = pick(
        c7,
        "Think longer",
        {"off": "one answer", "best_of_n": "write several answers, show the best"},
        d.get("thinking", defaults.thinking),
        "f-thinking",
    )
    candidates = c8.number_input("Answers written at most", 2, 8, int(d.get("candidates", 3)), key="f-candidates")
    fallback = pick(
        c7,
        "When the answer lacks support",
        {
            "trim": "leave out unsupported sentences; quote the documents if most are",
            "quotes": "quote the documents if most sentences are unsupported",
            "off": "show it, marked",
        },
        d.get("fallback", defaults.fallback),
        "f-fallback",
    )
    unknown = pick(
        c8,
        "Questions about what no document mentions",
        {"refuse": "refuse, saying why", "answer": "answer anyway"},
        d["retrieval"].get("unknown_terms", defaults.retrieval.unknown_terms),
        "f-unknown",
    )
    tools_now: dict[str, Any] = d.get("tools") or {}
    tool_labels = {
        "calculator": "Calculator: computes arithmetic in the question",
        "code": "Code runner: a Run button under code blocks (sandboxed)",
        "web": "Web reader: reads a URL written in the question",
    }
    tools_on = st.multiselect(
        "Tools",
        list(tool_labels),
        [t for t in tool_labels if tools_now.get(t) is not None],
        format_func=tool_labels.__getitem__,
        help="Tool results are shown as cards and given to the model as marked data, like passages.",
        key="f-tools",
    )
    c9, c10 = st.columns(2)
    calls = pick(
        c9,
        "Model-driven tool calls",
        {
            "auto": "when the model's template supports tools",
            "forced": "forced: one call per answer, by grammar",
            "off": "off",
        },
        tools_now.get("calls", "auto"),
        "f-calls",
    )
    allowed = (tools_now.get("web") or {}).get("allow_private", False)
    allow_text = c10.text_input(
        "Web reader may also read (private addresses)",
        "all" if allowed is True else ", ".join(allowed or []),
        help="Empty: public addresses only. 'all', or addresses and networks such as 10.0.0.5, 192.168.0.0/16.",
        key="f-allow-private",
    )
    native, why = tool_support_of(model_path)
    st.caption(
        "This model's chat template supports tools: with 'auto' it may call the tools and search the documents "
        "itself, up to 3 rounds."
        if native
        else f"Model-driven calls are off for this model with 'auto': {why}. 'forced' still works (a grammar makes "
        "the call), and the tools above work with any model."
    )
    field_errors("tools")
    starters = st.text_area("Conversation starters (one per line)", "\n".join(d.get("starters", [])), key="f-starters")
    field_errors("starters")
    refusal = st.text_input(
        "Refusal when the documents don't answer",
        d.get("refusal", "The documents I have don't answer that."),
        key="f-refusal",
    )
    preview_q = st.text_input(
        "Preview question",
        key="preview-q",
        help="Preview answers as the assistant stands in this form, saved or not.",
    )
    b1, b2 = st.columns(2)
    saved = b1.form_submit_button("Save assistant", type="primary")
    previewed = b2.form_submit_button("Preview answer")

draft = {
    "name": name.strip(),
    "description": description,
    "instructions": instructions,
    "model": {
        "path": model_path,
        "context_window": int(context),
        "temperature": float(temperature),
        "top_p": float(top_p),
        "max_tokens": int(max_tokens),
        "gpu_layers": int(gpu_layers),
        "threads": int(threads) or None,
    },
    "knowledge": {"collections": knowledge},
    "retrieval": {
        "mode": mode,
        "top_k": int(top_k),
        "min_score": float(floor) or None,
        "reranker": reranker.strip() or None,
        "unknown_terms": unknown,
        "min_coverage": float(d["retrieval"].get("min_coverage", 0.5)),
    },
    "starters": [s.strip() for s in starters.splitlines() if s.strip()],
    "tools": tools_draft(tools_now, tools_on, calls, allow_text),
    "citation_style": style,
    "answer_mode": answer_mode,
    "grounding": grounding,
    "context": context_mode,
    "decoding": decoding,
    "thinking": thinking,
    "candidates": int(candidates),
    "fallback": fallback,
    "refusal": refusal,
}
if saved:
    try:
        a = parse_assistant(draft, "form")
        svc.library.save(a, overwrite=base is not None and base.name == a.name)
        st.session_state["builder-problems"] = {}
        st.session_state["editing"] = a.name
        st.success(f"Saved {a.name}")
        st.rerun()
    except AssistantError as exc:
        st.session_state["builder-problems"] = problem_map(exc)
        st.rerun()

if base is not None:
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

# ---- preview: the form as it stands on screen (the buttons above submit it) ----------------
if previewed:  # the field messages are those of the form now; fixed fields lose theirs
    try:
        parse_assistant(draft, "form")
        st.session_state["builder-problems"] = {}
    except AssistantError as exc:
        st.session_state["builder-problems"] = problem_map(exc)
    st.session_state["preview-request"] = (draft, preview_q)
    st.rerun()
request = st.session_state.pop("preview-request", None)
if request is not None:
    shown, question = request
    st.subheader("Preview")
    if not question.strip():
        st.info("Type a preview question in the form, then press Preview answer.")
    else:
        try:
            stream = svc.chat.ask(parse_assistant(shown, "form"), question)
            stream_markdown(stream)
            show_citations([c.to_json() for c in stream.result().citations], key="preview")
        except AssistantError as exc:
            st.error("\n".join(f"- {plain(p)}" for p in exc.problems))
        except ArchivistError as exc:
            st.error(str(exc))
