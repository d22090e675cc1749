"""Triage: label-free outlier scores of predicted exams (shape plausibility, reconstruction, the model's own
uncertainty), and their ranking.

Imports the foundation and the stages before it (data, models, training, inference, post-processing); never
pipeline, figures or the app.
"""
