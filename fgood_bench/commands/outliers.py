"""``fgood-bench outlier-exclusions`` and ``filter-outliers``: the outlier-exposure set."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fgood_bench import summary
from fgood_bench.commands.options import add_dataset_options, add_exclusion_options, add_overwrite, dataset_options


def add_parser(commands) -> None:
    exclusions = commands.add_parser(
        "outlier-exclusions", help="the ImageNet-1k / WebVision concepts excluded from a benchmark's outlier set",
        description="Every ImageNet-1k concept that is a WordNet 3.0 hyponym (transitively, instance hyponyms included) "
        "of the benchmark's roots: bird: bird.n.01; dog: dog.n.01, wild_dog.n.01, dogsled, muzzle; flower: flower.n.01, "
        "artichoke, rapeseed, flowerpot; car: motor_vehicle.n.01, bus.n.01, car_wheel.n.01, car_mirror.n.01, grille.n.02; "
        "aircraft: aircraft.n.01, wing.n.02, space shuttle (docs/outliers.md gives the reason for each concept added by "
        "hand). Prints wnid, names and the matching root.",
    )
    add_exclusion_options(exclusions)
    exclusions.add_argument("--json", action="store_true", help="one JSON object (key excluded_wnids, ...)")
    exclusions.set_defaults(run=cmd_outlier_exclusions)

    outliers = commands.add_parser(
        "filter-outliers", help="an outlier-exposure set (WebVision, ImageNet, MINC) without the benchmark's concepts",
        description="Write OUT/NAME/manifest.json (kind outliers, split train), splits/train.txt and report.md: the "
        "training images of the source minus every image of an excluded concept, with a report of each excluded "
        "concept and the images removed. WebVision images are assigned to concepts through their query "
        "(info/queries_synsets_map.txt).",
    )
    add_exclusion_options(outliers)
    outliers.add_argument("--source", required=True, choices=("webvision", "imagenet", "minc2500"),
                          help="the outlier dataset: webvision (the paper's), imagenet or minc2500")
    outliers.add_argument("--exclude-list", type=Path, action="append", metavar="FILE",
                          help="also exclude the wnids of FILE (a TSV with a wnid column, e.g. manifests/inet/inet_a.tsv, or "
                          "one wnid a line), recorded in the manifest by file name and sha256; repeatable")
    outliers.add_argument("--root", type=Path, required=True, help="the source dataset's folder")
    outliers.add_argument("--out", type=Path, required=True, help="output folder; the set goes to OUT/NAME/")
    outliers.add_argument("--name", help="name of the set (default SOURCE-BENCHMARK)")
    add_overwrite(outliers, "replace an earlier outlier set OUT/NAME")
    outliers.add_argument("--exclude-duplicates-of", type=Path, metavar="AUDIT_JSON",
                          help="also remove the outlier images an audit-leakage audit.json found to be copies of test images")
    add_dataset_options(outliers)
    outliers.set_defaults(run=cmd_filter_outliers)


def cmd_outlier_exclusions(args: argparse.Namespace) -> int:
    from fgood_bench.outliers.exclusions import benchmark_roots, exclusion_set
    from fgood_bench.outliers.filter import exclusions_json

    benchmark = None if args.benchmark == "none" else args.benchmark
    roots = benchmark_roots(benchmark, args.exclude_root or [], args.exclude_all_benchmarks)
    excluded = exclusion_set(roots, args.exclude_wnid or [])
    if args.json:
        print(json.dumps(exclusions_json(benchmark, excluded, roots), indent=2))
    else:
        for item in excluded:
            print(f"{item.wnid}\t{item.names}\t{item.matched}")
        print(f"{len(excluded)} ImageNet-1k / WebVision concepts excluded (roots: {', '.join(roots) or '-'})", file=sys.stderr)
    return 0


def cmd_filter_outliers(args: argparse.Namespace) -> int:
    from fgood_bench.outliers.filter import filter_outliers

    manifest = filter_outliers(
        args.benchmark, args.source, args.root, args.out, exclude_roots=args.exclude_root or [],
        exclude_wnids=list(dict.fromkeys(args.exclude_wnid or [])), exclude_lists=args.exclude_list or [],
        all_benchmarks=args.exclude_all_benchmarks, name=args.name,
        dataset_options=dataset_options(args), progress=True, overwrite=args.overwrite,
        exclude_duplicates_of=args.exclude_duplicates_of,
    )
    print(manifest)
    summary.say(summary.outlier_lines(manifest))
    return 0
