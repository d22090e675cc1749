"""Layout: the run and study folders (``run_folder``, ``study_folder``), the one contract between the stages,
the CLI, the app and the notebooks.

Imports only the foundation and ``spar_core.data.splits``, and no torch: every stage may import it.
"""
