"""Evaluation: metrics in mm (Dice, RAVD, ASSD, MSSD) of a label volume against its truth, whether a structure
landed on its neighbour, Table 1 with its paired tests and bootstrap intervals, and the study tables.

Imports the foundation, data and the stages before it up to post-processing; never latent, triage, pipeline or
the app.
"""
