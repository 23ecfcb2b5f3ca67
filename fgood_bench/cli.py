"""The ``fgood-bench`` command line: a thin layer over the Python API.

Errors the user can fix (:class:`~fgood_bench.errors.FgoodError`) print one line on stderr and
exit with status 2; nothing is printed as a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from fgood_bench import __version__
from fgood_bench.errors import FgoodError

EXIT_BAD_INPUT = 2


def _dataset_options(args: argparse.Namespace) -> dict:
    return {name: getattr(args, name) for name in ("partition", "variant", "level") if getattr(args, name) is not None}


def cmd_datasets(args: argparse.Namespace) -> int:
    from fgood_bench.datasets import ADAPTERS

    width = max(map(len, ADAPTERS))
    for name, adapter in ADAPTERS.items():
        options = f"  [options: {', '.join('--' + o for o in adapter.option_names)}]" if adapter.option_names else ""
        print(f"{name:<{width}}  {adapter.title}: {', '.join(adapter.splits)}{options}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from fgood_bench.datasets.check import inspect_dataset
    from fgood_bench.datasets.synthetic import write_sample

    with tempfile.TemporaryDirectory(prefix="fgood-sample-") as scratch:
        root = args.root
        if args.sample:
            root = write_sample(args.dataset, Path(args.root or scratch))
            print(f"wrote a synthetic {args.dataset} sample in its native layout to {root}", file=sys.stderr)
        elif root is None:
            raise FgoodError("inspect needs --root DIR (or --sample for a generated sample)")
        report = inspect_dataset(
            args.dataset, root, check_images=args.check_images, workers=args.workers,
            progress=not args.json and sys.stderr.isatty(), **_dataset_options(args),
        )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report)
    return _report_problems(report)


def _print_report(report) -> None:
    index = report.index
    print(f"{index.dataset}: {report.index.root}")
    print(f"classes: {index.num_classes}")
    print(f"{'split':<8}{'images':>10}{'missing':>10}")
    for split, count in index.split_counts().items():
        print(f"{split:<8}{count:>10,}{len(report.missing[split]):>10,}")
    for split, why in index.absent.items():
        print(f"absent: {split} ({why})")
    if report.unreadable is not None:
        print(f"unreadable images: {len(report.unreadable)}")


def _report_problems(report) -> int:
    """One stderr line per kind of problem; exit status 2 when the download is incomplete or broken."""
    status = 0
    missing = [(split, paths) for split, paths in report.missing.items() if paths]
    if missing:
        total = sum(len(paths) for _, paths in missing)
        split, paths = missing[0]
        print(
            f"fgood-bench: error: {report.index.root / paths[0]}: image listed in the {split} split is missing "
            f"({total} listed images missing in all; see docs/datasets/{report.index.dataset}.md)",
            file=sys.stderr,
        )
        status = EXIT_BAD_INPUT
    for path, problem in report.unreadable or []:
        print(f"fgood-bench: error: {report.index.root / path}: unreadable image ({problem})", file=sys.stderr)
        status = EXIT_BAD_INPUT
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fgood-bench",
        description="Build, publish and validate fine-grained OOD detection benchmarks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser("datasets", help="list the dataset adapters and their official splits")
    listing.set_defaults(run=cmd_datasets)

    inspect = commands.add_parser(
        "inspect",
        help="count classes and images of a dataset download, find missing or broken images",
        description="Read a dataset in its official layout and print its classes and images per "
        "official split, with the number of listed images missing on disk. Exits 2 when the "
        "download is incomplete or malformed.",
    )
    inspect.add_argument("dataset", help="adapter id (see `fgood-bench datasets`)")
    inspect.add_argument("--root", type=Path, help="the dataset folder, or the folder it was unpacked into")
    inspect.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    inspect.add_argument("--check-images", action="store_true", help="decode every image and list the unreadable ones")
    inspect.add_argument("--workers", type=int, help="processes for --check-images (default: all CPUs)")
    inspect.add_argument("--sample", action="store_true",
                         help="first write a small synthetic copy of the dataset in its native layout "
                         "(into --root if given, else a temporary folder) and inspect that")
    group = inspect.add_argument_group("dataset options")
    group.add_argument("--partition", type=int, help="minc2500: 1..5, dtd: 1..10 (default 1)")
    group.add_argument("--variant", help="thudogs: low|high (default: high if present); places365: 256|large (default 256)")
    group.add_argument("--level", help="fgvc_aircraft: variant|family|manufacturer (default variant)")
    inspect.set_defaults(run=cmd_inspect)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except FgoodError as err:
        print(f"fgood-bench: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("fgood-bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
