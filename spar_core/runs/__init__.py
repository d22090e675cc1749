"""Runs: the run and study folders' layouts (the one contract between stages, CLI, app and notebooks), background
jobs, and uploads.

``run_folder`` and ``study_folder`` import only the foundation and ``spar_core.data.splits`` and are light (no
torch), so every stage may import them; ``jobs`` starts ``spar`` commands in their own processes and imports no
stage; ``uploads`` checks files dropped into the app, with ``spar_core.data.nifti``.
"""
