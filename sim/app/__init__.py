"""The classroom page (Solara, with Mesa's run controls) and the model behind it.

Needs the app extra. Nothing imports it.
"""
