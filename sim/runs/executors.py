"""Executors for sweeps: serial, a process pool, or Dask distributed.

All three are `concurrent.futures.Executor`s (Dask's through `Client.get_executor()`), so
the sweep runner submits chunks of runs and collects them with `as_completed` the same way
whichever runs them. No scheduler of our own. Nothing here knows about the model.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from contextlib import contextmanager
from dataclasses import dataclass

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


def default_workers() -> int:
    """All cores."""
    return os.cpu_count() or 1


@contextmanager
def make_executor(kind: str, workers: int | None = None, scheduler: str | None = None):
    """Open an executor; yields (executor, ExecutorInfo) and shuts it down afterwards.

    Args:
        kind: `serial`, `processes` or `dask`.
        workers: Worker processes (default: all cores). Ignored for serial and for an
            existing Dask cluster.
        scheduler: `tcp://HOST:PORT` of an existing Dask scheduler; without it `dask`
            starts a LocalCluster on 127.0.0.1 (dashboard off) for the sweep's duration.

    Raises:
        ValueError: unknown kind, or workers < 1.
    """
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r} (expected one of {', '.join(EXECUTORS)})")
    n = workers or default_workers()
    if n < 1:
        raise ValueError("--workers must be at least 1")
    if kind == "serial":
        ex = SerialExecutor()
        try:
            yield ex, ExecutorInfo("serial", 1)
        finally:
            ex.shutdown()
        return
    if kind == "processes":
        ctx = multiprocessing.get_context("spawn")
        ex = cf.ProcessPoolExecutor(max_workers=n, mp_context=ctx)
        try:
            yield ex, ExecutorInfo("processes", n)
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
        return
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        client = Client(scheduler, timeout="20s")
        info = ExecutorInfo("dask", len(client.scheduler_info().get("workers", {})), scheduler,
                            local=False)
    else:
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None,
                               silence_logs=40)
        client = Client(cluster)
        info = ExecutorInfo("dask", n, "LocalCluster on 127.0.0.1")
    try:
        yield client.get_executor(pure=False), info
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
