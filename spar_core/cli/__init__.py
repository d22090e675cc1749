"""The ``spar`` command: one sub-command per module in this package.

Each sub-command module exposes ``register(subparsers)``, which adds its parser and returns it, and
``run(args)``, which runs it. Only the chosen sub-command's module is imported: ``spar --help`` lists the
commands from :mod:`spar_core.cli.commands` and imports neither torch nor any stage.

A :class:`~spar_core.errors.SparError`, or an error of the disk while writing (no space, read-only, no
permission), becomes one line on stderr and exit status 2 (atomic writes leave nothing half-written);
SIGTERM (a scheduler's or the app's cancel) unwinds like Ctrl-C, so that a run records that it stopped and
temporary files are removed, and exits with 143.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
from typing import NoReturn, Sequence

from spar_core.cli.commands import COMMANDS
from spar_core.errors import LOG, SparError, os_error_line


class OneLineParser(argparse.ArgumentParser):
    """argparse's parser, but a bad flag, a missing argument or an invalid choice is one line (``spar crossval:
    error: argument --chain-prior: invalid choice: 'bogus' (choose from ...)``) and exit status 2, as every other
    error of spar; ``--help`` is argparse's own. Sub-command parsers are of this class too."""

    def error(self, message: str) -> "NoReturn":  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The ``spar`` parser: the sub-command named in ``argv`` registered in full (its module imported), every
    other one as its line of help."""
    parser = OneLineParser(
        prog="spar",
        description="Shape-regularized multi-bone MR segmentation: data, training, evaluation, triage.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, module_name, text in COMMANDS:
        if name == chosen:
            module = importlib.import_module(f"spar_core.cli.{module_name}")
            module.register(sub).set_defaults(func=module.run)
        else:
            sub.add_parser(name, help=text)
    return parser


class _NoteHandler(logging.Handler):
    """spar's notes (:func:`spar_core.errors.note`) on stderr, one line each, named after the running sub-command;
    stderr is looked up at each note, so that a redirected stderr gets them."""

    def __init__(self) -> None:
        super().__init__()
        self.command = "spar"

    def emit(self, record: logging.LogRecord) -> None:
        print(f"spar {self.command}: note: {record.getMessage()}", file=sys.stderr)


_NOTES = _NoteHandler()


def _show_notes(command: str) -> None:
    """Print the notes of ``command`` (installed once, for every later call of :func:`main` in this process)."""
    _NOTES.command = command
    if _NOTES not in LOG.handlers:
        LOG.addHandler(_NOTES)
        LOG.propagate = False


class Terminated(BaseException):
    """SIGTERM received: unwinds the stack like KeyboardInterrupt (``finally`` blocks and handlers run)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    args.argv = argv  # as given: a command that starts workers runs itself again with them
    _show_notes(args.command)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    try:
        code = args.func(args)
    except SparError as err:
        print(f"spar {args.command}: error: {' '.join(str(err).splitlines())}", file=sys.stderr)
        return 2
    except OSError as err:  # the disk, not the input: no space, read-only, no permission, a file in a folder's place
        print(f"spar {args.command}: error: {os_error_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nspar {args.command}: interrupted", file=sys.stderr)  # \n: after a progress bar's line
        return 130
    except Terminated:
        print(f"\nspar {args.command}: stopped (SIGTERM)", file=sys.stderr)
        return 143
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
