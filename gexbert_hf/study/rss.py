"""Resident memory of this process, the one reader behind the speed benchmark and the build-scale measurement.

Linux keeps the numbers in /proc/self/status (kB); elsewhere only `ru_maxrss`, the lifetime peak, is known.
"""

from __future__ import annotations

import resource
import sys


def process_memory() -> dict[str, int]:
    """Bytes of /proc/self/status's VmRSS (resident now), RssAnon (its anonymous part: file-backed pages such as
    memory-mapped Arrow are reclaimable, these are not) and VmHWM (the peak), 0 where unknown; VmHWM falls back to
    `ru_maxrss` off Linux."""
    fields = {"VmRSS": 0, "RssAnon": 0, "VmHWM": 0}
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key in fields:
                    fields[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return fields | {"VmHWM": fields["VmHWM"] or lifetime_peak_rss()}


def lifetime_peak_rss() -> int:
    """`ru_maxrss` in bytes (kB on Linux, bytes on macOS): the process's peak since it started."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def reset_peak_rss() -> bool:
    """Linux lets a process reset its RSS high-water mark (VmHWM); elsewhere the peak stays the lifetime peak."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False
