"""The run's allocator settings: Arrow on the system allocator, at most two glibc arenas, the user's choice kept."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest

# Six threads allocate and free 1 MB blocks at once, then glibc's malloc_stats() lists its arenas on stderr.
_PROBE = textwrap.dedent("""
    import ctypes, sys, threading
    import pyarrow as pa
    if sys.argv[1] == "bound":
        from pipelines._memory import bound_allocator_caches
        bound_allocator_caches()
    start = threading.Barrier(6)
    def work():
        start.wait()
        for _ in range(200):
            blocks = [bytearray(1 << 20) for _ in range(4)]
            del blocks
    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads: t.start()
    for t in threads: t.join()
    print(pa.default_memory_pool().backend_name)
    sys.stdout.flush()
    ctypes.CDLL("libc.so.6").malloc_stats()
""")


def _probe(mode: str, **env: str) -> tuple[str, int]:
    clean = {k: v for k, v in os.environ.items() if k not in ("ARROW_DEFAULT_MEMORY_POOL", "MALLOC_ARENA_MAX")}
    proc = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, timeout=120,
                          env=dict(clean, **env), check=True)
    return proc.stdout.strip(), proc.stderr.count("Arena ")


glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the arena limit and malloc_stats are glibc's")


@glibc
def test_bound_caches_use_the_system_pool_and_two_arenas() -> None:
    pool, arenas = _probe("bound")
    assert pool == "system"
    assert 1 <= arenas <= 2
    default_pool, default_arenas = _probe("default")  # the probe can tell: without the call there are more
    assert default_pool != "system" and default_arenas > 2


@glibc
def test_bound_caches_keep_the_users_own_settings() -> None:
    pool, arenas = _probe("bound", ARROW_DEFAULT_MEMORY_POOL="mimalloc", MALLOC_ARENA_MAX="4")
    assert pool == "mimalloc"
    assert arenas > 2
