"""Pipeline: whole experiments built from the stages below: cross-validation (sharded over a job array), the run
records of run.json, the demo, and the data-efficiency and robustness studies.

Imports any stage; imported only by ``spar_core.cli``, the app, notebooks and tests.
"""
