"""Experiments: datasets, reference models, the demo, plotting and the paper reproductions.

These use the methods as a user would. Nothing in the engine or the methods imports them.
"""
