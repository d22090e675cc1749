"""Scoring: the metric engine, pure numpy — Dice, RAVD, ASSD, MSSD of a label volume against its truth in mm
(``metrics``, with the surface distances of ``surface``) and whether a structure landed on its neighbour
(``identity``).

Imports the foundation and data alone: post-processing's data-driven decision scores its candidates with it, and
evaluation builds its tables from it.
"""
