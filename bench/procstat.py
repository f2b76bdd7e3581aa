"""CPU time and memory of process trees, read from /proc (Linux only, no dependencies)."""

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    """One line of /proc/<pid>/stat, reduced to what the suite needs."""

    pid: int
    ppid: int
    start_time: int
    # utime + stime of the process plus cutime + cstime of the children it has reaped, so the
    # CPU of short-lived children (PostgreSQL backends that exit) is not lost.
    cpu_ticks: int


def read_stat(pid: int) -> ProcStat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may contain spaces and parentheses: the fields start after the last ')'.
    rest = raw[raw.rfind(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(v) for v in rest[11:15])
    return ProcStat(
        pid=pid, ppid=int(rest[1]), start_time=int(rest[19]), cpu_ticks=utime + stime + cutime + cstime
    )


def all_stats() -> dict[int, ProcStat]:
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read_stat(int(entry))
            if stat is not None:
                stats[stat.pid] = stat
    return stats


def descendants(root: int, stats: dict[int, ProcStat]) -> list[int]:
    """`root` and every process below it that is alive now."""
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid in stats:
            found.append(pid)
            stack.extend(children.get(pid, ()))
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def database_backends(postmaster_pid: int | None, database: str) -> list[int]:
    """The PostgreSQL server's backends connected to `database` (not its other sessions)."""
    if not postmaster_pid:
        return []
    needle = f" {database} "
    return [
        stat.pid
        for stat in all_stats().values()
        if stat.ppid == postmaster_pid and needle in cmdline(stat.pid)
    ]


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB; (0, 0) when the process is gone."""
    values = {"VmRSS": 0, "VmHWM": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0])
    except OSError:
        pass
    return values["VmRSS"], values["VmHWM"]


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def own_cpu_seconds() -> float:
    """CPU of this process and of the children it has reaped (the Celery client runs)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


Roles = Callable[[], dict[str, list[int]]]


@dataclass
class CpuSnapshot:
    """CPU ticks per role, per (pid, start time) so a reused pid is never mistaken for another."""

    ticks: dict[str, dict[tuple[int, int], int]] = field(default_factory=dict)

    def seconds_since(self, earlier: "CpuSnapshot") -> dict[str, float]:
        result = {}
        for role, now in self.ticks.items():
            before = earlier.ticks.get(role, {})
            delta = sum(ticks - before.get(key, 0) for key, ticks in now.items())
            result[role] = max(delta, 0) / CLOCK_TICKS
        return result


class RoleMeter:
    """CPU per role (whole process trees) and peak RSS per runner process, sampled in a thread.

    `roles` returns role -> root pids; it is looked up again every second so restarted processes
    are followed. Peak RSS is the largest VmRSS sampled every 100 ms during a run: the kernel's
    VmHWM could be reset per run (clear_refs), but writing to the measured processes is more
    intrusion than a benchmark should make; their lifetime VmHWM is kept alongside. Only the roles
    in `rss_roles` are sampled (PostgreSQL and Redis are shared servers).
    """

    def __init__(self, roles: Roles, *, rss_roles: tuple[str, ...], interval: float = 0.1):
        self.roles = roles
        self.rss_roles = rss_roles
        self.interval = interval
        self.peaks: dict[str, dict[str, int]] = {}
        self.lifetime_peaks: dict[str, dict[str, int]] = {}
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    def cpu(self) -> CpuSnapshot:
        stats = all_stats()
        snapshot = CpuSnapshot()
        for role, roots in self.roles().items():
            ticks = snapshot.ticks.setdefault(role, {})
            for root in roots:
                for pid in descendants(root, stats):
                    stat = stats[pid]
                    ticks[(pid, stat.start_time)] = stat.cpu_ticks
        return snapshot

    def start_run(self) -> None:
        with self.lock:
            self.peaks, self.lifetime_peaks = {}, {}
        self.stop_event.clear()
        self.thread = threading.Thread(target=self._sample_forever, name="rss-sampler", daemon=True)
        self.thread.start()

    def finish_run(self) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
        """Stop sampling; (peak VmRSS of this run, lifetime VmHWM), each role -> {"<role>:<pid>": KiB}."""
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join()
        self._sample(self._runner_pids())
        with self.lock:
            return (
                {role: dict(procs) for role, procs in self.peaks.items()},
                {role: dict(procs) for role, procs in self.lifetime_peaks.items()},
            )

    def _runner_pids(self) -> list[tuple[str, int]]:
        stats = all_stats()
        roles = self.roles()
        return [
            (role, pid)
            for role in self.rss_roles
            for root in roles.get(role, ())
            for pid in descendants(root, stats)
        ]

    def _sample_forever(self) -> None:
        pids, refreshed = self._runner_pids(), time.monotonic()
        while not self.stop_event.wait(self.interval):
            if time.monotonic() - refreshed > 1.0:
                pids, refreshed = self._runner_pids(), time.monotonic()
            self._sample(pids)

    def _sample(self, pids: list[tuple[str, int]]) -> None:
        for role, pid in pids:
            rss, hwm = memory_kib(pid)
            label = f"{role}:{pid}"
            with self.lock:
                procs = self.peaks.setdefault(role, {})
                procs[label] = max(procs.get(label, 0), rss)
                lifetime = self.lifetime_peaks.setdefault(role, {})
                lifetime[label] = max(lifetime.get(label, 0), hwm)
