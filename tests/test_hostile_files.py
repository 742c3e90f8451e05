"""Hostile files built in code: each fails alone with one clear line, nothing stored is harmed."""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

import pytest

from ingest import IngestLimits, Store, ingest_paths, load_bytes
from retriever import search
from tests.shared import FakeEmbedder, make_pdf


def bomb_pdf(path: Path, expanded: int = 200_000_000) -> Path:
    """A one-page PDF whose content stream inflates to `expanded` bytes."""
    stream = zlib.compress(b" " * expanded, 9)
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out, offsets = io.BytesIO(), []
    out.write(b"%PDF-1.4\n")
    for i, body in enumerate(objs, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref))
    path.write_bytes(out.getvalue())
    return path


def bomb_docx(path: Path) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", b"<w:document>" + b" " * 300_000_000 + b"</w:document>")
    path.write_bytes(buf.getvalue())
    return path


def encrypted_pdf(path: Path, password: str) -> Path:
    from pypdf import PdfReader, PdfWriter

    src = make_pdf(path.with_suffix(".plain.pdf"), ["The vault code is 4711."])
    writer = PdfWriter()
    for page in PdfReader(src).pages:
        writer.add_page(page)
    writer.encrypt(password)
    writer.write(path)
    return path


@pytest.mark.slow
def test_hostile_batch_fails_file_by_file_and_keeps_what_is_stored(home: Path, tmp_path: Path) -> None:
    emb = FakeEmbedder()
    store = Store(home, emb.name, emb.dim)
    (tmp_path / "keep.txt").write_text("Badgers dig setts in the woods.")
    ingest_paths([tmp_path / "keep.txt"], "c", store, emb)
    before = search(store, emb, ["c"], "badgers setts", 1)

    full = make_pdf(tmp_path / "full.pdf", ["some text here"] * 4).read_bytes()
    files = {
        "empty.txt": b"",
        "pdf-named.docx": full,  # wrong extension: read as what it is
        "truncated.pdf": full[: len(full) // 2],
        "junk.txt": bytes(range(256)) * 100,
        "bomb.docx": bomb_docx(tmp_path / "b.docx").read_bytes(),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    encrypted_pdf(tmp_path / "locked.pdf", "s3cret")
    bomb_pdf(tmp_path / "bomb.pdf")
    (tmp_path / "oneline.txt").write_text("x" * 10_000_000)
    names = [*files, "locked.pdf", "bomb.pdf", "oneline.txt"]
    report = ingest_paths([tmp_path / n for n in names], "c", store, emb)
    status = {Path(r.path).name: (r.status, r.error or "") for r in report.results}

    assert status["empty.txt"] == ("failed", "empty.txt: file is empty")
    assert status["pdf-named.docx"][0] == "added"
    assert status["truncated.pdf"][0] == "failed" and "truncated.pdf" in status["truncated.pdf"][1]
    assert "junk.txt: unsupported file type" in status["junk.txt"][1]
    assert "bomb.docx" in status["bomb.docx"][1] and "zip bomb" in status["bomb.docx"][1]
    assert "locked.pdf: the PDF is encrypted; give its password" in status["locked.pdf"][1]
    assert status["bomb.pdf"][0] == "failed" and "bomb.pdf" in status["bomb.pdf"][1]
    assert status["oneline.txt"][0] == "added"
    oneline = [h for h in search(store, emb, ["c"], "x", 50, mode="keyword") if h.document == "oneline.txt"]
    assert all(len(h.text) < 128 * 12 for h in oneline)  # no giant passage
    for r in report.results:
        assert "\n" not in (r.error or "")  # one line each
    assert search(store, emb, ["c"], "badgers setts", 1) == before


def test_a_pdf_that_inflates_past_the_memory_limit_fails_naming_it(home: Path, tmp_path: Path) -> None:
    emb = FakeEmbedder()
    store = Store(home, emb.name, emb.dim)
    (tmp_path / "ok.txt").write_text("Lighthouses warn ships of rocks.")
    files = [bomb_pdf(tmp_path / "bomb.pdf"), tmp_path / "ok.txt"]
    report = ingest_paths(files, "c", store, emb, limits=IngestLimits(parse_memory_mb=64))
    assert report.results[0].status == "failed"
    assert "bomb.pdf" in (report.results[0].error or "") and "memory limit of 64 MB" in (report.results[0].error or "")
    assert report.results[1].status == "added"


def test_password_opens_an_encrypted_pdf(home: Path, tmp_path: Path) -> None:
    emb = FakeEmbedder()
    store = Store(home, emb.name, emb.dim)
    locked = encrypted_pdf(tmp_path / "locked.pdf", "s3cret")
    wrong = ingest_paths([locked], "c", store, emb, limits=IngestLimits(password="nope"))
    assert "the password does not open this encrypted PDF" in (wrong.results[0].error or "")
    ok = ingest_paths([locked], "c", store, emb, limits=IngestLimits(password="s3cret"))
    assert ok.results[0].status == "added"
    assert "4711" in search(store, emb, ["c"], "vault code", 1)[0].text


def test_parse_time_limit_kills_the_parser(home: Path, tmp_path: Path) -> None:
    emb = FakeEmbedder()
    store = Store(home, emb.name, emb.dim)
    pdf = make_pdf(tmp_path / "long.pdf", [f"Page {i} text about lighthouses." for i in range(3000)])
    ok = tmp_path / "ok.txt"
    ok.write_text("Lighthouses warn ships of rocks.")
    r = ingest_paths([pdf, ok], "c", store, emb, limits=IngestLimits(parse_timeout_s=0.2))
    assert "long.pdf: parsing took longer than the limit" in (r.results[0].error or "")
    assert r.results[1].status == "added"  # the next file gets a fresh parser
    assert [h.document for h in search(store, emb, ["c"], "lighthouses", 5)] == ["ok.txt"]


def test_one_parser_process_serves_file_after_file(home: Path, tmp_path: Path) -> None:
    from ingest import worker

    emb = FakeEmbedder()
    store = Store(home, emb.name, emb.dim)
    files = []
    for i in range(3):
        f = tmp_path / f"n{i}.md"
        f.write_text(f"# Note {i}\n\nOtters number {i} swim.\n")
        files.append(f)
    worker.close_workers()
    started = []
    real = worker.ParseWorker.__init__

    def counting(self):  # type: ignore[no-untyped-def]
        real(self)
        started.append(self.proc.pid)

    worker.ParseWorker.__init__ = counting  # type: ignore[method-assign]
    try:
        r = ingest_paths(files, "c", store, emb)
    finally:
        worker.ParseWorker.__init__ = real  # type: ignore[method-assign]
    assert [x.status for x in r.results] == ["added"] * 3
    assert len(started) == 1
    assert [w.proc.pid for w in worker._idle] == started  # idle, ready for the next batch


def test_docx_paragraphs_headings_and_tables(tmp_path: Path) -> None:
    docx = pytest.importorskip("docx")
    d = docx.Document()
    d.add_heading("Field guide", level=1)
    d.add_paragraph("Owls hunt at night.")
    d.add_heading("Sizes", level=2)
    t = d.add_table(rows=2, cols=2)
    t.cell(0, 0).text, t.cell(0, 1).text = "bird", "wingspan"
    t.cell(1, 0).text, t.cell(1, 1).text = "heron", "1.8 m"
    buf = io.BytesIO()
    d.save(buf)
    doc = load_bytes(buf.getvalue(), "guide.bin")  # the extension is not trusted
    assert doc.format == "docx"
    text = doc.pages[0].text
    assert "# Field guide" in text and "## Sizes" in text and "heron | 1.8 m" in text


def test_csv_and_json_as_text() -> None:
    doc = load_bytes(b"bird,wingspan\nheron,1.8 m\nowl,1 m\n", "birds.csv")
    assert doc.format == "csv" and "bird: heron; wingspan: 1.8 m" in doc.pages[0].text
    doc = load_bytes(b'{"bird": {"name": "heron", "wingspan": "1.8 m"}}', "birds.dat")
    assert doc.format == "json" and '"wingspan": "1.8 m"' in doc.pages[0].text


@pytest.mark.parametrize("name", ["x\n", "a/b", "..", "-x", "x" * 65, "a\u202eb"])
def test_collection_names_that_are_not_plain_are_refused(name: str) -> None:
    from ingest.errors import IngestError
    from ingest.store import check_collection_name

    with pytest.raises(IngestError, match="is not allowed"):
        check_collection_name(name)
