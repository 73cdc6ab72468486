"""mixpe-sim: simulate LLM inference on mixed-precision PE accelerators (MixPE and baselines).

User errors print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from mixpe_sim import __version__
from mixpe_sim.errors import MixpeError

EXIT_USAGE = 2
Handler = Callable[[argparse.Namespace], int]


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


# ---------------------------------------------------------------- commands


def cmd_gemm(args: argparse.Namespace) -> int:
    from mixpe_sim.report.tables import render_gemm
    from mixpe_sim.runs.gemm import run_gemm
    from mixpe_sim.workload.limits import check_work, gemm_work

    hw = load_hw(args)
    check_work(hw, gemm_work(hw, args.m, args.n, args.k), args.max_work, "--max-work")
    emit(args, run_gemm(hw, args.m, args.n, args.k), render_gemm)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from mixpe_sim.config.presets import PRESET_KINDS, list_presets
    from mixpe_sim.workload.models import list_models

    sections = {kind: list_presets(kind) for kind in PRESET_KINDS}
    sections["models"] = list_models()
    if args.json:
        from mixpe_sim.report.output import to_json

        sys.stdout.write(to_json(sections) + "\n")
        return 0
    for kind, names in sections.items():
        sys.stdout.write(f"{kind}: {', '.join(names)}\n")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from mixpe_sim.config.validate import validate_file

    sys.stdout.write(validate_file(Path(args.file)) + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="mixpe-sim", description=__doc__)
    parser.add_argument("--version", action="version", version=f"mixpe-sim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineErrorParser)

    gemm = sub.add_parser("gemm", help="simulate one mpGEMM: activations [M x K] x quantized weights [K x N]")
    add_hardware_options(gemm)
    gemm.add_argument("--m", type=positive_int, required=True)
    gemm.add_argument("--n", type=positive_int, required=True)
    gemm.add_argument("--k", type=positive_int, required=True)
    gemm.add_argument("--json", action="store_true", help="print one JSON object")
    add_max_work_option(gemm)
    gemm.set_defaults(handler=cmd_gemm)

    listing = sub.add_parser("list", help="list presets: hardware, memory, energy, area, models")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)

    validate = sub.add_parser("validate", help="check a hardware, memory or energy YAML file")
    validate.add_argument("file")
    validate.set_defaults(handler=cmd_validate)

    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands() -> list[Callable[[Any], None]]:
    from mixpe_sim.cli_commands import COMMANDS

    return COMMANDS


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
