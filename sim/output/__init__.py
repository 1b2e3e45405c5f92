"""Charts, maps and the HTML report.

Draws what it is given; never runs a model.
"""
