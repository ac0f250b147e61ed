"""Handing freed memory back to the operating system between the large steps of a run."""

from __future__ import annotations

import functools
import os
import sys

__all__ = ["bound_allocator_caches", "release_freed_memory"]

_M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)
_ARENAS = 2
_bounded = False


@functools.cache
def _glibc() -> object | None:
    """The C library when it is glibc (loaded once), else None."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc has it; musl and others do not
    except (OSError, AttributeError):
        return None
    return libc


def bound_allocator_caches() -> None:
    """Keep the memory a run's stages free returnable, so each stage's peak does not sit on the last one's.

    Arrow then allocates through the system allocator (its default, mimalloc, keeps freed pages in the heap of
    each thread that freed them, out of reach of ``release_freed_memory``), and glibc keeps at most two arenas
    (by default up to eight per core, each holding its own freed memory; the run's task threads would each get
    one). Once per process, best before pyarrow is imported and before the run's threads start (``trainguard
    ingest`` and ``serve`` call it first thing); a process that set ``ARROW_DEFAULT_MEMORY_POOL`` or
    ``MALLOC_ARENA_MAX`` itself keeps its own choice.
    """
    global _bounded
    if _bounded:
        return
    _bounded = True
    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        # read by Arrow's C++ default pool when first used (Parquet reads take it from there): effective in full
        # before pyarrow is imported, and inherited by the run's subprocesses (Dask workers)
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
        if "pyarrow" in sys.modules:  # too late for the C++ default: what pyarrow's Python calls allocate, then
            import pyarrow as pa

            pa.set_memory_pool(pa.system_memory_pool())
    libc = _glibc()
    if libc is not None and not os.environ.get("MALLOC_ARENA_MAX"):
        libc.mallopt(_M_ARENA_MAX, _ARENAS)  # type: ignore[attr-defined]


def release_freed_memory() -> None:
    """Return memory freed by a step to the OS (glibc keeps it in per-thread arenas otherwise, so the next
    step's peak would sit on top of the last one's), and what Arrow's own allocator (mimalloc or jemalloc)
    still holds. The glibc part is a no-op off glibc."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)  # type: ignore[attr-defined]
