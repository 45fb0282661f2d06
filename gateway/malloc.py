"""glibc malloc settings for a long-running gateway on a small edge box.

By default glibc gives each thread that allocates its own arena (up to 8 per core) and
keeps freed memory for reuse; after a burst (a broker replaying a backlog, the MQTT,
commit and forwarder threads all allocating) the resident size stays at its peak. Two
arenas and fixed trim/mmap thresholds of 128 KiB return what a burst freed: the
ingest benchmark's peak RSS fell from ~146 to ~134 MB (bench/README.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
ARENAS = 2
THRESHOLD_BYTES = 128 * 1024


def tune() -> bool:
    """Apply the settings (before threads start); False where libc is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok = all(
        mallopt(param, value) == 1
        for param, value in (
            (_M_ARENA_MAX, ARENAS),
            (_M_TRIM_THRESHOLD, THRESHOLD_BYTES),
            (_M_MMAP_THRESHOLD, THRESHOLD_BYTES),
        )
    )
    if not ok:
        log.warning("mallopt refused a setting: memory after bursts may stay high")
    return ok
