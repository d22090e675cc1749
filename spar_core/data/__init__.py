"""Data: datasets on disk read and checked (dataset.json, NIfTI volumes, DICOM series and their masks), exams
sliced and resized for the 2D network, splits over patients, augmentation, corruptions, and the built-in phantom
cohorts.

Imports only the foundation (``spar_core.errors``, ``paths``); no other stage.
"""
