"""Fitting free parameters to the sourced history, through the runner.

The search, its evaluations and log, the facts it must keep, and its report.
"""
