"""Stage 1, data: datasets on disk read and checked, exams sliced and resized for the 2D network, splits,
augmentation, and the built-in phantom cohorts.

Imports only the foundation (``spar_core.errors``, ``paths``, ``progress``, ``methods``); no other stage.
"""
