"""Tools, the assistant's peripherals: a calculator, a code runner and a web page reader.

Two tiers. Tools any model can use run before the model answers (the calculator on arithmetic in
the question, the web reader on a URL in it) or when the user presses Run (code); their results
enter the prompt as marked, untrusted passages and are shown to the user as cards. Models whose
chat template supports tools may also call them (and `search_documents`) themselves, in at most
three rounds (`assistants.tools.calls`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

TOOL_NAMES = ("calculator", "code", "web")


@dataclass
class ToolStep:
    """One use of a tool, as the chat shows it and the API reports it."""

    tool: str  # calculator | code | web | search_documents
    input: str  # the expression, the code, the URL or the query
    output: str  # the result text (what the model reads), or the reason it failed
    ok: bool = True
    card: str = ""  # one line for the user, e.g. "12.5% of 3,840 = 480"
    where: str = ""  # code: where it ran; web: the final URL after redirects
    by: str = "archivist"  # archivist: run before the model answered; model: the model called it
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["seconds"] = round(self.seconds, 4)
        return d
