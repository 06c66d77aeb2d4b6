"""How many CPUs this process may use: the container's CPU quota (cgroup v2 or v1), else its CPU affinity.

A container limited to 2 CPUs on a 64-core host must size its thread pools for 2, which `os.cpu_count()`
does not tell.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def available(cgroup: Path = CGROUP) -> int:
    """The CPUs this process may use, at least 1: the quota rounded up, within the affinity."""
    cores = len(os.sched_getaffinity(0))
    quota = _quota(cgroup)
    return max(1, min(cores, math.ceil(quota)) if quota else cores)


def _quota(cgroup: Path) -> float | None:
    """The CPU quota in CPUs (`cpu.max`, or v1's `cpu.cfs_quota_us` / `cpu.cfs_period_us`); None: no limit."""
    try:
        limit, period = (cgroup / "cpu.max").read_text().split()
        return None if limit == "max" else int(limit) / int(period)
    except (OSError, ValueError):
        pass
    try:
        limit_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return limit_us / period_us if limit_us > 0 and period_us > 0 else None
