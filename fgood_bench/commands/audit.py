"""``fgood-bench audit-leakage``: exact and near-duplicate copies across a benchmark's image sets."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands) -> None:
    from fgood_bench.audit.leakage import DEFAULT_THRESHOLD
    from fgood_bench.commands.options import add_figure_options, add_overwrite, non_negative_int, positive_int

    audit = commands.add_parser(
        "audit-leakage", help="find copies of test images in the outlier set, the training split and OOD sets",
        description="Exact duplicates (same file content) and near duplicates (re-encoded, resized, slightly cropped: "
        "pHash within --threshold bits) between the outlier set and the ID test + holdout images, the ID training "
        "images and the ID test + holdout images, and each coarse OOD set and the ID images. Writes OUT/audit.json "
        "(key 'pairs'), OUT/audit.md and OUT/contact_sheet.png (the closest pairs; --figure-format pdf or svg for "
        "vector files). See docs/audit.md.",
    )
    audit.add_argument("--manifest", "--benchmark", dest="benchmark", type=Path, required=True,
                       help="the benchmark's manifest (build-splits), as --manifest of train and evaluate; --benchmark is "
                       "its former spelling")
    audit.add_argument("--root", type=Path, required=True, help="the benchmark dataset's folder")
    audit.add_argument("--outliers", type=Path, help="an outlier set's manifest (filter-outliers)")
    audit.add_argument("--outlier-root", type=Path, help="the outlier dataset's folder (default --root)")
    audit.add_argument("--ood", action="append", metavar="NAME=MANIFEST", help="a coarse OOD set (build-ood-set); repeatable")
    audit.add_argument("--ood-root", action="append", metavar="NAME=DIR", help="dataset folder of an OOD set (default --root)")
    audit.add_argument("--out", type=Path, required=True, help="folder for the reports")
    audit.add_argument("--threshold", type=non_negative_int, default=DEFAULT_THRESHOLD,
                       help=f"near duplicates: at most this many of the 64 pHash bits differ (default {DEFAULT_THRESHOLD})")
    audit.add_argument("--hash-cache", type=Path, metavar="DIR",
                       help="keep image hashes here, keyed by file content: a later audit of the same images skips decoding")
    audit.add_argument("--threads", "--workers", dest="workers", type=positive_int,
                       help="decoding threads (default: all CPUs); --workers is its former spelling (elsewhere --workers "
                       "counts data-loader processes)")
    add_figure_options(audit.add_argument_group("figures (the contact sheet)"), "100: one pixel per pixel of the sheet")
    add_overwrite(audit, "replace an earlier audit in OUT")
    audit.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fgood_bench.audit.leakage import AuditRequest, audit_leakage
    from fgood_bench.commands.options import figure_format, named

    ood_roots = named(args.ood_root, "--ood-root", "DIR")
    audit = audit_leakage(AuditRequest(
        benchmark=args.benchmark, root=args.root, out=args.out, outliers=args.outliers, outlier_root=args.outlier_root,
        ood=args.ood, ood_roots=ood_roots, threshold=args.threshold, hash_cache=args.hash_cache, workers=args.workers,
        progress=True, overwrite=args.overwrite, figures=figure_format(args),
    ))
    for count in audit["counts"]:
        print(f"{count['a']} vs {count['b']}: {count['exact']} exact, {count['near']} near duplicates")
    print(args.out / "audit.json")
    return 0
