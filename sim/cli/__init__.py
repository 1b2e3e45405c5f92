"""The greatgame command: parse, call, print.

One module per command family. Nothing imports it.
"""
