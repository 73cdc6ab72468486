"""mixpe-sim: simulate LLM inference on mixed-precision PE accelerators (MixPE and baselines).

User errors print one line on stderr and exit with status 2. The commands are a layer over the
Python API (mixpe_sim.api); cli_commands.py holds them, cli_options.py their shared options.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable, Sequence

from mixpe_sim._version import __version__
from mixpe_sim.build_info import describe_build
from mixpe_sim.cli_commands import COMMANDS
from mixpe_sim.cli_options import EXIT_USAGE, OneLineErrorParser
from mixpe_sim.errors import MixpeError

Handler = Callable[[argparse.Namespace], int]


class _VersionAction(argparse.Action):
    """`--version`: the build is looked up only when asked (a scan of the package directory)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        sys.stdout.write(f"mixpe-sim {__version__} ({describe_build()})\n")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="mixpe-sim", description=__doc__)
    parser.add_argument("--version", action=_VersionAction, help="show the version and the build, then exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineErrorParser)
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    from mixpe_sim.report.signals import interrupt_on_termination

    try:
        interrupt_on_termination()
        return handler(args)
    except MixpeError as exc:
        sys.stderr.write(f"mixpe-sim: error: {exc}\n")
        return EXIT_USAGE
    except OSError as exc:  # reading or writing a path the user named (full disk, permissions, ...)
        where = f"{exc.filename}: " if exc.filename else ""
        sys.stderr.write(f"mixpe-sim: error: {where}{exc.strerror or exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP; str(exc) may say what was kept
        sys.stderr.write(f"mixpe-sim: interrupted{': ' + str(exc) if str(exc) else ''}\n")
        return 130


def console_main() -> None:
    """The `mixpe-sim` command (and `python -m mixpe_sim`): `main` in a process that ends with it.

    The process ends here, so the interpreter's final cycle collection over every object still alive
    (the modules, their caches) is skipped with gc.freeze(): it took 0.05-0.1 s of a 0.5 s decode step
    (docs/performance.md). Reference counting still frees what it frees and atexit handlers run.
    """
    status = main()
    gc.freeze()
    sys.exit(status)

