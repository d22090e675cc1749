"""Inference: a trained segmenter (or an ensemble of fold models, with test-time shifts) applied to 3D exams,
slice by slice, and the result put back on each exam's native grid.

Imports the foundation, data, models and training; no later stage.
"""
