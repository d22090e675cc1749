"""Runs: what starts and guards work on run folders — background jobs (``jobs``: ``spar`` commands in their own
processes), the lock one writer holds on a folder (``lock``), and the files dropped into the app (``uploads``).
"""
