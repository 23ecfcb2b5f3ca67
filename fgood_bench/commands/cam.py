"""``fgood-bench cam``: class activation maps of several models on the same images (paper Figures 7 and 11)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands) -> None:
    from fgood_bench.commands.options import add_overwrite, device_name, non_negative_int, positive_int

    cam = commands.add_parser(
        "cam", help="class activation maps of several models on the same images (paper Figures 7 and 11)",
        description="CAM saliency (Zhou et al. 2016) w.r.t. the predicted class, for --num images of a split drawn "
        "with --seed, under each --checkpoint side by side: one row per image, the image then one column per model, "
        "the predicted class and its softmax confidence under each panel. Writes OUT/cam.png (and cam.pdf with --pdf) "
        "and OUT/cam.json (the images, each model's predictions and checkpoint sha256). Needs torchvision ResNets "
        "(global average pooling and a linear fc head). See docs/evaluation.md.",
    )
    cam.add_argument("--checkpoint", type=Path, action="append", required=True,
                     help="a classifier of the benchmark's K ID classes; repeatable, one column each")
    cam.add_argument("--label", action="append",
                     help="column name of the --checkpoint in the same position; repeatable (default: the checkpoint's "
                     "method, e.g. MixupOE, or its folder's name)")
    cam.add_argument("--manifest", type=Path, required=True, help="the benchmark's manifest (build-splits)")
    cam.add_argument("--root", type=Path, required=True, help="the benchmark dataset's folder")
    cam.add_argument("--split", default="id_test",
                     help="a split of the manifest: id_test (default), ood_test (the holdout classes; also 'holdout'), "
                     "id_train, id_val where it has one")
    cam.add_argument("--num", type=positive_int, default=8, help="images drawn from the split, one row each (default 8)")
    cam.add_argument("--seed", type=non_negative_int, default=0, help="seed of the images' draw (default 0)")
    cam.add_argument("--out", type=Path, required=True, help="folder for cam.png, cam.pdf and cam.json")
    cam.add_argument("--pdf", action="store_true", help="also write the figure as cam.pdf")
    cam.add_argument("--arch", help="architecture of a bare state-dict checkpoint (a fgood-bench checkpoint names its own)")
    cam.add_argument("--device", type=device_name, default="auto", help="auto (default: CUDA when present), cuda, cuda:N or cpu")
    add_overwrite(cam, "replace an earlier figure in OUT")
    cam.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fgood_bench.evaluation.cam import CamRequest, render_cams

    record, _ = render_cams(CamRequest(
        checkpoints=args.checkpoint, manifest=args.manifest, root=args.root, out=args.out, split=args.split,
        num=args.num, seed=args.seed, labels=args.label or [], arch=args.arch, device=args.device, pdf=args.pdf,
        overwrite=args.overwrite,
    ))
    for name in record["figure"]["files"]:
        print(args.out / name)
    return 0
