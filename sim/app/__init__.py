"""The classroom page (Mesa's SolaraViz) and the model behind it.

Needs the app extra. Nothing imports it.
"""
