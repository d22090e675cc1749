"""One exception type for every user-facing failure: the CLI prints its message, the app shows it; and one way to
say what spar did about a fault it could mend (a corrupt output redone), which the CLI prints as a note."""

import logging

LOG = logging.getLogger("spar")


class SparError(Exception):
    """A problem with the user's input (a file, an argument, a dataset), explained in one line.

    The message names the file or argument and what was expected; callers show it as is, without a traceback.
    """


def os_error_line(err: OSError) -> str:
    """An operating-system error (a full disk, a read-only folder, a file where a folder should be) as one line
    naming the path: ``out/x.nii.gz: No space left on device``."""
    where = " -> ".join(str(f) for f in (err.filename, err.filename2) if f is not None)
    reason = err.strerror or type(err).__name__
    return f"{where}: {reason}" if where else reason


def note(message: str) -> None:
    """Say, in one line, something the user should know that is no failure (``spar <command>: note: ...``)."""
    LOG.warning(message)
