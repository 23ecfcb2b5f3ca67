"""``fgood-bench publish``: the parser and handler (the work is in :mod:`fgood_bench.publish`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "publish", help="rebuild and publish every benchmark of a release (resumable), ready for manifests/",
        description="Run build-splits, build-ood-set (Places365, Textures), filter-outliers (WordNet-filtered "
        "WebVision per benchmark, MINC-2500), audit-leakage (unless the config says audit: false), verify and export "
        "(OpenOOD, Hugging Face) for every benchmark named in --config, writing OUT/<benchmark>/, OUT/ood/, "
        "OUT/outliers/, OUT/audit/, OUT/exports/ and OUT/RELEASE.md + "
        "release.json (versions, hardware, wall time per stage, summaries, every file's sha256). "
        "See docs/publishing.md.",
    )
    parser.add_argument("--config", type=Path, required=True, help="the release's YAML file (docs/release.example.yaml)")
    parser.add_argument("--out", type=Path, required=True, help="a new or empty folder for the release")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted release in OUT: finished stages are skipped, the interrupted one redone")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from fgood_bench.publish import publish

    print(publish(args.config, args.out, resume=args.resume, progress=True))
    return 0
