"""The builder's folded sections: the model, how passages are found and answers checked, and
tools. Every field has help; `field_errors` leaves the place for its messages."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.ui.builder_common import OTHER, field_errors, pick, tool_support_of
from assistants import Assistant
from runtime.catalog import installed


def _left(c1: Any, c2: Any) -> Any:
    return c1


def _right(c1: Any, c2: Any) -> Any:
    return c2


# column, setting, label, lowest, highest, default, help (floats are sliders)
MODEL_NUMBERS: list[tuple[Any, str, str, Any, Any, Any, str]] = [
    (
        _left,
        "temperature",
        "Temperature",
        0.0,
        2.0,
        0.2,
        "0 picks the likeliest words every time; higher writes more freely.",
    ),
    (
        _right,
        "context_window",
        "Context window (tokens)",
        512,
        262144,
        4096,
        "How much text the model reads at once: instructions, passages and the conversation.",
    ),
    (_left, "max_tokens", "Longest answer (tokens)", 1, 32768, 512, "About 3/4 of a word each."),
    (_right, "top_p", "Top p", 0.05, 1.0, 0.95, "Only the likeliest words making up this share are considered."),
    (
        _left,
        "threads",
        "CPU threads (0 = physical cores)",
        0,
        512,
        0,
        "0 uses one thread per physical core, usually the fastest.",
    ),
    (
        _right,
        "gpu_layers",
        "GPU layers (-1 = all)",
        -1,
        1000,
        0,
        "Layers run on the GPU; 0 = CPU only. Needs llama.cpp built for your GPU.",
    ),
    (
        _left,
        "seed",
        "Seed (-1 = answers vary)",
        -1,
        2**31 - 1,
        -1,
        "With a seed, the same question gets the same answer every time; each answer then reads its "
        "prompt afresh, so follow-ups take longer.",
    ),
]


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
        placeholder="/path/to/model.gguf, hf:org/repo/file.gguf or openai:http://host:8080/v1",
        help="With 'Another model': a GGUF file's path, bundled:NAME, hf:org/repo/file.gguf, or openai:URL[,URL...] for OpenAI-compatible servers (see docs/models.md).",
    )
    path = typed.strip() if spec == OTHER else spec
    c1, c2 = st.columns(2)
    out = {**m, "path": path}
    for col, key, label, lo, hi, default, help in MODEL_NUMBERS:
        current = m.get(key) if m.get(key) is not None else default
        if isinstance(lo, float):
            value: Any = float(col(c1, c2).slider(label, lo, hi, float(current), key=f"f-{key}", help=help))
        else:
            value = int(col(c1, c2).number_input(label, lo, hi, int(current), key=f"f-{key}", help=help))
        out[key] = value
    out["threads"] = out["threads"] or None  # 0: one thread per physical core
    out["seed"] = out["seed"] if out["seed"] >= 0 else None
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
    return {"retrieval": retrieval, **writing_fields(d, defaults)}


def writing_fields(d: dict[str, Any], defaults: Assistant) -> dict[str, Any]:
    """How answers are written, cited and checked."""
    c3, c4 = st.columns(2)
    out: dict[str, Any] = {}
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
    most = c3.number_input(
        "Answers written at most", 2, 8, int(d.get("candidates", 3)), key="f-candidates", help="With several answers."
    )
    out["candidates"] = int(most)  # used with 'write several answers'
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
