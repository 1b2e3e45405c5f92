"""Running models: the runner, tidy tables, executors, sweeps and the store.

The one door to run a model; result folders, Parquet parts and manifests.
"""
