"""Stage 5, triage: label-free outlier scores of predicted exams, and their ranking.

Imports the foundation, data, models, training and evaluation; never pipeline, figures or the app.
"""
