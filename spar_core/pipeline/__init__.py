"""Stage 6, pipeline: whole experiments built from the stages below (cross-validation, the demo).

Imports any stage; imported only by ``spar_core.cli``, the app, notebooks and tests.
"""
