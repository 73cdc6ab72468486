"""Argument types and options shared by the commands (cli.py builds the parser, cli_commands.py runs them)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

EXIT_USAGE = 2


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (no usage dump), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, got {value}")
    return value


def output_dir(text: str) -> Path:
    """An --out DIR that can be created or written into, checked before any simulation runs."""
    from mixpe_sim.report.files import check_writable_dir

    shown = text if len(text) <= 80 else text[:77] + "..."
    try:
        return check_writable_dir(Path(text))
    except NotADirectoryError:
        raise argparse.ArgumentTypeError(f"'{shown}' exists and is not a directory") from None
    except (OSError, ValueError) as exc:  # ENAMETOOLONG, ELOOP, NUL bytes ... raised by the checks
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise argparse.ArgumentTypeError(f"cannot create or write into '{shown}' ({reason})") from None


def add_hardware_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hw", metavar="PRESET|FILE", help="hardware preset or YAML file (default: mixpe-w4a16)")
    parser.add_argument("--memory", metavar="PRESET|FILE", help="memory preset or YAML file replacing the hardware's")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override one hardware config value, e.g. memory.channels=16 (repeatable)")


def add_max_work_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-work", type=positive_int, metavar="UNITS",
                        help="size ceiling in work units (default: about one hour of simulation; docs/sweeps.md)")


def load_hw(args: argparse.Namespace) -> Any:
    from mixpe_sim.config import load_hardware, parse_overrides

    return load_hardware(args.hw, args.memory, parse_overrides(args.overrides))


def emit(args: argparse.Namespace, result: dict[str, Any], render: Callable[[dict[str, Any]], str]) -> None:
    from mixpe_sim.report.files import ensure_finite
    from mixpe_sim.report.output import to_json

    ensure_finite(result)
    if getattr(args, "json", False):
        sys.stdout.write(to_json(result) + "\n")
    else:
        sys.stdout.write(render(result) + "\n")


def add_quiet_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
