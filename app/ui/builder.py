"""The builder's fields, grouped as a newcomer reads them: the essentials first (name, description,
instructions, knowledge with an inline uploader, starters), then the model, then how answers are
found and checked, then tools. Every field has help; a field's messages sit under it. The fields are
live (no form): the preview beside them always answers with what is on screen."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.ui.common import plain
from assistants import Assistant
from runtime.catalog import installed

OTHER = "Another model (type its name below)"


def pick(col: Any, label: str, choices: dict[str, str], current: str, key: str, help: str) -> str:
    """A selectbox over a setting's choices, each shown in words."""
    options = list(choices)
    index = options.index(current) if current in options else 0
    return str(col.selectbox(label, options, index=index, format_func=choices.__getitem__, key=key, help=help))


_SLOTS: list[tuple[str, Any]] = []  # (field path, its message slot) of the run being drawn


def field_errors(prefix: str) -> None:
    """A place under a field for its messages, filled by `show_problems` once the whole draft is
    checked, so a fixed field loses its message in the same run."""
    _SLOTS.append((prefix, st.empty()))


def show_problems(problems: dict[str, list[str]]) -> None:
    """Each field's messages, in plain words, in its slot."""
    for prefix, slot in _SLOTS:
        lines = [
            f"{path}: {m}"
            for path, msgs in problems.items()
            if path == prefix or path.startswith(prefix + ".")
            for m in msgs
        ]
        if lines:
            slot.error(plain("; ".join(lines)), icon=":material/error:")
        else:
            slot.empty()


@st.cache_data(show_spinner=False)
def tool_support_of(spec: str, models_dir: str) -> tuple[bool, str]:
    """Read from the GGUF's metadata (its chat template), not by loading the model."""
    from pathlib import Path

    from runtime.toolcalls import model_tool_support

    return model_tool_support(spec, Path(models_dir))


def essentials(d: dict[str, Any], collections: list[str], svc: Any) -> dict[str, Any]:
    """Name, description, instructions, knowledge (with an uploader), starters, refusal."""
    out: dict[str, Any] = {}
    out["name"] = st.text_input(
        "Name",
        d["name"],
        key="f-name",
        help="How the assistant is called in the app, the API (model name) and the command line: letters, digits, "
        "'-', '_' and '.'.",
    ).strip()
    field_errors("name")
    out["display_name"] = st.text_input(
        "Display name",
        d.get("display_name", ""),
        key="f-display-name",
        placeholder="Lighthouse Guide",
        help="The name people see in the app's chat and gallery; spaces allowed. Empty: the name above.",
    ).strip()
    field_errors("display_name")
    out["description"] = st.text_input(
        "Description", d.get("description", ""), key="f-description", help="One line, shown in the gallery and chat."
    )
    field_errors("description")
    out["instructions"] = st.text_area(
        "Instructions",
        d.get("instructions", ""),
        height=160,
        key="f-instructions",
        help="What the assistant should do and how: its tone, what to answer and what not. It always answers "
        "from the knowledge below and cites it.",
    )
    field_errors("instructions")
    chosen = st.multiselect(
        "Knowledge",
        sorted(set(collections) | set(d["knowledge"]["collections"])),
        d["knowledge"]["collections"],
        key="f-collections",
        help="The document collections it answers from. Add documents below or on the Knowledge page.",
    )
    field_errors("knowledge")
    out["knowledge"] = {**d["knowledge"], "collections": chosen}
    add_documents(chosen, out["name"], svc)
    out["starters"] = [
        s.strip()
        for s in st.text_area(
            "Conversation starters",
            "\n".join(d.get("starters", [])),
            key="f-starters",
            help="Questions offered as buttons in a new chat, one per line (8 at most).",
        ).splitlines()
        if s.strip()
    ]
    field_errors("starters")
    out["refusal"] = st.text_input(
        "Reply when the documents don't answer",
        d.get("refusal", "The documents I have don't answer that."),
        key="f-refusal",
        help="Said instead of an answer when nothing relevant is found, rather than a guess.",
    )
    field_errors("refusal")
    return out


def add_documents(chosen: list[str], name: str, svc: Any) -> None:
    """Upload documents into the assistant's first collection (or a new one named after it)."""
    target = chosen[0] if chosen else (name or "")
    with st.expander("Add documents", icon=":material/upload_file:"):
        if not target:
            st.caption("Name the assistant or pick a collection first.")
            return
        files = st.file_uploader(
            f"Documents for {plain(target)}",
            accept_multiple_files=True,
            key="f-upload",
            help="PDF, DOCX, HTML, Markdown, CSV, JSON or text. They are ingested in the background.",
        )
        if files and st.button(f"Add {len(files)} file(s) to {plain(target)}", key="f-upload-go"):
            try:
                svc.ingest_jobs.submit(target, [(f.name, f.getvalue()) for f in files])
                if target not in chosen:
                    st.session_state["f-collections"] = [*chosen, target]
                st.session_state["f-upload-note"] = target
                st.rerun()
            except Exception as exc:  # a bad collection name: said here, nothing queued
                st.error(str(exc))
        if st.session_state.get("f-upload-note") == target:
            running = svc.ingest_jobs.running(target)
            st.caption(
                "Ingesting in the background; progress is on the Knowledge page."
                if running
                else f"Documents added to {plain(target)}."
            )


def model_fields(d: dict[str, Any], svc: Any) -> dict[str, Any]:
    """The model and how it writes."""
    m = d["model"]
    have = [x.spec for x in installed(svc.home / "models")]
    current = m.get("path") or have[0]
    options = [*have, *([current] if current not in have else []), OTHER]
    spec = st.selectbox(
        "Model",
        options,
        index=options.index(current),
        key="f-model",
        help="The models on this computer (the Models page adds and downloads more).",
    )
    typed = st.text_input(
        "Model name or file",
        "" if spec != OTHER else current,
        key="f-model-typed",
        disabled=spec != OTHER,
        placeholder="/path/to/model.gguf or hf:org/repo/file.gguf",
        help="With 'Another model': a GGUF file's path, bundled:NAME, or hf:org/repo/file.gguf.",
    )
    path = typed.strip() if spec == OTHER else spec
    c1, c2 = st.columns(2)
    out = {
        **m,
        "path": path,
        "context_window": int(
            c2.number_input(
                "Context window (tokens)",
                512,
                262144,
                m.get("context_window", 4096),
                key="f-ctx",
                help="How much text the model reads at once: instructions, passages and the conversation.",
            )
        ),
        "temperature": float(
            c1.slider(
                "Temperature",
                0.0,
                2.0,
                float(m.get("temperature", 0.2)),
                key="f-temp",
                help="0 picks the likeliest words every time; higher writes more freely.",
            )
        ),
        "top_p": float(
            c2.slider(
                "Top p",
                0.05,
                1.0,
                float(m.get("top_p", 0.95)),
                key="f-topp",
                help="Only the likeliest words making up this share are considered.",
            )
        ),
        "max_tokens": int(
            c1.number_input(
                "Longest answer (tokens)",
                1,
                32768,
                m.get("max_tokens", 512),
                key="f-max",
                help="About 3/4 of a word each.",
            )
        ),
        "gpu_layers": int(
            c2.number_input(
                "GPU layers (-1 = all)",
                -1,
                1000,
                m.get("gpu_layers", 0),
                key="f-gpu",
                help="Layers run on the GPU; 0 = CPU only. Needs llama.cpp built for your GPU.",
            )
        ),
        "threads": int(
            c1.number_input(
                "CPU threads (0 = physical cores)",
                0,
                512,
                m.get("threads") or 0,
                key="f-threads",
                help="0 uses one thread per physical core, usually the fastest.",
            )
        )
        or None,
    }
    field_errors("model")
    return out


def answer_fields(d: dict[str, Any], defaults: Assistant) -> dict[str, Any]:
    """How passages are found and how answers are written and checked."""
    r = d["retrieval"]
    c1, c2 = st.columns(2)
    retrieval = {
        **r,
        "mode": pick(
            c1,
            "Search",
            {"hybrid": "meaning and words (hybrid)", "dense": "meaning only", "keyword": "words only"},
            r.get("mode", "hybrid"),
            "f-mode",
            "How passages are found for a question; hybrid is best for most documents.",
        ),
        "top_k": int(
            c2.number_input(
                "Passages per question",
                1,
                50,
                r.get("top_k", 5),
                key="f-topk",
                help="More gives the model more to read, and takes longer.",
            )
        ),
        "min_score": float(
            c1.number_input(
                "Relevance floor (0 = off)",
                0.0,
                1.0,
                float(r.get("min_score") or 0.0),
                key="f-floor",
                help="Passages below this similarity are not used.",
            )
        )
        or None,
        "reranker": st.text_input(
            "Reranker (optional)",
            r.get("reranker") or "",
            key="f-reranker",
            help="A cross-encoder model (a folder or hub id) that reorders the passages found.",
        ).strip()
        or None,
        "unknown_terms": pick(
            c2,
            "Questions about what no document mentions",
            {"refuse": "refuse, saying why", "answer": "answer anyway"},
            r.get("unknown_terms", defaults.retrieval.unknown_terms),
            "f-unknown",
            "A question naming something no document mentions gets the refusal instead of a guess.",
        ),
    }
    field_errors("retrieval")
    c3, c4 = st.columns(2)
    out: dict[str, Any] = {"retrieval": retrieval}
    out["citation_style"] = pick(
        c3,
        "Citations",
        {"numbered": "numbered [1]", "document-page": "(document, p. 12)", "none": "none inline"},
        d.get("citation_style", "numbered"),
        "f-style",
        "How the answer points to its passages; the passages are listed under it either way.",
    )
    out["answer_mode"] = pick(
        c4,
        "Answers",
        {"generate": "written by the model", "extractive": "the documents' own sentences"},
        d.get("answer_mode", "generate"),
        "f-answer-mode",
        "The documents' own sentences are instant and exact, with no model.",
    )
    out["grounding"] = pick(
        c3,
        "Grounding check",
        {"mark": "mark unsupported sentences", "retry": "retry, then quote the documents", "off": "off"},
        d.get("grounding", "mark"),
        "f-grounding",
        "Each sentence of an answer is checked against the passages.",
    )
    out["context"] = pick(
        c4,
        "What the model reads",
        {
            "passages": "the passages",
            "quotes-first": "the supporting quotes, then the passages",
            "quotes-only": "the supporting quotes only",
        },
        d.get("context", defaults.context),
        "f-context",
        "Short contexts keep small models on the documents.",
    )
    out["decoding"] = pick(
        c3,
        "Decoding",
        {"faithful": "faithful: numbers, code and names only as the documents write them", "free": "free"},
        d.get("decoding", defaults.decoding),
        "f-decoding",
        "Faithful keeps the model from inventing numbers, code or names.",
    )
    out["thinking"] = pick(
        c4,
        "Think longer",
        {"off": "one answer", "best_of_n": "write several answers, show the best"},
        d.get("thinking", defaults.thinking),
        "f-thinking",
        "Several answers are written and the best supported one is shown; slower.",
    )
    out["candidates"] = int(
        c3.number_input(
            "Answers written at most",
            2,
            8,
            int(d.get("candidates", 3)),
            key="f-candidates",
            help="With 'write several answers'.",
        )
    )
    out["fallback"] = pick(
        c4,
        "When the answer lacks support",
        {
            "trim": "leave out unsupported sentences; quote the documents if most are",
            "quotes": "quote the documents if most sentences are unsupported",
            "off": "show it, marked",
        },
        d.get("fallback", defaults.fallback),
        "f-fallback",
        "What a reader sees when the documents don't back the answer.",
    )
    for k in ("citation_style", "answer_mode", "grounding", "context", "decoding", "thinking", "fallback"):
        field_errors(k)
    return out


TOOL_LABELS = {
    "calculator": "Calculator: computes arithmetic in the question",
    "code": "Code runner: a Run button under code blocks (sandboxed)",
    "web": "Web reader: reads a URL written in the question",
}


def tool_fields(d: dict[str, Any], model_path: str, svc: Any) -> dict[str, Any]:
    """Tools: which ones, model-driven calls, the web reader's private addresses."""
    now: dict[str, Any] = d.get("tools") or {}
    on = st.multiselect(
        "Tools",
        list(TOOL_LABELS),
        [t for t in TOOL_LABELS if now.get(t) is not None],
        format_func=TOOL_LABELS.__getitem__,
        help="Tool results are shown as cards and given to the model as marked data, like passages.",
        key="f-tools",
    )
    c1, c2 = st.columns(2)
    calls = pick(
        c1,
        "Model-driven tool calls",
        {"auto": "when the model's template supports tools", "forced": "forced: one call per answer", "off": "off"},
        now.get("calls", "auto"),
        "f-calls",
        "Whether the model itself may call the tools (and search the documents again).",
    )
    allowed = (now.get("web") or {}).get("allow_private", False)
    allow_text = c2.text_input(
        "Web reader may also read (private addresses)",
        "all" if allowed is True else ", ".join(allowed or []),
        help="Empty: public addresses only. 'all', or addresses and networks such as 10.0.0.5, 192.168.0.0/16.",
        key="f-allow-private",
    )
    native, why = tool_support_of(model_path, str(svc.home / "models"))
    st.caption(
        "This model's chat template supports tools: with 'auto' it may call the tools and search the documents "
        "itself, up to 3 rounds."
        if native
        else f"Model-driven calls are off for this model with 'auto': {why}. 'forced' still works (a grammar makes "
        "the call), and the tools above work with any model."
    )
    field_errors("tools")
    out: dict[str, Any] = {t: dict(now.get(t) or {}) for t in on}
    if "web" in out:
        raw = allow_text.strip()
        out["web"]["allow_private"] = (
            True if raw.lower() in ("all", "true", "*") else [a.strip() for a in raw.split(",") if a.strip()] or False
        )
    out["calls"] = calls
    return out


def draft_of(d: dict[str, Any], collections: list[str], problems: dict[str, list[str]], svc: Any) -> dict[str, Any]:
    """Every field, grouped; returns the assistant as it stands on screen. Settings the form has no
    field for (the answer opening, tool limits, coverage) are kept as they were."""
    defaults = Assistant(name="defaults", knowledge={"collections": ["-"]})  # type: ignore[arg-type]
    _SLOTS.clear()
    draft = dict(d)
    with st.container(border=True):
        st.markdown("**Essentials**")
        draft.update(essentials(d, collections, svc))
    with st.expander("Model", icon=":material/memory:", expanded="model" in str(problems)):
        draft["model"] = model_fields(d, svc)
    with st.expander("Finding passages and checking answers", icon=":material/tune:"):
        draft.update(answer_fields(d, defaults))
    with st.expander("Tools", icon=":material/build:", expanded="tools" in str(problems)):
        draft["tools"] = tool_fields(d, draft["model"]["path"], svc)
    return draft
