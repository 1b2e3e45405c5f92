"""The ensemble engine: a batch of runs advanced in lock-step with the same rules.

Runs of one scenario structure (same actors and period; parameter values, event effect
values and seeds may differ per run) are stacked into one `WorldState` with a leading run
axis, and every quarter calls the same `sim.engine.step` functions the Mesa agents call, so there
is one definition of the model's arithmetic. Each run draws exactly the random numbers it
would draw alone, from its own generator seeded like the Mesa model's, and its powers move
in its own random order. The result for a run equals the Mesa model's to rounding.
No Mesa import, no I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from sim.engine import kernels as K
from sim.engine import reporters
from sim.engine import step as rules
from sim.engine.kernels import QuarterDraws
from sim.world.quarters import format_quarter
from sim.world.state import EventSchedule, WorldState
from sim.world.values import Scenario

DRAW_BLOCK = 12
"""Quarters of random numbers drawn at a time for every run of a batch."""
SHARE_REPORTERS = ("quarter", "state_influence", "channel_shares", "region_influence",
                   "region_channels")


@functools.cache  # a setting of the process: once is enough
def keep_freed_memory(trim_bytes: int = 512 << 20, mmap_bytes: int = 256 << 20) -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of returning it at once.

    A batch's arrays are hundreds of KB to tens of MB. By default glibc serves big blocks
    with fresh mmaps and gives the top of the heap back to the OS when a few hundred KB
    are free, so each new batch page-faulted its memory in again: 95,000 minor faults
    (0.23 s) in a worker's first 1,000-run chunk and 12,700 in each later one; with these
    thresholds 19,000 and none. A no-op (False) where malloc is not glibc's.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
        return bool(libc.mallopt(m_trim_threshold, trim_bytes)
                    and libc.mallopt(m_mmap_threshold, mmap_bytes))
    except (OSError, AttributeError):
        return False


def _shared_schedule(scenarios: Sequence[Scenario]) -> EventSchedule | None:
    """One schedule for every run when the runs' events differ at most in effect values."""

    def shape(s):
        return tuple((e.id, e.quarter, e.duration, tuple((f.op, f.paths) for f in e.effects))
                     for e in s.events)

    if all(s is scenarios[0] for s in scenarios):  # replications of one scenario
        return EventSchedule(scenarios[0].events)
    first = shape(scenarios[0])
    if any(shape(s) != first for s in scenarios[1:]):
        return None
    values = {(i, j): np.array([s.events[i].effects[j].value for s in scenarios])
              for i, ev in enumerate(scenarios[0].events) for j in range(len(ev.effects))}
    return EventSchedule(scenarios[0].events, values)


class Ensemble:
    """A batch of runs: `scenarios[b]` with `seeds[b]`, stepped together.

    Args:
        scenarios: One scenario per run (already with parameter overrides applied); all
            must share the world's actors, the period and the regional weighting.
        seeds: One seed per run, as given to the Mesa model's `rng`.
        record: Reporter names to record each quarter (default: the shares only).

    Raises:
        ValueError: the runs cannot share a batch.
    """

    def __init__(self, scenarios: Sequence[Scenario], seeds: Sequence[int],
                 record: Sequence[str] = SHARE_REPORTERS):
        if len(scenarios) != len(seeds) or not scenarios:
            raise ValueError("an ensemble needs one seed per scenario, and at least one run")
        keep_freed_memory()
        first = scenarios[0]
        for s in scenarios[1:]:
            if (s.start, s.end) != (first.start, first.end):
                raise ValueError("runs in a batch must share their period")
        self.scenarios = list(scenarios)
        self.seeds = [int(x) for x in seeds]
        worlds: dict[int, WorldState] = {}  # one world per distinct scenario object
        for s in self.scenarios:
            if id(s) not in worlds:
                worlds[id(s)] = WorldState(s)
        self.world = WorldState.stack([worlds[id(s)] for s in self.scenarios])
        self.shared_schedule = _shared_schedule(scenarios)
        self.schedules = ([] if self.shared_schedule else
                          [EventSchedule(s.events) for s in scenarios])
        self.start, self.end = first.start, first.end
        self.quarter = first.start - 1
        self.event_log: list[list[tuple[str, str]]] = [[] for _ in scenarios]
        self.reporters = {name: reporters.MODEL_REPORTERS[name] for name in record}
        self.records: dict[str, list] = {name: [] for name in record}
        self._channels = bool({"channel_shares", "region_channels"} & set(record))
        rules.initialise(self.world)
        w = self.world
        # Each run's own generator, seeded as the Mesa model's. The Mesa model draws all its
        # quarters at once; the stream is sequential, so drawing a block of quarters at a
        # time gives the same numbers and keeps the buffer small (B x 12 x 153 floats).
        self.rngs = [np.random.default_rng(seed) for seed in self.seeds]
        self._block = np.empty((self.size, DRAW_BLOCK, K.draw_size(w.n_powers, w.n_states,
                                                                   len(w.sectors))))
        self._block_start = None

    @property
    def size(self) -> int:
        """Number of runs in the batch."""
        return len(self.seeds)

    @property
    def quarter_label(self) -> str:
        """The last simulated quarter, YYYYQn."""
        return format_quarter(self.quarter)

    @property
    def finished(self) -> bool:
        """True once the last quarter has been simulated."""
        return self.quarter >= self.end

    def _draws(self) -> QuarterDraws:
        """The current quarter's draws for every run, (B, ...); refills the block as needed."""
        w = self.world
        t = self.quarter - self.start
        if self._block_start is None or t >= self._block_start + DRAW_BLOCK:
            self._block_start = t
            q = min(DRAW_BLOCK, self.end - self.quarter + 1)
            for b, rng in enumerate(self.rngs):
                K.draw_run(rng, q, w.n_powers, w.n_states, len(w.sectors),
                           out=self._block[b, :q])
        return K.split_draws(self._block[:, t - self._block_start], w.n_powers, w.n_states,
                             len(w.sectors))

    def step(self) -> None:
        """Simulate one quarter of every run: events, powers in each run's order, states."""
        if self.finished:
            raise RuntimeError(f"the ensemble ended at {self.quarter_label}")
        self.quarter += 1
        w, label = self.world, self.quarter_label
        draws = self._draws()
        if self.shared_schedule is not None:  # the same events in every run: all at once
            for line in self.shared_schedule.apply(w, self.quarter, run=None):
                for log in self.event_log:
                    log.append((label, line))
        for b, schedule in enumerate(self.schedules):
            for line in schedule.apply(w, self.quarter, run=b):
                self.event_log[b].append((label, line))
        plan = rules.plan_quarter(w, draws)
        w.protests[:] = False
        order = np.argsort(draws.order, axis=-1, kind="stable")  # (B, P): mover at position
        for k in range(w.n_powers):
            rules.power_step(w, order[:, k], plan)
        rules.state_step(w, slice(0, w.n_states), draws)
        rules.end_quarter(w, channels=self._channels)
        for name, fn in self.reporters.items():
            self.records[name].append(fn(self))

    def run(self) -> None:
        """Step every run to the end of the period."""
        while not self.finished:
            self.step()

    def arrays(self, name: str) -> np.ndarray:
        """A recorded quantity stacked as (B, T, ...)."""
        return np.stack(self.records[name], axis=1)

    def quarters(self) -> list[str]:
        """Labels of the recorded quarters."""
        return list(self.records["quarter"])
