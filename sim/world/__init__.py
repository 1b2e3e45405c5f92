"""What the model is made of: the vocabulary, typed scenario values, the world state.

Every parameter is defined once here. Imports neither yaml nor mesa.
"""
