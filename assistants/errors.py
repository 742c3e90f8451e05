"""Assistant errors."""

from __future__ import annotations

from runtime.errors import ArchivistError


class AssistantError(ArchivistError):
    """An assistant file is missing or invalid; `problems` lists each as 'path: problem'."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source, self.problems = source, problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems))
