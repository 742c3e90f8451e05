"""Optional content (layers) of a PDF as a viewer opening the file shows it.

PDFium extracts text in a layer that is off as if it were shown and does not expose the catalog's
layer settings, so those are read with pypdf: the groups the default configuration turns off,
membership dictionaries (OCMD) whose policy or visibility expression comes out off, and forms in
such layers. Content streams are read only in files that have a layer that is off.
"""

from __future__ import annotations

import ctypes
import io
from dataclasses import dataclass
from typing import Any

FORM_OFF = frozenset({"/OC of a form that is off"})  # a layer mark for a form whose /OC is off


class Layers:
    """The document's optional content as a viewer opening it shows it: which groups (layers) are
    off, read from the catalog's /OCProperties on first use only (most PDFs have no layers)."""

    def __init__(self, data: bytes, password: str | None = None) -> None:
        self._data = data
        self._password = password
        self._reader: Any = None
        self._off: set[int] | None = None  # object numbers of the groups that are off
        self._off_names: set[str] = set()

    def _load(self) -> None:
        if self._off is not None:
            return
        self._off = set()
        try:
            import pypdf

            self._reader = pypdf.PdfReader(io.BytesIO(self._data), strict=False)
            if self._reader.is_encrypted:
                self._reader.decrypt(self._password or "")
            props = self._reader.trailer["/Root"].get("/OCProperties")
            if props is None:
                return
            props = props.get_object()
            config = props.get("/D", {}).get_object() if "/D" in props else {}
            groups = [_ref(g) for g in props.get("/OCGs", [])]
            if config.get("/BaseState") == "/OFF":
                on = {_ref(g) for g in config.get("/ON", [])}
                self._off = {g for g in groups if g not in on}
            else:
                self._off = {_ref(g) for g in config.get("/OFF", [])}
            for g in props.get("/OCGs", []):
                if _ref(g) in self._off:
                    self._off_names.add(str(g.get_object().get("/Name", "")))
        except Exception:  # PDFium read the file; layer settings pypdf cannot read leave every layer shown
            self._reader = None

    def forms(self, page_index: int) -> list[Form]:
        """The forms the page draws (its `Do` of form XObjects, in content order, nested), each
        with whether its own `/OC` entry puts it in a layer that is off. Empty when the file has
        no layers, so PDFs without them never pay for reading their content streams."""
        self._load()
        if not self._off or self._reader is None:
            return []
        try:
            page = self._reader.pages[page_index]
            return _forms(page.get_contents(), page.get("/Resources"), self, self._reader, 0)
        except Exception:  # unreadable here: the marked-content rules still apply
            return []

    def hidden_group(self, name: str) -> bool:
        """A group (by its /Name, which is what PDFium tells of a marked object) that is off; a name
        shared by a group that is on and one that is off counts as off."""
        self._load()
        return name in self._off_names

    def hidden_membership(self, page_index: int, keys: frozenset[str]) -> bool:
        """A membership dictionary (OCMD) on this page, known by its keys, that comes out off. PDFium
        does not say which one marks an object: when the page's dictionaries with these keys
        disagree, off wins."""
        self._load()
        if self._reader is None:
            return False
        try:
            resources = self._reader.pages[page_index].get("/Resources")
            props: Any = resources.get_object().get("/Properties", {}) if resources is not None else {}
            props = props.get_object() if hasattr(props, "get_object") else props
            verdicts = [
                not self.visible(d.get_object())
                for d in props.values()
                if d.get_object().get("/Type") == "/OCMD" and set(d.get_object()) == keys
            ]
        except Exception:  # unreadable resources: no verdict
            return False
        return any(verdicts)

    def visible(self, d: Any, depth: int = 0) -> bool:
        """Whether a group, membership dictionary or visibility expression is shown."""
        assert self._off is not None
        if depth > 16:
            return True
        if isinstance(d, list):  # a visibility expression: [/And|/Or|/Not operand...]
            op, args = str(d[0]) if d else "", [a.get_object() for a in d[1:]]
            shown = [self.visible(a, depth + 1) for a in args]
            return {"/And": all(shown), "/Or": any(shown), "/Not": not shown[0] if shown else True}.get(op, True)
        if d.get("/Type") == "/OCG":
            return _ref(d) not in self._off
        if "/VE" in d:
            return self.visible(d["/VE"].get_object(), depth + 1)
        groups = d.get("/OCGs", [])
        groups = groups.get_object() if hasattr(groups, "get_object") else groups
        refs = [groups] if not isinstance(groups, list) else list(groups)
        shown = [_ref(g) not in self._off for g in refs]
        policy = str(d.get("/P", "/AnyOn"))
        if not shown:
            return True
        return {"/AllOn": all(shown), "/AnyOff": not all(shown), "/AllOff": not any(shown)}.get(policy, any(shown))


@dataclass
class Form:
    hidden: bool
    children: list[Form]


def _forms(contents: Any, resources: Any, layers: Layers, reader: Any, depth: int) -> list[Form]:
    from pypdf.generic import ContentStream

    if contents is None or depth > 8:
        return []
    resources = resources.get_object() if resources is not None else {}
    xobjects = resources.get("/XObject", {})
    xobjects = xobjects.get_object() if hasattr(xobjects, "get_object") else xobjects
    out: list[Form] = []
    for operands, operator in ContentStream(contents, reader).operations:
        if operator != b"Do" or not operands or operands[0] not in xobjects:
            continue
        xobj = xobjects[operands[0]].get_object()
        if xobj.get("/Subtype") != "/Form":
            continue
        oc = xobj.get("/OC")
        hidden = oc is not None and not layers.visible(oc.get_object())
        inner = _forms(xobj, xobj.get("/Resources") or resources, layers, reader, depth + 1)
        out.append(Form(hidden, inner))
    return out


def _ref(obj: Any) -> int:
    ref = getattr(obj, "indirect_reference", None) or obj
    return int(getattr(ref, "idnum", id(obj)))


def layer_marks(obj: Any) -> list[str | frozenset[str]]:
    """The optional-content marks (`/OC ... BDC`) around a page object: the group's /Name, or the
    keys of a membership dictionary (PDFium shows its keys, not the groups its arrays name)."""
    import pypdfium2.raw as c

    count = c.FPDFPageObj_CountMarks(obj)
    if count <= 0:
        return []
    out: list[str | frozenset[str]] = []
    buf = (ctypes.c_ushort * 256)()
    size = ctypes.c_ulong()
    for m in range(count):
        mark = c.FPDFPageObj_GetMark(obj, m)
        if not mark or not c.FPDFPageObjMark_GetName(mark, buf, ctypes.sizeof(buf), size):
            continue
        if _utf16(buf, size.value) != "OC":
            continue
        if c.FPDFPageObjMark_GetParamValueType(mark, b"Name") == c.FPDF_OBJECT_STRING and (
            c.FPDFPageObjMark_GetParamStringValue(mark, b"Name", buf, ctypes.sizeof(buf), size)
        ):
            out.append(_utf16(buf, size.value))
        else:
            keys = set()
            for k in range(c.FPDFPageObjMark_CountParams(mark)):
                if c.FPDFPageObjMark_GetParamKey(mark, k, buf, ctypes.sizeof(buf), size):
                    keys.add("/" + _utf16(buf, size.value))
            out.append(frozenset(keys))
    return out


def _utf16(buf: Any, nbytes: int) -> str:
    return bytes(buf)[: max(0, nbytes)].decode("utf-16-le", "replace").rstrip("\x00")


def judge_layers(texts: list[Any], layers: Layers, page_index: int) -> None:
    """Text in a layer the viewer does not show."""
    for t in texts:
        if t.kind is not None or not t.layers:
            continue
        for mark in t.layers:
            if mark == FORM_OFF or (
                layers.hidden_group(mark) if isinstance(mark, str) else layers.hidden_membership(page_index, mark)
            ):
                t.kind = "text in a layer that is off"
                break
