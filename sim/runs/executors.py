"""Executors for sweeps: serial, a process pool, or Dask distributed.

All three are `concurrent.futures.Executor`s (Dask's through `Client.get_executor()`), so
the sweep runner submits chunks of runs and collects them with `as_completed` the same way
whichever runs them. No scheduler of our own. Nothing here knows about the model.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import re
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from sim.errors import InputError

EXECUTORS = ("serial", "processes", "dask")


class SerialExecutor(cf.Executor):
    """Runs each task in this process when it is submitted (for debugging and baselines)."""

    def submit(self, fn, /, *args, **kwargs):
        """Run `fn` now and return a finished Future."""
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - handed to the caller through the future
            if isinstance(e, KeyboardInterrupt):
                raise
            fut.set_exception(e)
        return fut


@dataclass
class ExecutorInfo:
    """What ran a sweep, for the manifest."""

    kind: str
    workers: int
    address: str | None = None
    local: bool = True  # workers run on this machine and see its files
    requested: int | None = None  # workers asked for, when more than the machine has


def default_workers() -> int:
    """All cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def capped_workers(workers: int | None) -> int:
    """Worker processes to start: as asked (default all cores), at most one per core.

    More processes than cores only share the cores and each holds its own copy of the
    model (about 150 MB): `--workers 1000` on 2 cores would start 1000 interpreters.
    """
    n = workers or default_workers()
    if n < 1:
        raise ValueError("--workers must be at least 1")
    return min(n, default_workers())


# --------------------------------------------------------------------------- pool workers

PARENT_POLL_SECONDS = 0.1
"""How often a pool worker checks that the process that started it is still alive."""

_parent_pid: int | None = None


def _exit_when_orphaned(parent: int) -> None:
    while True:
        time.sleep(PARENT_POLL_SECONDS)
        if os.getppid() != parent:  # re-parented: the sweep that started us is gone
            os._exit(1)


def worker_init(parent: int) -> None:
    """Initializer of process-pool workers: die with the parent, even after a SIGKILL.

    A thread in each worker polls `os.getppid()` and exits the process as soon as the
    parent is gone, so no worker outlives a killed sweep to finish queued chunks into a
    folder that a `--resume` is filling again. (`prctl(PR_SET_PDEATHSIG)` is not used: it
    fires when the *thread* that spawned the worker ends, and the pool spawns workers from
    whichever thread submits, e.g. a calibration's local-search threads.)
    """
    global _parent_pid
    _parent_pid = parent
    if os.getppid() != parent:  # the parent died while we started
        os._exit(1)
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True,
                     name="exit-when-orphaned").start()


def parent_alive() -> bool:
    """False in a pool worker whose parent has died; True anywhere else."""
    return _parent_pid is None or os.getppid() == _parent_pid


# --------------------------------------------------------------------------- Dask

SCHEDULER_TIMEOUT_SECONDS = 10
"""How long to wait for a Dask scheduler that accepts connections but does not answer."""


def check_scheduler(address: str) -> tuple[str, int]:
    """Check a Dask scheduler address (`tcp://HOST:PORT`) and that something listens there.

    Returns:
        (host, port).

    Raises:
        InputError: a malformed address, nothing accepting connections there (a refused
            connection fails at once, an unanswered one after 5 s), or a listener that
            does not send a Dask handshake within `SCHEDULER_TIMEOUT_SECONDS`.
    """
    m = re.fullmatch(r"(?:tcp://)?(\[[0-9a-fA-F:]+\]|[^\s:/\[\]]+):(\d{1,5})", address)
    if not m or not 0 < int(m.group(2)) < 65536:
        raise InputError(None, f"expected tcp://HOST:PORT, got {address!r}", field="--scheduler")
    host, port = m.group(1).strip("[]"), int(m.group(2))
    try:
        conn = socket.create_connection((host, port), timeout=5)
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise InputError(None, f"cannot reach a Dask scheduler at {address} ({reason}); is "
                         "it running, and is the address right?", field="--scheduler") from None
    # A Dask scheduler speaks first (its handshake); a Client would wait on a silent
    # listener far beyond its own timeout.
    with conn:
        conn.settimeout(SCHEDULER_TIMEOUT_SECONDS)
        try:
            spoke = bool(conn.recv(1))
        except OSError:
            spoke = False
    if not spoke:
        raise InputError(None, f"no Dask scheduler answered at {address} within "
                         f"{SCHEDULER_TIMEOUT_SECONDS} s (something accepts connections there "
                         "but does not speak Dask's protocol)", field="--scheduler")
    return host, port


@contextmanager
def make_executor(kind: str, workers: int | None = None, scheduler: str | None = None):
    """Open an executor; yields (executor, ExecutorInfo) and shuts it down afterwards.

    Args:
        kind: `serial`, `processes` or `dask`.
        workers: Worker processes (default: all cores). Ignored for serial and for an
            existing Dask cluster.
        scheduler: `tcp://HOST:PORT` of an existing Dask scheduler; without it `dask`
            starts a LocalCluster on 127.0.0.1 (dashboard off) for the sweep's duration.

    Workers are capped at this machine's cores (`capped_workers`); pool workers exit when
    this process dies (`worker_init`), and so do a LocalCluster's (Dask's own rule).

    Raises:
        ValueError: unknown kind, or workers < 1.
        InputError: an unreachable or malformed scheduler address (see `check_scheduler`).
    """
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r} (expected one of {', '.join(EXECUTORS)})")
    n = capped_workers(workers)
    asked = workers if workers and workers > n else None
    if kind == "serial":
        ex = SerialExecutor()
        try:
            yield ex, ExecutorInfo("serial", 1)
        finally:
            ex.shutdown()
        return
    if kind == "processes":
        ctx = multiprocessing.get_context("spawn")
        ex = cf.ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=worker_init,
                                    initargs=(os.getpid(),))
        try:
            yield ex, ExecutorInfo("processes", n, requested=asked)
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
        return
    if scheduler:
        check_scheduler(scheduler)  # before importing distributed: fails in milliseconds
    import dask
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT_SECONDS}s")
        except (OSError, TimeoutError) as e:  # listening, but no Dask scheduler answers
            raise InputError(None, f"no Dask scheduler answered at {scheduler} within "
                             f"{SCHEDULER_TIMEOUT_SECONDS} s ({type(e).__name__})",
                             field="--scheduler") from None
        info = ExecutorInfo("dask", len(client.scheduler_info().get("workers", {})), scheduler,
                            local=False)
    else:
        # `dashboard_address=None` alone still serves the scheduler's HTTP routes on port
        # 8787 (dask/distributed#8136): turn the dashboard off, serve no routes, and let
        # the unavoidable HTTP server take a free loopback port.
        with dask.config.set({"distributed.scheduler.http.routes": []}):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None,
                                   scheduler_kwargs={"dashboard": False,
                                                     "dashboard_address": "127.0.0.1:0"},
                                   silence_logs=40)
        client = Client(cluster)
        info = ExecutorInfo("dask", n, "LocalCluster on 127.0.0.1", requested=asked)
    try:
        yield client.get_executor(pure=False), info
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
