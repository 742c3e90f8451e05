"""Snapshots of the llama.cpp KV cache, so follow-up turns only evaluate their new tokens.

llama-cpp-python already reuses the live context's longest common prefix with a new prompt.
A single context, though, serves many conversations: after another conversation used it, the
prefix is gone. This cache keeps the KV state at the end of recent generations (an LRU bounded
in bytes) and, before a new prompt, restores the snapshot sharing the longest prefix with it
when that beats what the live context holds.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class _Snapshot:
    tokens: tuple[int, ...]
    data: bytes


def common_prefix(a: Any, b: list[int]) -> int:
    """Length of the common prefix of two token sequences."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if int(x) != y:
            break
        n += 1
    return n


class KVCache:
    """An LRU of KV snapshots keyed by the tokens they hold."""

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity = capacity_bytes
        self._items: OrderedDict[tuple[int, ...], _Snapshot] = OrderedDict()
        self.restores = 0

    @property
    def size(self) -> int:
        return sum(len(s.data) for s in self._items.values())

    def save(self, llm: Any) -> None:
        """Snapshot the live context (tokens evaluated so far)."""
        import llama_cpp

        n = int(llm.n_tokens)
        if n == 0:
            return
        tokens = tuple(int(t) for t in llm._input_ids[:n])
        size = int(llama_cpp.llama_state_get_size(llm._ctx.ctx))
        if size > self.capacity:
            return
        buf = (ctypes.c_uint8 * size)()
        used = int(llama_cpp.llama_state_get_data(llm._ctx.ctx, buf, size))
        # a snapshot that extends an older one makes it redundant
        for key in [k for k in self._items if len(k) <= n and tokens[: len(k)] == k]:
            del self._items[key]
        self._items[tokens] = _Snapshot(tokens, bytes(memoryview(buf)[:used]))
        while self.size > self.capacity and self._items:
            self._items.popitem(last=False)

    def restore_best(self, llm: Any, tokens: list[int]) -> int:
        """Load the snapshot sharing the longest prefix with `tokens` if it beats the live context.

        A snapshot may hold more than the shared prefix (another conversation of the same
        assistant shares only the instructions): llama-cpp-python's generate() then drops the
        rest of the KV cache and evaluates the prompt from the shared prefix on. Returns the
        reusable prefix length."""
        import llama_cpp

        live = common_prefix(llm._input_ids[: llm.n_tokens], tokens)
        best, best_len = None, live
        for snap in self._items.values():
            if len(snap.tokens) <= best_len:
                continue
            shared = min(common_prefix(snap.tokens, tokens), len(tokens) - 1)
            if shared > best_len:
                best, best_len = snap, shared
        if best is None:
            return live
        buf = (ctypes.c_uint8 * len(best.data)).from_buffer_copy(best.data)
        llama_cpp.llama_state_set_data(llm._ctx.ctx, buf, len(best.data))
        llm.n_tokens = len(best.tokens)
        llm.input_ids[: len(best.tokens)] = best.tokens
        if hasattr(llm, "_requires_eval"):
            llm._requires_eval = True  # the restored logits are not fresh
        self._items.move_to_end(best.tokens)
        self.restores += 1
        return best_len
