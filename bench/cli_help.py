"""How long ``spar --help`` and each sub-command's ``--help`` take, against starting Python alone, in one run.

    python bench/cli_help.py [--repeats 5]

Prints, per command, the median wall time of a fresh process, its ratio to ``python -c pass``, and whether torch
was imported.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from spar_core.cli.commands import COMMANDS

PROBE = ("import sys\nfrom spar_core.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
         "print('torch' in sys.modules, file=sys.stderr)")


def timed(code: str, repeats: int) -> tuple[float, str]:
    """Median seconds of a fresh process running ``code``, and the last line it wrote to stderr."""
    times, err = [], ""
    for _ in range(repeats):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        err = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ""
    return statistics.median(times), err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    base, _ = timed("pass", args.repeats)
    print(f"{'command':<22} {'seconds':>8} {'× python':>9} {'torch':>6}")
    print(f"{'python -c pass':<22} {base:8.3f} {1.0:9.1f}")
    for argv in [["--help"]] + [[name, "--help"] for name, _, _ in COMMANDS]:
        seconds, torch_loaded = timed(PROBE.format(argv=argv), args.repeats)
        print(f"{'spar ' + ' '.join(argv):<22} {seconds:8.3f} {seconds / base:9.1f} {torch_loaded:>6}")


if __name__ == "__main__":
    main()
