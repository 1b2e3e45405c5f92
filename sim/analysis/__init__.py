"""Tables in, tables out: bands, paired comparisons, validation, sensitivity, explanation.

Pure functions; nothing here runs a model, prints or draws.
"""
