"""Post-processing of a predicted label volume: the settings a run records, the steps (ordering of structures in
a row, components, closing), what a fold's training labels say about them, and the data-driven decision of which
steps to keep.

Imports the foundation, data, the run folder's layout and the metric engine of ``spar_core.evaluation``
(``metrics``, ``surface``, ``identity``): the decision scores candidate steps, as nnU-Net's post-processing does
through its evaluation. No other later stage.
"""
