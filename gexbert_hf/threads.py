"""CPU threading that degrades gracefully on shared servers and busy laptops (issue #14, item 11).

Why: torch starts one OpenMP thread per core, and its OpenMP runtime (libgomp) spin-waits ~300,000 iterations
(`GOMP_SPINCOUNT`) at the end of every parallel region. When another process holds a core, the spinning thread
burns the time slice its descheduled partner needs, and each of the thousands of small ops per training step waits
for the scheduler. Measured on the 2-core dev machine (AMD EPYC, torch 2.13 CPU, libgomp; medians of 3 runs while
other engineers' jobs also ran, load 1-5), per op: a (32x96x64)@(32x64x96) batched matmul; per step: a 64-wide
transformer layer's forward, backward and AdamW step on 32x96 tokens:

    neighbour            threads  wait policy   bmm ms   step ms
    none                 1        default        0.43      44
    none                 2        default        2.27     360     (5-8x slower than one thread)
    none                 2        PASSIVE        0.44      56
    busy `while True`    1        default        1.61     105
    busy `while True`    2        default       >25 s for 500 bmm + 30 steps, twice out of three (collapse)
    busy `while True`    2        PASSIVE        1.78     103
    busy `while True`    1        PASSIVE        1.58      98

So: `OMP_WAIT_POLICY=PASSIVE` alone removes the collapse, and one thread is never materially slower for models
this size. The package therefore (1) sets `OMP_WAIT_POLICY=PASSIVE` on import, before torch loads its OpenMP
runtime, unless the user set it; (2) at the start of every training and inference loop (and in the CLI) uses as
many threads as there are cores not busy with other processes, measured once per process; `OMP_NUM_THREADS`, an
explicit `threads` argument and a non-default count set with `torch.set_num_threads` win.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from pathlib import Path

from .errors import GexBertError

logger = logging.getLogger(__name__)

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
PROC_STAT = Path("/proc/stat")
SAMPLE_SECONDS = 0.1
_chosen: int | None = None  # the count this module last chose, so later loops do not measure again


class ThreadsArgumentError(GexBertError, ValueError):
    """A thread count that cannot be used (zero, negative)."""


def _affinity() -> set[int]:
    """The CPUs this process may run on; OpenMP's default thread count is their number."""
    if hasattr(os, "sched_getaffinity"):
        return os.sched_getaffinity(0)
    return set(range(os.cpu_count() or 1))


def prefer_passive_wait_policy() -> bool:
    """Ask OpenMP threads to sleep, not spin, while waiting: idle spinning starves a partner thread whose core is
    shared with another process. Returns False when this process's runtime already started spinning (torch was
    imported first, with no policy set); child processes inherit the setting anyway."""
    chosen_by_user = "OMP_WAIT_POLICY" in os.environ
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return chosen_by_user or "torch" not in sys.modules


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota (containers)."""
    cores = len(_affinity())
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def _busy_jiffies(cpus: set[int]) -> tuple[int, int]:
    """(busy, total) clock ticks since boot summed over `cpus`, from /proc/stat (iowait counts as idle)."""
    busy = total = 0
    for line in PROC_STAT.read_text().splitlines():
        name, *fields = line.split()
        if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus):
            continue
        ticks = [int(value) for value in fields[:8]]  # user nice system idle iowait irq softirq steal
        total += sum(ticks)
        busy += sum(ticks) - ticks[3] - ticks[4]
    return busy, total


def busy_cores(seconds: float = SAMPLE_SECONDS) -> float:
    """Cores kept busy by other processes right now: a short /proc/stat sample over this process's cores, less
    this process's own CPU time; the 1-minute load average where /proc/stat is absent (macOS)."""
    cpus = _affinity()
    try:
        busy_before, total_before = _busy_jiffies(cpus)
        own_before, started = time.process_time(), time.perf_counter()
        time.sleep(seconds)
        busy_after, total_after = _busy_jiffies(cpus)
        own = (time.process_time() - own_before) / (time.perf_counter() - started)
    except (OSError, ValueError):
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if total_after <= total_before:
        return 0.0
    share = (busy_after - busy_before) / (total_after - total_before)
    return max(0.0, share * len(cpus) - own)


def choose_thread_count(cores: int, busy: float, runtime_default: int, spinning: bool = False) -> int:
    """The cores left free by other processes, at least one, at most the runtime's default. A half-busy core counts
    as free for threads that sleep while waiting, as busy for spinning ones (they collapse when they share a core)."""
    free = cores - busy
    return max(1, min(runtime_default, cores, math.floor(free) if spinning else int(free + 0.5)))


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op thread count for a training or inference loop and return it.

    An explicit `threads`, `OMP_NUM_THREADS`, or a count set with `torch.set_num_threads` is kept (one equal to
    torch's default cannot be told apart from it: pass `threads` to pin that); otherwise the count is chosen once
    per process from the cores other processes leave free (see the module doc).
    """
    global _chosen
    import torch

    if threads is not None:
        if threads < 1:
            raise ThreadsArgumentError(f"threads must be a positive number of CPU threads, got {threads}")
        torch.set_num_threads(threads)
        _chosen = threads  # the later loops of this process keep it, even where it equals torch's default
        return threads
    current, cores = torch.get_num_threads(), available_cores()
    if os.environ.get("OMP_NUM_THREADS") or current == _chosen or current != len(_affinity()):
        return current  # the user's choice, or ours already
    busy = busy_cores()
    _chosen = choose_thread_count(cores, busy, current, spinning=not WAIT_POLICY_APPLIED)
    torch.set_num_threads(_chosen)
    logger.info("torch threads: %d (%d cores, %.1f busy with other processes, OMP_WAIT_POLICY=%s%s)", _chosen, cores,
                busy, os.environ["OMP_WAIT_POLICY"], "" if WAIT_POLICY_APPLIED else ", set after torch loaded")
    return _chosen


# on import: gexbert_hf/__init__.py imports this module before anything that loads torch
WAIT_POLICY_APPLIED = prefer_passive_wait_policy()
