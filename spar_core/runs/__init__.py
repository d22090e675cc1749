"""Runs: the run folder's layout (the one contract between stages, CLI, app and notebooks) and background jobs.

``run_folder`` imports only the foundation and is light (no torch), so every stage may import it; ``jobs``
starts ``spar`` commands in their own processes and imports no stage.
"""
