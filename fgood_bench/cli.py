"""The ``fgood-bench`` command line: a thin layer over the Python API.

Errors the user can fix (:class:`~fgood_bench.errors.FgoodError`) print one line on stderr and
exit with status 2; nothing is printed as a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from fgood_bench import __version__
from fgood_bench.errors import EXIT_BAD_INPUT, FgoodError

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a process killed by a closed pipe


def build_parser() -> argparse.ArgumentParser:
    from fgood_bench.commands import audit, cam, datasets, demo, evaluation, outliers, publish, splits, study, sweep, training

    parser = OneLineParser(
        prog="fgood-bench",
        description="Build, publish and validate fine-grained OOD detection benchmarks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (demo, datasets, splits, training, evaluation, cam, outliers, audit, study, sweep, publish):  # --help lists them in this order
        command.add_parser(commands)
    return parser


def one_line(err: FgoodError) -> str:
    """The error's own message: a DataLoader worker re-raises it wrapped in its traceback; any other
    message that spans lines (a library's error quoted in it) is joined into one."""
    message = str(err).strip()
    if "Original Traceback" in message:
        last = message.splitlines()[-1]
        message = last.split(": ", 1)[1] if last.startswith(type(err).__module__) else last
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad command line is reported as every other error is: one line, exit 2
    (argparse prints the usage text before it; ``--help`` still shows it)."""

    def error(self, message: str):
        command = self.prog.partition(" ")[2]
        self.exit(EXIT_BAD_INPUT, f"fgood-bench: error: {command + ': ' if command else ''}{' '.join(message.split())} "
                  f"(see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, --version, or a bad command line (already reported in one line)
        return done.code if isinstance(done.code, int) else EXIT_BAD_INPUT
    except KeyboardInterrupt:  # while torch and the command modules import: nothing was done yet
        print("fgood-bench: interrupted; nothing was kept yet: run the same command again to start over", file=sys.stderr)
        return 130
    try:
        from fgood_bench.interrupt import forget

        forget()  # what an earlier command in this process kept is not this one's
        status = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except FgoodError as err:
        print(f"fgood-bench: error: {one_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        from fgood_bench.interrupt import RERUN_HINT, RERUN_OR_RESUME_HINT, RESUME_HINT, interrupted_message

        hint = (RERUN_OR_RESUME_HINT if getattr(args, "rerun_continues", False) else RESUME_HINT if hasattr(args, "resume")
                else RERUN_HINT)
        print(f"fgood-bench: {interrupted_message(hint)}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `fgood-bench inspect ... | head`: the reader has what it wanted
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush finds no closed pipe
    (the Python documentation's recipe for SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (captured output)
        pass


if __name__ == "__main__":
    sys.exit(main())
