"""Keep large CPU tensors' memory in the heap instead of a fresh memory map per allocation (glibc).

glibc serves every block above its mmap threshold (128 KiB at start, adapting up to 32 MiB) with a
new memory map and unmaps it on free, so each activation of a UNet batch or each decoded image is
faulted in again page by page, and the heap above the trim threshold is handed back to the kernel
after every step. Measured on 2 cores: generating 64 images with the demo model took 9.6 s and 7.5 s
with the thresholds below (``bench/allocator.py``). Freed memory up to ``TRIM_BYTES`` stays with the
process. Skipped where the C library is not glibc, when the user set glibc's own variables, and with
``MEMAUDIT_MALLOC=default``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

MMAP_THRESHOLD_BYTES = 256 << 20  # blocks below this come from the heap
TRIM_BYTES = 512 << 20  # free heap above this goes back to the kernel
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
tuned = False  # whether this process runs with the thresholds above


def tune_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds; True if this process runs with them."""
    global tuned
    if tuned or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return tuned
    if os.environ.get("MEMAUDIT_MALLOC") == "default" or any(name in os.environ for name in _USER_SETTINGS):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    tuned = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES)
    )
    return tuned
