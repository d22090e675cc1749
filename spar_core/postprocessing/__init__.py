"""Post-processing of a predicted label volume: the steps (ordering of structures in a row, components, closing),
what a fold's training labels say about them, and the data-driven decision of which steps to keep.

Imports the foundation, data and the metric engine of ``spar_core.evaluation.metrics`` (the decision scores
candidate steps, as nnU-Net's post-processing does through its evaluation); no other later stage.
"""
