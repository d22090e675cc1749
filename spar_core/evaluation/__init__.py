"""Stage 3, evaluation: inference on 3D exams, post-processing, metrics in mm, Table 1 and its paired tests.

Imports the foundation, data, models and training; never latent, triage, pipeline or the app.
"""
