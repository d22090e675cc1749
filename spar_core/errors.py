"""One exception type for every user-facing failure: the CLI prints its message, the app shows it."""


class SparError(Exception):
    """A problem with the user's input (a file, an argument, a dataset), explained in one line.

    The message names the file or argument and what was expected; callers show it as is, without a traceback.
    """
