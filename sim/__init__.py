"""Great Game: agent-based simulation of great-power competition for influence in Central Asia."""

__version__ = "0.1.0"


def load_sweep(path, as_dataset: bool = False):
    """Read a sweep's results (`sim.runs.sweep.load_sweep`): a DataFrame or a pyarrow dataset."""
    from sim.runs.sweep import load_sweep as _load

    return _load(path, as_dataset=as_dataset)
