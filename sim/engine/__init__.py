"""The model: pure kernels, one quarter's step, the Mesa agents and model, the ensemble.

Both engines call the same step rules. Never reads files.
"""
