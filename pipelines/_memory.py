"""Handing freed memory back to the operating system between the large steps of a run."""

from __future__ import annotations

import sys

__all__ = ["release_freed_memory"]


def release_freed_memory() -> None:
    """Return memory freed by a step to the OS (glibc keeps it in per-thread arenas otherwise, so the next
    step's peak would sit on top of the last one's), and what Arrow's own allocator (mimalloc or jemalloc)
    still holds. The glibc part is a no-op off glibc."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass
