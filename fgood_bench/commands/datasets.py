"""``fgood-bench datasets`` and ``inspect``: the adapters, and what a download on disk holds."""

from __future__ import annotations

import argparse
import json
import tempfile
import sys
from pathlib import Path

from fgood_bench.errors import EXIT_BAD_INPUT, FgoodError
from fgood_bench.commands.options import add_dataset_options, dataset_options, positive_int


def add_parser(commands) -> None:
    listing = commands.add_parser("datasets", help="list the dataset adapters and their official splits",
                                  description="List the dataset adapters, the official splits each reads and its options.")
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
    inspect.add_argument("--workers", type=positive_int, help="processes for --check-images (default: all CPUs)")
    inspect.add_argument("--sample", action="store_true",
                         help="first write a small synthetic copy of the dataset in its native layout "
                         "(into --root if given, else a temporary folder) and inspect that")
    add_dataset_options(inspect)
    inspect.set_defaults(run=cmd_inspect)


def cmd_datasets(args: argparse.Namespace) -> int:
    from fgood_bench.datasets import ADAPTERS

    width = max(map(len, ADAPTERS))
    for name, adapter in ADAPTERS.items():
        options = f"  [options: {', '.join('--' + o for o in adapter.option_names)}]" if adapter.option_names else ""
        print(f"{name:<{width}}  {adapter.title}: {', '.join(adapter.splits)}{options}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from fgood_bench.datasets import get_adapter
    from fgood_bench.datasets.check import inspect_dataset
    from fgood_bench.datasets.synthetic import write_sample

    get_adapter(args.dataset)
    with tempfile.TemporaryDirectory(prefix="fgood-sample-") as scratch:
        root = args.root
        if args.sample:
            if args.root is not None and args.root.exists() and any(args.root.iterdir()):
                raise FgoodError(f"{args.root}: --sample writes a synthetic dataset and needs an empty or new folder")
            root = write_sample(args.dataset, Path(args.root or scratch))
            where = root if args.root else "a temporary folder, removed after the check (--root DIR keeps it)"
            print(f"wrote a synthetic {args.dataset} sample in its native layout to {where}", file=sys.stderr)
        elif root is None:
            raise FgoodError("inspect needs --root DIR (or --sample for a generated sample)")
        report = inspect_dataset(
            args.dataset, root, check_images=args.check_images, workers=args.workers,
            progress=True, **dataset_options(args),
        )
    temporary = args.sample and args.root is None  # its folder is gone: do not show its path
    if args.json:
        print(json.dumps({**report.to_dict(), **({"root": None} if temporary else {})}, indent=2))
    else:
        _print_report(report, "(temporary sample, removed)" if temporary else report.index.root)
    return _report_problems(report)


def _print_report(report, root) -> None:
    index = report.index
    print(f"{index.dataset}: {root}")
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
