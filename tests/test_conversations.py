"""Assistant library operations, conversations, follow-ups and the KV cache, on the real parts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.services import Services
from assistants import AssistantError, parse_assistant
from assistants.conversation_service import retrieval_query
from ingest import ingest_paths
from runtime import GenerationParams, GenerationStats, LlamaCppGenerator, resolve_model
from tests.shared import FakeEmbedder, make_pdf

ROOT = Path(__file__).parent.parent


def test_follow_up_questions_carry_the_previous_question() -> None:
    assert retrieval_query("How do I sort a vector?", []) == "How do I sort a vector?"
    assert retrieval_query("And its default?", ["What does read.csv do?"]) == "What does read.csv do? And its default?"
    assert retrieval_query("What about sorting it?", ["How do I make a vector?"]).startswith("How do I make")
    assert retrieval_query("Why?", ["How do I make a vector?"]).startswith("How do I make")
    for own in ("And how often do I water basil?", "Which function reads fixed width files into a data frame?"):
        assert retrieval_query(own, ["What does read.csv do?"]) == own


def test_library_create_duplicate_delete_import_export(home: Path, tmp_path: Path) -> None:
    svc = Services.create(home, embedder=FakeEmbedder())
    lib = svc.library
    a = parse_assistant({"name": "notes", "knowledge": {"collections": ["c"]}}, "t")
    lib.save(a)
    with pytest.raises(AssistantError, match="already exists"):
        lib.save(a)
    lib.duplicate("notes", "notes-2")
    with pytest.raises(AssistantError):
        lib.duplicate("notes", "bad name!")
    assert {"notes", "notes-2"} <= {e.assistant.name for e in lib.entries()[0]}
    exported = tmp_path / "n.yaml"
    exported.write_text(lib.export_yaml("notes-2").replace("notes-2", "notes-3"))
    assert lib.import_yaml(exported).name == "notes-3"
    lib.delete("notes-2")
    with pytest.raises(AssistantError, match="shipped example"):
        lib.delete("archivist-guide")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: {top_p: 3}\nknowledge: {collections: [c]}\n")
    with pytest.raises(AssistantError, match="model.top_p"):
        lib.import_yaml(bad)
    assert not lib.path_for("x").exists()


def test_bundle_rebuilds_the_assistant_with_its_documents(home: Path, tmp_path: Path) -> None:
    from assistants.bundle import export_bundle, import_bundle

    emb = FakeEmbedder()
    svc = Services.create(home, embedder=emb)
    (tmp_path / "owls.txt").write_text("Owls hunt at night.")
    ingest_paths([tmp_path / "owls.txt"], "birds", svc.store, emb)
    a = parse_assistant({"name": "birder", "knowledge": {"collections": ["birds"]}}, "t")
    assert export_bundle(a, svc.store, tmp_path / "b.zip") == 1
    other = Services.create(tmp_path / "other-machine", embedder=emb)
    got, results = import_bundle(tmp_path / "b.zip", other.store, emb)
    assert got == a and [r.status for r in results] == ["added"]
    assert [d.name for d in other.store.documents("birds")] == ["owls.txt"]


def test_a_bundle_keeps_same_named_files_of_different_folders_apart(home: Path, tmp_path: Path) -> None:
    from assistants.bundle import document_name, export_bundle, import_bundle

    emb = FakeEmbedder()
    svc = Services.create(home, embedder=emb)
    site = tmp_path / "site"
    for folder, text in (("guide", "Owls hunt at night."), ("faq", "Puffins nest on cliffs.")):
        (site / folder).mkdir(parents=True)
        (site / folder / "index.html").write_text(f"<html><body><p>{text}</p></body></html>")
    ingest_paths([site], "birds", svc.store, emb)
    names = sorted(d.name for d in svc.store.documents("birds"))
    assert names == ["site/faq/index.html", "site/guide/index.html"]
    a = parse_assistant({"name": "birder", "knowledge": {"collections": ["birds"]}}, "t")
    assert export_bundle(a, svc.store, tmp_path / "b.zip") == 2
    other = Services.create(tmp_path / "other-machine", embedder=emb)
    _, results = import_bundle(tmp_path / "b.zip", other.store, emb)
    assert [r.status for r in results] == ["added", "added"]
    assert sorted(d.name for d in other.store.documents("birds")) == names  # both, under their own paths
    assert document_name("../../etc/passwd") == "etc/passwd" and document_name("/abs/x.pdf") == "abs/x.pdf"
    assert document_name("..") == "document"


def test_schema_command_writes_json_schema(home: Path, tmp_path: Path) -> None:
    env = dict(os.environ, ARCHIVIST_HOME=str(home))
    out = tmp_path / "schema.json"
    subprocess.run(
        [sys.executable, "-m", "app.cli", "assistants", "schema", "-o", str(out)],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    schema = json.loads(out.read_text())
    assert schema["additionalProperties"] is False
    assert {"name", "instructions", "model", "knowledge", "retrieval", "starters", "refusal", "citation_style"} <= set(
        schema["properties"]
    )


@pytest.mark.slow
def test_kv_snapshots_survive_interleaving_and_change_nothing() -> None:
    path = resolve_model("bundled:smollm2-135m")
    cached = LlamaCppGenerator(path, context_window=2048)
    plain = LlamaCppGenerator(path, context_window=2048, cache_bytes=0)
    p = GenerationParams(max_tokens=16, temperature=0)
    system = {"role": "system", "content": "You are a careful assistant. " * 10}
    a1 = [system, {"role": "user", "content": "Tell me about cats."}]
    first = cached.generate(a1, p)
    cached.generate([{"role": "user", "content": "Something else entirely about dogs."}], p)  # another conversation
    a2 = [*a1, {"role": "assistant", "content": first}, {"role": "user", "content": "What do they eat?"}]
    stats = GenerationStats()
    second = "".join(cached.stream(a2, p, stats))
    assert stats.evaluated_tokens < stats.prompt_tokens / 3  # only the new turn was evaluated
    reference = GenerationStats()
    expected = "".join(plain.stream(a2, p, reference))
    assert reference.evaluated_tokens == reference.prompt_tokens
    # the restored cache is this conversation's: the answer starts as without the cache (later
    # tokens may drift: a prefix evaluated in another batch shape differs in the last float bits)
    assert second.split()[:1] == expected.split()[:1] and second.strip()
    # a best-of-N candidate's own seed keeps the cache; a request the caller wants repeatable
    # (a seed of its own) reads its whole prompt afresh
    candidate, repeatable = GenerationStats(), GenerationStats()
    "".join(cached.stream(a2, GenerationParams(max_tokens=4, temperature=0.7, seed=1), candidate))
    "".join(cached.stream(a2, GenerationParams(max_tokens=4, temperature=0.7, seed=1, repeatable=True), repeatable))
    assert candidate.evaluated_tokens < candidate.prompt_tokens / 3
    assert repeatable.evaluated_tokens == repeatable.prompt_tokens


@pytest.mark.slow
def test_conversation_turns_are_stored_and_follow_ups_are_cheap(
    home: Path, tmp_path: Path, real_embedder, model_pool, database_url: str | None
) -> None:  # type: ignore[no-untyped-def]
    from app.settings import Settings

    settings = Settings.load(home=home, database_url=database_url)  # each backend in turn
    svc = Services.create(embedder=real_embedder, models=model_pool, settings=settings)  # the session's loaded model
    pdf = make_pdf(
        tmp_path / "garden.pdf", ["Tomatoes need six hours of sun a day.", "Basil should be watered every morning."]
    )
    ingest_paths([pdf], "garden", svc.store, svc.embedder)
    assistant = parse_assistant(
        {
            "name": "gardener",
            "knowledge": {"collections": ["garden"]},
            "model": {"max_tokens": 24, "temperature": 0, "context_window": 2048},
        },
        "t",
    )
    conv = svc.conversations.create("gardener")
    a1 = svc.conversation.ask(assistant, conv.id, "How much sun do tomatoes need?").result()
    a2 = svc.conversation.ask(assistant, conv.id, "And how often do I water basil?").result()
    assert a1.citations[0].page == 1 and a2.citations[0].page == 2
    assert a2.stats.evaluated_tokens < a2.stats.prompt_tokens  # the first turn came from the KV cache
    msgs = svc.conversations.messages(conv.id)
    assert [m.role for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert msgs[1].completion_tokens > 0 and msgs[1].time_to_first_token is not None
    assert msgs[1].settings["model"]["max_tokens"] == 24
    assert msgs[0].prompt_text is not None and "Question: How much sun" in msgs[0].prompt_text
    svc.conversations.feedback(a2.message_id, -1, "too short")
    assert svc.conversations.messages(conv.id)[3].feedback == -1
    assert [c.id for c in svc.conversations.search("gardener", "basil")] == [conv.id]
    svc.conversations.rename(conv.id, "Garden help")
    md = svc.conversations.export_markdown(conv.id)
    assert md.startswith("# Garden help") and "garden.pdf, page 2" in md
    svc.conversations.delete(conv.id)
    assert svc.conversations.all() == []


@pytest.mark.slow
def test_chat_cli_streams_and_keeps_history(home: Path, tmp_path: Path) -> None:
    env = dict(os.environ, ARCHIVIST_HOME=str(home), HF_HUB_OFFLINE="1")
    cli = [sys.executable, "-m", "app.cli"]
    subprocess.run(
        [*cli, "ingest", str(ROOT / "docs"), "-c", "archivist-docs", "-q"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    r = subprocess.run(
        [*cli, "chat", "archivist-guide"],
        input="Which file formats can Archivist ingest?\n/history\n/exit\n",
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "archivist-guide> " in r.stdout and "knowledge.md" in r.stdout
    assert "you> Which file formats can Archivist ingest?" in r.stdout  # /history
    listed = subprocess.run([*cli, "conversations", "list"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert "archivist-guide\tWhich file formats can Archivist ingest?" in listed.stdout


@pytest.mark.slow
def test_a_new_conversation_reuses_the_assistants_instructions_prefix() -> None:
    path = resolve_model("bundled:smollm2-135m")
    gen = LlamaCppGenerator(path, context_window=2048)
    p = GenerationParams(max_tokens=8, temperature=0)
    system = {"role": "system", "content": "You are the harbor assistant. Answer briefly and cite. " * 8}
    gen.generate([system, {"role": "user", "content": "When is the lens cleaned?"}], p)
    gen.generate([{"role": "user", "content": "An unrelated request from another assistant."}], p)
    stats = GenerationStats()
    new_conv = [system, {"role": "user", "content": "Where do puffins nest?"}]
    out = "".join(gen.stream(new_conv, p, stats))
    system_tokens = len(gen.tokenize_prompt([system]))
    assert stats.evaluated_tokens <= stats.prompt_tokens - system_tokens + 8  # the instructions were not re-read
    reference = LlamaCppGenerator(path, context_window=2048, cache_bytes=0)
    assert out.split()[:1] == reference.generate(new_conv, p).split()[:1] and out.strip()


def _bundle(
    path: Path, assistant_yaml: bytes, docs: dict[str, bytes], manifest: list[dict[str, str]] | None = None
) -> Path:
    import json as _json
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("assistant.yaml", assistant_yaml)
        entries = []
        for i, (name, data) in enumerate(docs.items()):
            zf.writestr(f"documents/{i:05d}.txt", data)
            entries.append({"collection": "reports", "name": name, "member": f"documents/{i:05d}.txt"})
        zf.writestr(
            "manifest.json", _json.dumps({"format": 1, "documents": manifest if manifest is not None else entries})
        )
    return path


BUNDLED = b"name: reporter\nknowledge: {collections: [reports]}\n"


def test_a_refused_bundle_writes_nothing_and_never_replaces_the_users_documents(home: Path, tmp_path: Path) -> None:
    from assistants.bundle import import_bundle
    from assistants.errors import AssistantError

    emb = FakeEmbedder()
    svc = Services.create(home, embedder=emb)
    (tmp_path / "report.txt").write_text("The user's own quarterly report.")
    ingest_paths([tmp_path / "report.txt"], "reports", svc.store, emb)
    svc.library.save(parse_assistant({"name": "reporter", "knowledge": {"collections": ["reports"]}}, "t"))
    hostile = _bundle(tmp_path / "h.zip", BUNDLED, {"report.txt": b"Replaced by the bundle."})
    with pytest.raises(AssistantError) as exc:
        import_bundle(hostile, svc.store, emb, taken=svc.library.taken)
    problems = " | ".join(exc.value.problems)
    assert "'reporter' exists" in problems and "collection 'reports' exists" in problems
    docs = svc.store.documents("reports")
    assert [d.name for d in docs] == ["report.txt"] and docs[0].sha256 == hashlib_sha(tmp_path / "report.txt")

    # a collection the assistant does not search, a missing member
    stray = _bundle(
        tmp_path / "s.zip",
        b"name: other\nknowledge: {collections: [other]}\n",
        {},
        [{"collection": "secrets", "name": "x.txt", "member": "documents/nope.txt"}],
    )
    with pytest.raises(AssistantError) as exc:
        import_bundle(stray, svc.store, emb)
    problems = " | ".join(exc.value.problems)
    assert "'secrets' is not one the assistant searches" in problems and "missing from the bundle" in problems
    assert "secrets" not in svc.store.collection_names()


def hashlib_sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_oversized_yaml_and_zip_bombs_are_refused_before_reading(home: Path, tmp_path: Path) -> None:
    import time
    import zipfile

    from assistants.bundle import import_bundle
    from assistants.errors import AssistantError

    emb = FakeEmbedder()
    svc = Services.create(home, embedder=emb)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"name: big\ndescription: >\n" + b"  " + b"x" * (3 * 2**20) + b"\n")
    with pytest.raises(AssistantError, match="at most 1 MB"):
        svc.library.import_yaml(big)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("assistant.yaml", b"name: bomb\n#" + b" " * (50 * 2**20))
        zf.writestr("manifest.json", b'{"documents": []}')
    assert bomb.stat().st_size < 200_000
    t0 = time.perf_counter()
    with pytest.raises(AssistantError, match="zip bomb"):
        import_bundle(bomb, svc.store, emb)
    assert time.perf_counter() - t0 < 5


def test_imports_that_would_fetch_or_load_outside_models_ask_first(home: Path, tmp_path: Path) -> None:
    from assistants.errors import AssistantError

    svc = Services.create(home, embedder=FakeEmbedder())
    hub = tmp_path / "hub.yaml"
    hub.write_text("name: hubby\nknowledge: {collections: [c]}\nmodel: {path: 'hf:org/repo/model.gguf'}\n")
    with pytest.raises(AssistantError, match="--allow-download"):
        svc.library.import_yaml(hub)
    assert svc.library.import_yaml(hub, allow_download=True).name == "hubby"
    outside = tmp_path / "outside.yaml"
    outside.write_text("name: outsider\nknowledge: {collections: [c]}\nmodel: {path: /etc/passwd}\n")
    with pytest.raises(AssistantError, match="outside the workspace's models folder"):
        svc.library.import_yaml(outside)
    inside = tmp_path / "inside.yaml"
    inside.write_text(
        f"name: insider\nknowledge: {{collections: [c]}}\nmodel: {{path: {home / 'models' / 'mine.gguf'}}}\n"
    )
    assert svc.library.import_yaml(inside).name == "insider"


def test_an_imported_assistant_sends_nothing_away_without_consent_for_each_server(home: Path, tmp_path: Path) -> None:
    from assistants.errors import AssistantError

    svc = Services.create(home, embedder=FakeEmbedder())
    (home / "models").mkdir(parents=True, exist_ok=True)

    def yaml_with(name: str, model: str, extra: str = "") -> Path:
        f = tmp_path / f"{name}.yaml"
        f.write_text(f"name: {name}\nknowledge: {{collections: [c]}}\nmodel: {{path: '{model}'}}\n{extra}")
        return f

    # the spec that walked '..' into the models folder is no clean URL, whatever is allowed
    walk = yaml_with("walker", "openai:http://203.0.113.9/../../models/x;key_env=HF_TOKEN")
    for allowed in ((), ("http://203.0.113.9/../../models/x",)):
        with pytest.raises(AssistantError, match="'..' path segments"):
            svc.library.import_yaml(walk, allow_model_path=True, allow_remote=allowed)
    # a server is named, with what goes there, and only --allow-remote for that server lets it in
    remote = yaml_with("remote", "openai:http://203.0.113.9:8080/v1")
    with pytest.raises(AssistantError, match=r"sent to http://203.0.113.9:8080/v1; import with --allow-remote"):
        svc.library.import_yaml(remote, allow_model_path=True, allow_download=True)
    with pytest.raises(AssistantError, match="--allow-remote"):
        svc.library.import_yaml(remote, allow_remote=["http://203.0.113.99:8080/v1"])
    assert svc.library.import_yaml(remote, allow_remote=["http://203.0.113.9:8080/v1/"]).name == "remote"
    # the file may not choose which secret goes with the questions, even to an allowed server
    keyed = yaml_with("keyed", "openai:http://203.0.113.9:8080/v1;key_env=HF_TOKEN")
    with pytest.raises(AssistantError, match="key_env=HF_TOKEN"):
        svc.library.import_yaml(keyed, allow_remote=["http://203.0.113.9:8080/v1"])
    # credentials, queries and unknown schemes are refused with their reason
    for spec, why in (
        ("openai:http://user:pw@203.0.113.9/v1", "credentials"),
        ("openai:http://203.0.113.9/v1?x=1", "query"),
        ("openai2:http://203.0.113.9/v1", "no model spec this version knows"),
    ):
        with pytest.raises(AssistantError, match=why):
            svc.library.import_yaml(
                yaml_with("odd", spec), allow_model_path=True, allow_remote=["http://203.0.113.9/v1"]
            )
    # the web reader's private network is a destination too
    private = yaml_with("lan", "bundled:smollm2-135m", "tools: {web: {allow_private: true}}\n")
    with pytest.raises(AssistantError, match="--allow-remote private-network"):
        svc.library.import_yaml(private)
    assert svc.library.import_yaml(private, allow_remote=["private-network"]).name == "lan"
    # nothing refused was written
    assert {e.assistant.name for e in svc.library.entries()[0]} >= {"remote", "lan"}
    assert not {"walker", "keyed", "odd"} & {e.assistant.name for e in svc.library.entries()[0]}


def test_importing_over_a_shipped_assistant_warns(home: Path, tmp_path: Path) -> None:
    env = dict(os.environ, ARCHIVIST_HOME=str(home))
    shadow = tmp_path / "guide.yaml"
    shadow.write_text("name: archivist-guide\nknowledge: {collections: [c]}\n")
    r = subprocess.run(
        [sys.executable, "-m", "app.cli", "assistants", "import", str(shadow)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "hides the shipped assistant" in r.stderr
