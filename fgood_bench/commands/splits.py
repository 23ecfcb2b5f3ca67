"""``fgood-bench build-splits``, ``verify``, ``export`` and ``build-ood-set``: benchmark manifests."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fgood_bench import paper, summary
from fgood_bench.errors import FgoodError
from fgood_bench.commands.options import (
    add_dataset_options, add_figure_options, add_model_options, add_overwrite, dataset_options, figure_format,
    model_settings, named, non_negative_int, positive_int,
)


def add_parser(commands) -> None:
    build = commands.add_parser(
        "build-splits",
        help="rank a dataset's classes with a classifier and write the ID / holdout-OOD benchmark",
        description="Rank every class by accuracy minus mean prediction entropy on the official test images "
        "(paper, Appendix A), keep the top K as in-distribution and hold out the rest as fine-grained OOD. "
        "Writes OUT/NAME/manifest.json, the split files, ranking.csv and predictions.npz. Predictions come from "
        "--predictions, from --checkpoint, or from a classifier trained here on all classes.",
        epilog="benchmarks: bird (cub, K=100), dog (thudogs, K=100), flower (flowers102, K=90), car (stanford_cars, "
        "K=100), aircraft (fgvc_aircraft, K=90); 'custom' with --dataset ID --num-id K ranks any other dataset. "
        "Multi-GPU: torchrun --nproc-per-node N -m fgood_bench build-splits ...",
    )
    build.add_argument("benchmark", nargs="?", help="bird, dog, flower, car or aircraft; omit (or say custom) with --dataset")
    build.add_argument("--root", type=Path, required=True, help="the dataset folder, or the folder it was unpacked into")
    build.add_argument("--out", type=Path, required=True, help="output folder; the benchmark goes to OUT/NAME/")
    build.add_argument("--dataset", help="adapter id, for a custom benchmark")
    build.add_argument("--name", help="benchmark name (default: the benchmark or dataset id)")
    build.add_argument("--num-id", type=positive_int, help="number of in-distribution classes K (default: the benchmark's)")
    source = build.add_mutually_exclusive_group()
    source.add_argument("--predictions", type=Path, action="append",
                        help=".npz with 'paths' (as in the split files) and 'logits' (N x classes) on the test split; "
                        "repeatable: rank by the mean S(c) and write stability.json")
    source.add_argument("--checkpoint", type=Path, action="append",
                        help="a classifier trained on all classes (fgood-bench or a state dict + --arch); repeatable")
    build.add_argument("--seeds", type=positive_int, default=1,
                       help="train N ranking classifiers (seeds --seed .. --seed+N-1) per --arch, rank by the mean S(c) "
                       "and write stability.json (default 1)")
    build.add_argument("--resume", action="store_true", help="continue an interrupted training from OUT/NAME.work/checkpoint.pt")
    add_overwrite(build, "replace an earlier OUT/NAME and start its training over", restart=True)
    build.add_argument("--work-dir", type=Path, help="training checkpoints (default OUT/NAME.work)")
    build.add_argument("--hash-images", action="store_true", help="record each image's sha256 in the split files")
    build.add_argument("--split-protocol", choices=("paper", "official"),
                       help="flower: paper (default; trains on the official test split, ranks and tests on train + val, "
                       "as Table 3's 5,878 ID training images imply) or official (trains on train, tests on test)")
    build.add_argument("--id-classes", type=Path, help="give the ID classes instead of ranking (e.g. manifests/inet/inet_a.tsv); "
                       "a TSV with a wnid column or one class name per line; needs --dataset")
    build.add_argument("--ood-classes", type=Path, help="with --id-classes: the only classes whose images form ood_test "
                       "(default: all other classes)")
    add_dataset_options(build)
    add_model_options(build, several_archs=True)
    build.add_argument("--compile", action="store_true",
                       help="torch.compile the model for training and prediction (default: eager); where compiling is not "
                       "available (no C++ compiler, an unsupported platform) it runs eagerly with one warning; "
                       "recorded in the manifest's predictions source")
    build.add_argument("--fast-decode", action="store_true",
                       help="decode JPEGs of at least twice the resize at reduced scale for training and ranking: faster, "
                       "the pixels differ from torchvision's PIL path by several grey levels (default: exact decoding); "
                       "recorded in the manifest's predictions source")
    add_figure_options(build.add_argument_group("figures (stability.png, with several rankings)"), "120")
    build.set_defaults(run=cmd_build_splits)

    verify = commands.add_parser(
        "verify", help="check a dataset copy against a manifest (metadata, split files, images)",
        description="Check that the dataset's metadata files match the manifest's sha256, that no file of the manifest "
        "(split files, ranking.csv, predictions.npz, stability.json) was changed, and that every listed image exists "
        "(with --images: decodes and matches its recorded sha256, where the manifest was built with --hash-images). "
        "Exit 0 when all holds, 1 with a summary of what differs.",
    )
    verify.add_argument("manifest", type=Path, help="manifest.json, or the folder holding it")
    verify.add_argument("--root", type=Path, required=True, help="the dataset folder, or the folder it was unpacked into")
    verify.add_argument("--images", action="store_true", help="also decode every image and compare recorded hashes")
    verify.add_argument("--workers", type=positive_int, help="processes for --images (default: all CPUs)")
    verify.set_defaults(run=cmd_verify)

    export = commands.add_parser(
        "export", help="write a manifest's splits as OpenOOD image lists or Parquet for the Hugging Face Hub",
        description="--format openood writes OpenOOD v1.5's layout into OUT/NAME/: data/benchmark_imglist/NAME/"
        "{train,val,test}_NAME.txt, test_holdout.txt (near-OOD), test_FAR.txt per --far-ood and val_VAL.txt (OOD "
        "validation) ('path label', OOD -1), and configs/datasets/NAME/NAME.yml and NAME_ood.yml; an outlier set "
        "(filter-outliers) as OE training data: train_NAME.txt and configs/datasets/NAME/NAME_oe.yml. --format hf "
        "writes OUT/NAME/data/<split>-*.parquet "
        "with the image bytes embedded and a dataset card README.md; datasets.load_dataset('OUT/NAME') loads it offline.",
    )
    export.add_argument("manifest", type=Path, help="manifest.json, or the folder holding it")
    export.add_argument("--format", choices=("openood", "hf"), required=True,
                        help="openood (OpenOOD v1.5 image lists) or hf (Hugging Face datasets: Parquet shards and a card)")
    export.add_argument("--out", type=Path, required=True, help="output folder; the export goes to OUT/NAME/")
    export.add_argument("--root", type=Path, help="the dataset folder (needed for --format hf and --link-images)")
    export.add_argument("--prefix", default="", help="openood: text put before the paths of NAME's own lists (e.g. 'cub/')")
    export.add_argument("--far-ood", action="append", metavar="NAME=MANIFEST", help="openood: a coarse OOD set (build-ood-set) "
                        "listed as far-OOD in the config; repeatable")
    export.add_argument("--ood-root", action="append", metavar="NAME=DIR", help="openood: dataset folder of a --far-ood "
                        "or --val-ood set (default --root)")
    export.add_argument("--seed", type=non_negative_int, default=0, help="openood: seed of the ID validation images carved from id_train "
                        "(evaluate --seed's) and of the synthetic OOD validation outliers (default 0)")
    export.add_argument("--val-ood", metavar="NAME=MANIFEST", help="openood: the OOD validation set (ood_dataset.val), an OOD "
                        "set manifest (default: Appendix D.3's synthetic outliers, made into the export from --root)")
    export.add_argument("--val-ood-size", type=positive_int, help="openood: synthetic OOD validation outliers per kind "
                        "(default: a fifth of the ID validation images in all, Appendix C's 5:1, at least 1 per kind)")
    export.add_argument("--link-images", choices=("symlink", "hardlink"), help="openood: build data/images_fgood/, a "
                        "space-free tree of links to the images, and list its paths (needed where paths have spaces: dog)")
    add_overwrite(export, "replace an earlier export OUT/NAME of the same format")
    export.set_defaults(run=cmd_export)

    ood_set = commands.add_parser(
        "build-ood-set", help="a fixed, seeded sample of a coarse OOD dataset as a manifest",
        description="Write OUT/NAME/manifest.json and splits/ood_test.txt: SIZE images (all by default) drawn with "
        "SEED from the dataset's official split(s): Places365 val, all of a DTD partition, all of an image folder.",
    )
    ood_set.add_argument("dataset", help="places365, dtd, imagefolder (or any adapter id), or synthetic-val "
                         "(the validation outliers of Appendix D.3, generated from --manifest's ID images)")
    ood_set.add_argument("--manifest", type=Path, help="synthetic-val: the benchmark manifest")
    ood_set.add_argument("--image-size", type=positive_int, default=paper.FINE_GRAINED_CROP,
                         help=f"synthetic-val: image size (default {paper.FINE_GRAINED_CROP}, Appendix D.1's crop)")
    ood_set.add_argument("--root", type=Path, required=True, help="the dataset folder, or the folder it was unpacked into")
    ood_set.add_argument("--out", type=Path, required=True, help="output folder; the set goes to OUT/NAME/")
    ood_set.add_argument("--name", help="name of the set (default: the dataset id)")
    ood_set.add_argument("--size", type=positive_int, help="number of images to sample (default: all); synthetic-val: per kind (default 100)")
    ood_set.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    ood_set.add_argument("--split", action="append", help="official split to draw from (repeatable; default per dataset)")
    ood_set.add_argument("--hash-images", action="store_true", help="record each image's sha256")
    add_overwrite(ood_set, "replace an earlier OOD set OUT/NAME")
    add_dataset_options(ood_set)
    ood_set.set_defaults(run=cmd_build_ood_set)


def cmd_build_splits(args: argparse.Namespace) -> int:
    from fgood_bench.ranking.build import BuildRequest, build_splits
    from fgood_bench.tools.loop import TrainConfig

    archs = args.arch or [paper.FINE_GRAINED.arch]
    # the same options -> TrainConfig as train and study (model_settings); --arch may be repeated here
    train = TrainConfig(**{**model_settings(args), "arch": archs[0], "reduced_decode": args.fast_decode,
                            "compile": args.compile})
    benchmark = None if args.benchmark == "custom" else args.benchmark
    request = BuildRequest(
        root=args.root, out=args.out, benchmark=benchmark, dataset=args.dataset, name=args.name, num_id=args.num_id,
        dataset_options=dataset_options(args), predictions=args.predictions, checkpoint=args.checkpoint, train=train,
        epochs=args.epochs, resume=args.resume, work_dir=args.work_dir, hash_images=args.hash_images,
        id_classes=args.id_classes, ood_classes=args.ood_classes, overwrite=args.overwrite, seeds=args.seeds, archs=archs,
        split_protocol=args.split_protocol, figures=figure_format(args),
        progress=True,
    )
    manifest = build_splits(request)
    if manifest is not None:
        print(manifest)
        summary.say(summary.benchmark_lines(manifest))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from fgood_bench.manifests.verify import verify_manifest

    report = verify_manifest(args.manifest, args.root, images=args.images, workers=args.workers,
                             progress=True)
    for line in report.summary():
        print(line)
    return 0 if report.ok else 1


def cmd_export(args: argparse.Namespace) -> int:
    from fgood_bench.manifests.export import export_hf, export_openood, openood_export_gaps

    if args.format == "openood":
        far_ood, ood_roots = named(args.far_ood, "--far-ood", "MANIFEST"), named(args.ood_root, "--ood-root", "DIR")
        val_ood = named([args.val_ood] if args.val_ood else None, "--val-ood", "MANIFEST")
        target = export_openood(args.manifest, args.out, prefix=args.prefix, far_ood=far_ood, root=args.root,
                                ood_roots=ood_roots, link=args.link_images, overwrite=args.overwrite, seed=args.seed,
                                val_ood=next(iter(val_ood.items()), None), val_ood_size=args.val_ood_size)
        for gap in openood_export_gaps(target):
            print(f"fgood-bench: warning: {gap}", file=sys.stderr)
    else:
        if args.root is None:
            raise FgoodError("export --format hf needs --root DIR (the images are embedded)")
        target = export_hf(args.manifest, args.root, args.out, overwrite=args.overwrite)
    print(target)
    return 0


def cmd_build_ood_set(args: argparse.Namespace) -> int:
    from fgood_bench.manifests.ood_set import build_ood_set, build_synthetic_val_set

    if args.dataset == "synthetic-val":
        if args.manifest is None:
            raise FgoodError("build-ood-set synthetic-val needs --manifest (the benchmark whose ID images it corrupts)")
        print(build_synthetic_val_set(args.manifest, args.root, args.out, per_kind=args.size or 100, seed=args.seed,
                                      image_size=args.image_size, name=args.name or "synthetic-val", overwrite=args.overwrite))
        return 0
    manifest = build_ood_set(args.dataset, args.root, args.out, name=args.name, size=args.size, seed=args.seed,
                             splits=args.split, dataset_options=dataset_options(args), hash_images=args.hash_images,
                             overwrite=args.overwrite)
    print(manifest)
    summary.say(summary.ood_set_lines(manifest))
    return 0
