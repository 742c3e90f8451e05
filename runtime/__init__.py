"""The CPU and kernel: llama.cpp models behind a small text-generation protocol.

Public API:
- `TextGenerator` (protocol), `Message`, `GenerationParams`, `GenerationStats`
- `LlamaCppGenerator`: a GGUF model in-process (chat template from the GGUF, streaming,
  token counting, calls serialized in arrival order)
- `ModelPool`: one loaded model per spec and settings, shared by every assistant
- `resolve_model(spec)`: `bundled:smollm2-135m`, a path, or `hf:org/repo/file.gguf`
- `ArchivistError` (root of user-facing errors), `ContextOverflowError`, `ModelNotFoundError`
"""

from runtime.errors import ArchivistError, ContextOverflowError, ModelNotFoundError
from runtime.llama import LlamaCppGenerator
from runtime.protocol import GenerationParams, GenerationStats, Message, TextGenerator
from runtime.registry import ModelPool
from runtime.spec import BUNDLED, DEFAULT_MODEL, resolve_model

__all__ = [
    "BUNDLED",
    "DEFAULT_MODEL",
    "ArchivistError",
    "ContextOverflowError",
    "GenerationParams",
    "GenerationStats",
    "LlamaCppGenerator",
    "Message",
    "ModelNotFoundError",
    "ModelPool",
    "TextGenerator",
    "resolve_model",
]
