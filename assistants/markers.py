"""The data marker of a seeded request: the passages are fenced by a marker a document cannot know
(else it could close the data early and speak as the user); a seeded request needs the same
marker for the same seed and question, so it is keyed by a secret kept in the workspace."""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import time
from pathlib import Path


def workspace_key(path: Path) -> bytes:
    """32 random bytes kept in `path` (owner-only), made by whichever process asks first; a damaged
    file is replaced, and a workspace that cannot be written gets a key for this process only."""
    for _ in range(2):  # the second try follows the removal of a damaged file
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            for _ in range(50):  # another process may be writing it right now
                key = path.read_bytes()
                if len(key) == 32:
                    return key
                time.sleep(0.01)
            path.unlink(missing_ok=True)
            continue
        except OSError:
            break
        key = secrets.token_bytes(32)
        with contextlib.suppress(OSError), os.fdopen(fd, "wb") as f:
            f.write(key)
        return key
    return secrets.token_bytes(32)


def seeded_marker(key: bytes, seed: int, question: str) -> str:
    """The same for the same seed and question (so the prompt, and with it the answer, repeats)."""
    return hmac.new(key, f"{seed}\0{question}".encode(), "sha256").hexdigest()[:8]
