"""The assistant schema and library."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistants import EXAMPLES_DIR, AssistantError, AssistantLibrary, dump_assistant, load_assistant

BAD = """
name: "bad name!"
instructions: fine
model:
  temperature: 7
  gpu_layers: -3
knowledge: {}
retrieval:
  top_kk: 3
colour: blue
"""


def test_every_bad_field_is_reported_with_its_path(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(BAD)
    with pytest.raises(AssistantError) as err:
        load_assistant(f)
    problems = err.value.problems
    fields = sorted(p.split(":")[0] for p in problems)
    assert fields == [
        "colour",
        "knowledge.collections",
        "model.gpu_layers",
        "model.temperature",
        "name",
        "retrieval.top_kk",
    ]
    assert "colour: unknown field" in problems
    assert "knowledge.collections: required field is missing" in problems
    assert str(f) in str(err.value)


def test_yaml_syntax_and_empty_files_are_explained(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: [unclosed\n")
    with pytest.raises(AssistantError, match=r"\(yaml\)"):
        load_assistant(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("")
    with pytest.raises(AssistantError, match="empty"):
        load_assistant(tmp_path / "b.yaml")


def test_examples_are_valid_and_round_trip(tmp_path: Path) -> None:
    files = sorted(EXAMPLES_DIR.glob("*.yaml"))
    assert files
    for f in files:
        a = load_assistant(f)
        (tmp_path / f.name).write_text(dump_assistant(a))
        assert load_assistant(tmp_path / f.name) == a


def test_library_prefers_workspace_files_and_names_the_choices(tmp_path: Path) -> None:
    lib = AssistantLibrary(tmp_path)
    (tmp_path / "mine.yaml").write_text("name: archivist-guide\ndescription: mine\nknowledge: {collection: x}\n")
    (tmp_path / "broken.yaml").write_text("name: x\n")
    entries, errors = lib.entries()
    guide = next(e for e in entries if e.assistant.name == "archivist-guide")
    assert guide.source == "workspace" and guide.assistant.knowledge.collections == ["x"]
    assert len(errors) == 1 and "broken.yaml" in str(errors[0])
    with pytest.raises(AssistantError, match="available: archivist-guide"):
        lib.get("nobody")


def test_a_bare_off_in_yaml_is_the_choice_off(tmp_path: Path) -> None:
    f = tmp_path / "a.yaml"
    f.write_text("name: a\nknowledge: {collections: [c]}\ngrounding: off\nthinking: off\nfallback: off\nanchor: off\n")
    a = load_assistant(f)
    assert (a.grounding, a.thinking, a.fallback, a.anchor) == ("off", "off", "off", "off")
    assert "grounding: 'off'" in dump_assistant(a)  # written back so YAML reads a string
