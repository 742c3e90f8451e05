"""Models: what this computer has, adding a GGUF file, recommended models downloaded from the hub."""

from __future__ import annotations

import streamlit as st

from app.ui.common import plain, services
from runtime.catalog import InstalledModel, add_by_path, add_upload, installed, remove, same_model
from runtime.errors import ArchivistError
from runtime.hub import RECOMMENDED, Download, endpoint_now, split_spec

svc = services()
models_dir = svc.home / "models"
st.title("Models")
st.markdown(
    "Assistants answer with one of these models; pick it in the builder on the **Assistants** page. "
    f"Model files are kept in `{models_dir}`."
)
entries, _ = svc.library.entries()
have = installed(models_dir)
KIND = {
    "bundled": "comes with Archivist",
    "downloaded": "downloaded from the model hub",
    "added": "added to the models folder",
    "linked": "added by path (the file stays where it is)",
}


def gb(n: float) -> str:
    return f"{n / 1e9:,.2f} GB" if n >= 1e8 else f"{n / 1e6:,.0f} MB"


def users(m: InstalledModel) -> list[str]:
    return [e.assistant.name for e in entries if same_model(e.assistant.model.path, m)]


# ---- on this computer ----------------------------------------------------------------------
st.subheader("On this computer")
for m in have:
    used = users(m)
    with st.container(border=True):
        c1, c2 = st.columns([4, 1])
        c1.markdown(f"**{plain(m.title)}** · {gb(m.size)} · {KIND[m.kind]}")
        c1.code(m.spec, language=None)  # the name the builder and YAML files use
        c1.caption(plain("Used by: " + ", ".join(used)) if used else "Not used by any assistant yet.")
        if m.kind != "bundled":
            with c2.popover("Delete", icon=":material/delete:"):
                if used:
                    st.warning(plain(f"{', '.join(used)} will have no model until you pick another one."))
                sure = st.checkbox(f"Yes, delete {plain(m.path.name)}", key=f"md-sure-{m.spec}")
                if st.button("Delete model", disabled=not sure, key=f"md-del-{m.spec}", type="primary"):
                    try:
                        remove(models_dir, m)
                        st.toast(f"Deleted {m.path.name}")
                        st.rerun()
                    except (ArchivistError, OSError) as exc:
                        st.error(str(exc))

# ---- add a file --------------------------------------------------------------------------
st.subheader("Add a model file")
t1, t2 = st.tabs(["A file on this computer", "Upload"])
with t1:
    where = st.text_input(
        "Full path of a .gguf file",
        placeholder="/home/me/Downloads/model-q4_k_m.gguf",
        key="md-path",
        help="The file stays where it is: Archivist links to it (no copy of several gigabytes).",
    )
    if st.button("Add this file", key="md-add", disabled=not where.strip()):
        try:
            added = add_by_path(models_dir, where.strip())
            st.success(f"Added {added.name}. Pick it in the builder on the Assistants page.")
            st.rerun()
        except ArchivistError as exc:
            st.error(str(exc))
with t2:
    up = st.file_uploader("A .gguf model file (up to 200 MB here; give a path for larger ones)", type=["gguf"])
    if up is not None and st.button("Add the uploaded file", key="md-upload"):
        try:
            added = add_upload(models_dir, up.name, up)
            st.success(f"Added {added.name}.")
        except ArchivistError as exc:
            st.error(str(exc))


# ---- recommended, from the hub -----------------------------------------------------------
def offline_help(job: Download) -> str:
    repo, filename = split_spec(job.spec)
    url = f"{endpoint_now()}/{repo}/resolve/main/{filename}"
    if "HF_HUB_OFFLINE" in job.error:
        return (
            "Downloads are switched off on this computer: the setting HF_HUB_OFFLINE is on, so the app reaches "
            "no model hub. To download here, start the app without it (or with HF_HUB_OFFLINE=0). Otherwise "
            f"download the file on a computer that has internet from {url}, bring it over, and add it above "
            "under **Add a model file**."
        )
    return (
        f"The model hub ({endpoint_now()}) can't be reached: this computer seems to be offline. "
        "Connect it to the internet, then press **Download** again: what was downloaded so far is kept and "
        "the download goes on from there. Without internet here: download the file on a computer that has "
        f"it from {url}, bring it over, and add it above under **Add a model file**."
    )


def download_row(spec: str, key: str) -> None:
    """A download's button, its progress bar with Cancel while it runs, or what went wrong."""
    job = svc.downloads.get(spec)
    if any(m.spec == spec for m in have):
        st.success("Downloaded: pick it in the builder on the Assistants page.", icon=":material/check:")
        return
    if job is not None and job.running:
        frac = job.done / job.total if job.total else 0.0
        verb = "Checking" if job.stage == "verifying" else "Downloading"
        total = f" of {gb(job.total)}" if job.total else ""
        st.progress(min(frac, 1.0), text=f"{verb}: {gb(job.done)}{total}")
        if st.button("Cancel", key=f"md-cancel-{key}"):
            svc.downloads.cancel(spec)
            st.rerun()
        return
    if job is not None and job.stage == "failed":
        st.error(offline_help(job) if job.offline else f"The download failed: {job.error}")
    elif job is not None and job.stage == "cancelled":
        st.info("Download cancelled. What was downloaded is kept: Download goes on from there.")
    kept = svc.downloads.partial(spec)
    label = f"Download (resume at {gb(kept)})" if kept else "Download"
    if st.button(label, key=f"md-get-{key}", icon=":material/download:"):
        svc.downloads.start(spec)
        st.rerun()


def downloads_running() -> bool:
    return any(j.running for j in svc.downloads.all())


@st.fragment(run_every=1.0 if downloads_running() else None)
def recommended() -> None:
    st.subheader("Recommended models")
    st.caption(
        "Chat models in GGUF format that run on a CPU; larger ones answer better and need more memory. "
        "Downloads go on in the background while you use other pages, and are checked against the hub's "
        "checksum before use."
    )
    for i, r in enumerate(RECOMMENDED):
        with st.container(border=True):
            c1, c2 = st.columns([3, 2])
            c1.markdown(f"**{r.title}**  \n{r.note}")
            c1.caption(
                f"{r.size_gb:.1f} GB download · needs about {r.ram_gb:.1f} GB of memory · "
                f"licence: {r.licence} · context: {r.context:,} tokens · "
                f"tool calls: {'yes' if r.tools else 'no'}"
            )
            with c2:
                download_row(r.spec, str(i))
    st.markdown("**Another GGUF model from the hub**")
    other = st.text_input(
        "Model on the hub",
        placeholder="hf:org/repo/file.gguf",
        key="md-other",
        help="The repository and file name as the hub shows them, for example "
        "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf",
    )
    spec = other.strip()
    if spec:
        if not spec.startswith("hf:"):
            spec = "hf:" + spec
        try:
            split_spec(spec)
            download_row(spec, "other")
        except ArchivistError as exc:
            st.error(str(exc))
    if st.session_state.get("md-running") and not downloads_running():
        st.session_state["md-running"] = False
        st.rerun()  # the whole page: "On this computer" lists the new model
    st.session_state["md-running"] = downloads_running()


recommended()
