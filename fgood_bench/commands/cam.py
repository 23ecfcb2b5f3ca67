"""``fgood-bench cam``: class activation maps of several models on the same images (paper Figures 7 and 11)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands) -> None:
    from fgood_bench.commands.options import add_figure_options, add_overwrite, device_name, non_negative_int, positive_int

    cam = commands.add_parser(
        "cam", help="class activation maps of several models on the same images (paper Figures 7 and 11)",
        description="CAM saliency (Zhou et al. 2016) w.r.t. the predicted class, for --num images of a split drawn "
        "with --seed, under each --checkpoint side by side: one row per image, the image then one column per model, "
        "the predicted class and its softmax confidence under each panel. Writes OUT/cam.png (and cam.pdf with --pdf) "
        "and OUT/cam.json (the images, each model's predictions and checkpoint sha256). --layout figure7 --spec FILE "
        "draws the paper's Figure 7 instead: a column per benchmark of the YAML spec, and for one ID and one holdout OOD "
        "image of each the image row, then a CAM row per model. Needs a CNN that ends in global average pooling and one "
        "linear layer (torchvision ResNets; timm ResNets, EfficientNets, RegNets, ...). See docs/evaluation.md.",
    )
    cam.add_argument("--layout", choices=("rows", "figure7"), default="rows",
                     help="rows (default): one benchmark, a row per image, a column per model; figure7: the paper's "
                     "Figure 7 from --spec, a column per benchmark, rows ID image, ID CAM per model, OOD image, OOD CAM "
                     "per model")
    cam.add_argument("--spec", type=Path, metavar="YAML",
                     help="with --layout figure7: per benchmark its manifest, root and one checkpoint per model "
                     "(example in docs/evaluation.md); replaces --checkpoint, --label, --manifest, --root, --split, --num")
    cam.add_argument("--checkpoint", type=Path, action="append",
                     help="a classifier of the benchmark's K ID classes; repeatable, one column each")
    cam.add_argument("--label", action="append",
                     help="column name of the --checkpoint in the same position; repeatable (default: the checkpoint's "
                     "method, e.g. MixupOE, or its folder's name)")
    cam.add_argument("--manifest", type=Path, help="the benchmark's manifest (build-splits)")
    cam.add_argument("--root", type=Path, help="the benchmark dataset's folder")
    cam.add_argument("--split",
                     help="a split of the manifest: id_test (default), ood_test (the holdout classes; also 'holdout'), "
                     "id_train, id_val where it has one")
    cam.add_argument("--num", type=positive_int, help="images drawn from the split, one row each (default 8)")
    cam.add_argument("--seed", type=non_negative_int, default=0, help="seed of the images' draw (default 0)")
    cam.add_argument("--out", type=Path, required=True, help="folder for the figure (cam.png, ...) and cam.json")
    cam.add_argument("--pdf", action="store_true",
                     help="also write the figure as cam.pdf: the same as --figure-format png,pdf (added to the formats given)")
    add_figure_options(cam, "100")
    cam.add_argument("--arch", help="architecture of a bare state-dict checkpoint (a fgood-bench checkpoint names its own)")
    cam.add_argument("--device", type=device_name, default="auto", help="auto (default: CUDA when present), cuda, cuda:N or cpu")
    add_overwrite(cam, "replace an earlier figure in OUT")
    cam.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fgood_bench.commands.options import figure_format
    from fgood_bench.errors import FgoodError

    figures = figure_format(args, ("png", "pdf") if args.pdf else ())  # --pdf: png and pdf
    if args.layout == "figure7":
        given = [option for option, value in (("--checkpoint", args.checkpoint), ("--label", args.label),
                                              ("--manifest", args.manifest), ("--root", args.root),
                                              ("--split", args.split), ("--num", args.num)) if value is not None]
        if args.spec is None or given:
            raise FgoodError("--layout figure7 reads the benchmarks, checkpoints and labels from --spec YAML"
                             + (f"; drop {', '.join(given)}" if given else ": give --spec"))
        from fgood_bench.evaluation.cam_figure7 import Figure7Request, render_figure7

        record, _ = render_figure7(Figure7Request(spec=args.spec, out=args.out, seed=args.seed, arch=args.arch,
                                                  device=args.device, figures=figures, overwrite=args.overwrite))
    else:
        missing = [option for option, value in (("--checkpoint", args.checkpoint), ("--manifest", args.manifest),
                                                ("--root", args.root)) if value is None]
        if missing or args.spec is not None:
            raise FgoodError(f"cam needs {', '.join(missing)}" if missing else "--spec belongs to --layout figure7")
        from fgood_bench.evaluation.cam import CamRequest, render_cams

        record, _ = render_cams(CamRequest(
            checkpoints=args.checkpoint, manifest=args.manifest, root=args.root, out=args.out,
            split=args.split or "id_test", num=args.num or 8, seed=args.seed, labels=args.label or [], arch=args.arch,
            device=args.device, overwrite=args.overwrite, figures=figures,
        ))
    for name in record["figure"]["files"]:
        print(args.out / name)
    return 0
