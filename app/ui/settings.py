"""Settings: where the workspace is, which models exist and which are loaded, disk used."""

from __future__ import annotations

import streamlit as st

from app.ui.common import services
from ingest.precision import ENV, for_this_machine, setting
from runtime.cpu import physical_cores
from runtime.spec import BUNDLED

svc = services()


def precision_line(svc) -> str:  # type: ignore[no-untyped-def]
    """How fast documents are added here and why, in plain words: a setting, or what was measured."""
    if setting() != "auto":
        return f"Adding documents uses the {setting()} number format, as the setting `{ENV}` says."
    cal = for_this_machine(svc.home, svc.store.embedder)
    if cal is None:
        return (
            "Not timed on this computer yet: the first time documents are added, a few seconds go to finding "
            "the fastest way to turn passages into numbers for search here."
        )
    return cal.plain()


st.title("Settings")
st.markdown(f"**Workspace:** `{svc.home}` (set `ARCHIVIST_HOME` or `--home` to move it)")
st.markdown(f"**Database:** {svc.store.describe()} (set `ARCHIVIST_DATABASE_URL` to share one PostgreSQL server)")


def size(path) -> int:  # type: ignore[no-untyped-def]
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


c1, c2, c3, c4 = st.columns(4)
catalog = svc.home / "archivist.db"
c1.metric(
    "Catalog", f"{catalog.stat().st_size / 2**20:,.1f} MB" if catalog.exists() and not svc.store.server else "on server"
)
c2.metric("Indexes", f"{size(svc.home / 'indexes') / 2**20:,.1f} MB")
c3.metric("Originals", f"{size(svc.home / 'files') / 2**20:,.1f} MB")
c4.metric("Models", f"{size(svc.home / 'models') / 2**20:,.1f} MB")

st.subheader("Models")
found = [f"bundled:{n}" for n in BUNDLED] + sorted(str(p) for p in (svc.home / "models").rglob("*.gguf"))
st.markdown("\n".join(f"- `{m}`" for m in found))
loaded = svc.models.loaded()
if loaded:
    st.markdown("**Loaded now:**")
    st.dataframe(
        [
            {
                "model": k.label,
                "context window": k.context_window,
                "threads": k.n_threads,
                "GPU layers": k.gpu_layers,
            }
            for k in loaded
        ],
        hide_index=True,
    )
else:
    st.caption("No model loaded yet: the first question loads one.")
st.markdown(
    f"**Threads:** defaults to the physical core count here, {physical_cores()}; set `model.threads` per assistant.  \n"
    f"**GPU layers:** `model.gpu_layers` per assistant (-1 = all); needs llama.cpp built with CUDA, Metal or Vulkan "
    f"(`ARCHIVIST_LLAMA_BACKEND=cuda make setup`).  \n"
    f"**Embedder:** {svc.store.embedder} ({svc.store.dim} dimensions)"
)
st.markdown(f"**Speed of adding documents:** {precision_line(svc)}")
if setting() == "auto" and (cal := for_this_machine(svc.home, svc.store.embedder)) is not None:
    with st.expander("The measurement in detail"):
        st.text(cal.summary() + f"\nTo choose yourself, set {ENV}=float32, bfloat16 or float32-onnx.")
