"""Errors a user should see, shared by every Archivist package."""

from __future__ import annotations


class ArchivistError(Exception):
    """Root of every error whose message is meant for the user as it stands."""


class ModelNotFoundError(ArchivistError):
    """A model spec names nothing that can be loaded here."""


class ContextOverflowError(ArchivistError):
    """A prompt does not fit the model's context window."""

    def __init__(self, prompt_tokens: int, context_window: int, detail: str = "") -> None:
        self.prompt_tokens = prompt_tokens
        self.context_window = context_window
        msg = f"prompt has {prompt_tokens:,} tokens; the model's context window is {context_window:,}"
        super().__init__(msg + (f" ({detail})" if detail else ""))
