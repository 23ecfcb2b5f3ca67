"""The ``fgood-bench`` command line: a thin layer over the Python API.

Errors the user can fix (:class:`~fgood_bench.errors.FgoodError`) print one line on stderr and
exit with status 2; nothing is printed as a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from fgood_bench import __version__, summary
from fgood_bench.errors import FgoodError

EXIT_BAD_INPUT = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a process killed by a closed pipe


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
            progress=True, **_dataset_options(args),
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


def cmd_build_splits(args: argparse.Namespace) -> int:
    from fgood_bench.ranking import BuildRequest, build_splits
    from fgood_bench.training.engine import TrainConfig

    archs = args.arch or ["resnet50"]
    train = TrainConfig(
        arch=archs[0], weights=args.weights, lr=args.lr, batch_size=args.batch_size, image_size=args.image_size,
        resize_mode=args.resize_mode, weight_decay=args.weight_decay, seed=args.seed, device=args.device,
        workers=args.workers, amp=not args.no_amp,
    )
    benchmark = None if args.benchmark == "custom" else args.benchmark
    request = BuildRequest(
        root=args.root, out=args.out, benchmark=benchmark, dataset=args.dataset, name=args.name, num_id=args.num_id,
        dataset_options=_dataset_options(args), predictions=args.predictions, checkpoint=args.checkpoint, train=train,
        epochs=args.epochs, resume=args.resume, work_dir=args.work_dir, hash_images=args.hash_images,
        id_classes=args.id_classes, ood_classes=args.ood_classes, overwrite=args.overwrite, seeds=args.seeds, archs=archs,
        split_protocol=args.split_protocol,
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
    from fgood_bench.manifests.export import export_hf, export_openood

    if args.format == "openood":
        far_ood, ood_roots = _named(args.far_ood, "--far-ood", "MANIFEST"), _named(args.ood_root, "--ood-root", "DIR")
        target = export_openood(args.manifest, args.out, prefix=args.prefix, far_ood=far_ood, root=args.root,
                                ood_roots=ood_roots, link=args.link_images, overwrite=args.overwrite)
    else:
        if args.root is None:
            raise FgoodError("export --format hf needs --root DIR (the images are embedded)")
        target = export_hf(args.manifest, args.root, args.out, overwrite=args.overwrite)
    print(target)
    return 0


def _named(specs: list[str] | None, option: str, what: str) -> dict[str, Path]:
    """``NAME=VALUE`` options as a dict."""
    named = {}
    for spec in specs or []:
        name, _, value = spec.partition("=")
        if not name or not value:
            raise FgoodError(f"{option} {spec!r}: expected NAME={what}")
        named[name] = Path(value)
    return named


def cmd_build_ood_set(args: argparse.Namespace) -> int:
    from fgood_bench.manifests.ood_set import build_ood_set, build_synthetic_val_set

    if args.dataset == "synthetic-val":
        if args.manifest is None:
            raise FgoodError("build-ood-set synthetic-val needs --manifest (the benchmark whose ID images it corrupts)")
        print(build_synthetic_val_set(args.manifest, args.root, args.out, per_kind=args.size or 100, seed=args.seed,
                                      image_size=args.image_size, name=args.name or "synthetic-val", overwrite=args.overwrite))
        return 0
    manifest = build_ood_set(args.dataset, args.root, args.out, name=args.name, size=args.size, seed=args.seed,
                             splits=args.split, dataset_options=_dataset_options(args), hash_images=args.hash_images,
                             overwrite=args.overwrite)
    print(manifest)
    summary.say(summary.ood_set_lines(manifest))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from fgood_bench.training.train import TrainRequest, train

    settings = {"arch": args.arch, "weights": args.weights, "lr": args.lr, "batch_size": args.batch_size,
                "image_size": args.image_size, "resize_mode": args.resize_mode, "weight_decay": args.weight_decay,
                "seed": args.seed, "device": args.device, "workers": args.workers, "amp": not args.no_amp}
    hyper = {"beta": args.beta, "alpha": args.alpha, "beta_in_in": args.beta_in_in, "alpha_in_in": args.alpha_in_in,
             "beta_out": args.beta_out, "mix_op": args.mix_op, "coarse": args.coarse or None, "m_in": args.m_in,
             "m_out": args.m_out, "energy_weight": args.energy_weight, "rotation_weight": args.rotation_weight}
    request = TrainRequest(
        method=args.method, manifest=args.manifest, root=args.root, out=args.out, outliers=args.outliers,
        outlier_root=args.outlier_root, settings=settings, epochs=args.epochs, hyper=hyper, init=args.init,
        from_scratch=args.from_scratch, outlier_batch=args.outlier_batch_size, max_steps=args.max_steps,
        allow_pretrained_leak=args.allow_pretrained_leak, resume=args.resume, overwrite=args.overwrite,
        progress=True,
    )
    classifier = train(request)
    if classifier is not None:
        print(classifier)
        summary.say(summary.training_lines(classifier))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from fgood_bench.demo import DEMO_FOLDERS, run_demo

    from fgood_bench.outputs import clear_outputs, run_folder

    with tempfile.TemporaryDirectory(prefix="fgood-demo-") as scratch:
        workdir = args.workdir or Path(scratch)
        with run_folder(workdir, "demo", reuse=args.overwrite, hint="pass --overwrite to run the demo there again"):
            clear_outputs(workdir, DEMO_FOLDERS)
            run_demo(workdir, progress=True, epochs=args.epochs, device=args.device)
        if args.workdir is None:
            print("(the demo ran in a temporary folder, now removed: pass --workdir DIR to keep its artefacts)")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from fgood_bench.evaluation.evaluate import EvaluateRequest, evaluate
    from fgood_bench.evaluation.protocol import resolve
    from fgood_bench.evaluation.report import markdown_table
    from fgood_bench.training.engine import TrainConfig

    ood_roots = _named(args.ood_root, "--ood-root", "DIR")
    config = TrainConfig(weights=None, batch_size=args.batch_size, device=args.device, workers=args.workers, amp=not args.no_amp)
    base_rate, convention = resolve(args.protocol, args.base_rate, args.metrics)
    request = EvaluateRequest(
        checkpoint=args.checkpoint, manifest=args.manifest, root=args.root, out=args.out, ood=args.ood or ["holdout"],
        ood_roots=ood_roots, scorers=[s for s in args.scorers.split(",") if s], config=config, arch=args.arch,
        image_size=args.image_size, base_rate=base_rate, metric_convention=convention, repeats=args.repeats, seed=args.seed,
        odin_epsilon=args.odin_epsilon, gram_orders=args.gram_orders, feature_layers=args.feature_layers,
        plots=args.plots, overwrite=args.overwrite, progress=True,
    )
    results = evaluate(request)
    print(markdown_table(results), end="")
    summary.say(summary.evaluation_lines(results, args.out))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from fgood_bench.evaluation.paper import comparison_markdown
    from fgood_bench.evaluation.report import aggregate, markdown_table, write_aggregate

    report = aggregate(args.runs)
    paper = comparison_markdown(report) if args.paper else None  # refuses before anything is written
    if args.out:
        write_aggregate(report, args.out, {"paper.md": paper} if paper else None, overwrite=args.overwrite)
    print(markdown_table(report), end="")
    if paper:
        print("\n" + paper, end="")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from fgood_bench.evaluation.plots import plot_run, plot_runs

    style = "hist" if args.hist else "kde"
    if args.out is None and len(args.runs) > 1:
        raise FgoodError("plot of several runs draws comparison figures: give the folder for them with --out DIR")
    if args.out:
        paths = plot_runs(args.runs, args.out, style, overwrite=args.overwrite)
    else:
        paths = [plot_run(args.runs[0], style, overwrite=args.overwrite)]
    for path in paths:
        print(path)
    return 0


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

    from fgood_bench.manifests.files import class_names_in_file

    wnids = list(args.exclude_wnid or [])
    for path in args.exclude_list or []:
        wnids += class_names_in_file(path)
    manifest = filter_outliers(
        args.benchmark, args.source, args.root, args.out, exclude_roots=args.exclude_root or [],
        exclude_wnids=list(dict.fromkeys(wnids)), all_benchmarks=args.exclude_all_benchmarks, name=args.name,
        dataset_options=_dataset_options(args), progress=True, overwrite=args.overwrite,
        exclude_duplicates_of=args.exclude_duplicates_of,
    )
    print(manifest)
    summary.say(summary.outlier_lines(manifest))
    return 0


def _add_exclusion_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("benchmark", help="bird, dog, flower, car, aircraft, or none")
    parser.add_argument("--exclude-root", action="append", metavar="SYNSET",
                        help="also exclude the ImageNet-1k hyponyms of this WordNet synset (dog.n.01 or n02084071); repeatable")
    parser.add_argument("--exclude-wnid", action="append", metavar="WNID", help="also exclude this ImageNet-1k concept; repeatable")
    parser.add_argument("--exclude-all-benchmarks", action="store_true", help="exclude the union of the five benchmarks' sets")


def _add_overwrite(parser: argparse.ArgumentParser, what: str, restart: bool = False) -> None:
    names = ("--overwrite", "--restart") if restart else ("--overwrite",)
    parser.add_argument(*names, dest="overwrite", action="store_true",
                        help=f"{what}; without it an existing output is never replaced (docs/outputs.md)")


def _add_dataset_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dataset options")
    group.add_argument("--partition", type=positive_int, help="minc2500: 1..5, dtd: 1..10 (default 1)")
    group.add_argument("--variant", help="thudogs: low|high (default: high if present); places365: 256|large (default 256)")
    group.add_argument("--level", help="fgvc_aircraft: variant|family|manufacturer (default variant)")


def _add_model_options(parser: argparse.ArgumentParser, recipes: bool = False, several_archs: bool = False) -> None:
    """Model and training options; with ``recipes`` their defaults are the benchmark's recipe (train)."""
    title = ("model and training (defaults: the benchmark's recipe, Appendix D.1 or H.2 for inet-*)" if recipes
             else "model and training (defaults: the paper's recipe, Appendix D.1)")
    group = parser.add_argument_group(title)

    def default(value, text: str):
        return (None, "recipe: " + text) if recipes else (value, f"default {value}")

    value, text = default("resnet50", "resnet50; resnet18 for inet-*")
    if several_archs:  # build-splits: one ranking per architecture (and seed)
        group.add_argument("--arch", action="append", help=f"any torchvision classification model ({text}); "
                           "repeatable: --seeds rankings for each")
    else:
        group.add_argument("--arch", default=value, help=f"any torchvision classification model ({text})")
    value, text = default("IMAGENET1K_V1", "IMAGENET1K_V1; none for inet-*")
    group.add_argument("--weights", default=value,
                       help=f"torchvision weights name, a local state-dict file, or 'none' ({text}; "
                       "IMAGENET1K_V1 = the MixOE reference's pretrained=True)")
    group.add_argument("--epochs", type=positive_int, help="default: 60 for bird, car, aircraft; 30 for dog, flower"
                       + ("; 90 for inet-*; 10 when fine-tuning" if recipes else ""))
    value, text = default(1e-3, "1e-3; 0.1 for inet-* standard training")
    group.add_argument("--lr", type=positive_float, default=value, help=f"initial learning rate, cosine schedule ({text})")
    value, text = default(32, "32, rotation 16; 256 for inet-*")
    group.add_argument("--batch-size", type=positive_int, default=value, help=f"global batch size ({text})")
    value, text = default(448, "448; 224 for inet-*")
    group.add_argument("--image-size", type=positive_int, default=value,
                       help=f"crop size; images are first resized to 8/7 of it ({text})")
    value, text = default("square", "square; shorter for inet-*")
    group.add_argument("--resize-mode", choices=("square", "shorter"), default=value,
                       help=f"square: Resize((s, s)) as Appendix D.1; shorter: the shorter side to s, as H.2 ({text})")
    value, text = default(1e-5, "1e-5")
    group.add_argument("--weight-decay", type=non_negative_float, default=value,
                       help=f"SGD weight decay ({text}, the MixOE reference's)")
    group.add_argument("--device", default="auto", help="auto (CUDA when present), cuda, cuda:N or cpu")
    group.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    group.add_argument("--workers", type=non_negative_int, help="data-loader processes per GPU (default: CPUs, at most 16)")
    group.add_argument("--no-amp", action="store_true", help="train and predict in fp32 on CUDA (default: bf16 autocast)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="fgood-bench",
        description="Build, publish and validate fine-grained OOD detection benchmarks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="run the whole pipeline on generated data (a few minutes on a CPU)",
        description="Generate a small fine-grained dataset in CUB's native layout, a WebVision-layout outlier set "
        "with real ImageNet wnids and a coarse OOD set; then build-splits, build-ood-set, filter-outliers, train "
        "standard and mixupoe, evaluate and report. Prints where each artefact is.",
    )
    demo.add_argument("--workdir", type=Path, help="keep everything here (default: a temporary folder)")
    demo.add_argument("--epochs", type=positive_int, default=4, help="epochs of the small classifiers (default 4)")
    demo.add_argument("--device", default="cpu", help="cpu (default) or cuda: the same tiny pipeline on a GPU (bf16 autocast)")
    _add_overwrite(demo, "run again in a --workdir that holds an earlier demo (its files are replaced)")
    demo.set_defaults(run=cmd_demo)

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
    inspect.add_argument("--workers", type=positive_int, help="processes for --check-images (default: all CPUs)")
    inspect.add_argument("--sample", action="store_true",
                         help="first write a small synthetic copy of the dataset in its native layout "
                         "(into --root if given, else a temporary folder) and inspect that")
    _add_dataset_options(inspect)
    inspect.set_defaults(run=cmd_inspect)

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
    _add_overwrite(build, "replace an earlier OUT/NAME and start its training over", restart=True)
    build.add_argument("--work-dir", type=Path, help="training checkpoints (default OUT/NAME.work)")
    build.add_argument("--hash-images", action="store_true", help="record each image's sha256 in the split files")
    build.add_argument("--split-protocol", choices=("paper", "official"),
                       help="flower: paper (default; trains on the official test split, ranks and tests on train + val, "
                       "as Table 3's 5,878 ID training images imply) or official (trains on train, tests on test)")
    build.add_argument("--id-classes", type=Path, help="give the ID classes instead of ranking (e.g. manifests/inet/inet_a.tsv); "
                       "a TSV with a wnid column or one class name per line; needs --dataset")
    build.add_argument("--ood-classes", type=Path, help="with --id-classes: the only classes whose images form ood_test "
                       "(default: all other classes)")
    _add_dataset_options(build)
    _add_model_options(build, several_archs=True)
    build.set_defaults(run=cmd_build_splits)

    verify = commands.add_parser(
        "verify", help="check a dataset copy against a manifest (metadata, split files, images)",
        description="Check that the dataset's metadata files match the manifest's sha256, that no split file was "
        "changed, and that every listed image exists (with --images: decodes and matches its recorded sha256). "
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
        "{train,val,test}_NAME.txt, test_holdout.txt (near-OOD) and test_FAR.txt per --far-ood ('path label', OOD -1), "
        "and configs/datasets/NAME/NAME.yml and NAME_ood.yml. --format hf writes OUT/NAME/data/<split>-*.parquet "
        "with the image bytes embedded and a dataset card README.md; datasets.load_dataset('OUT/NAME') loads it offline.",
    )
    export.add_argument("manifest", type=Path, help="manifest.json, or the folder holding it")
    export.add_argument("--format", choices=("openood", "hf"), required=True)
    export.add_argument("--out", type=Path, required=True, help="output folder; the export goes to OUT/NAME/")
    export.add_argument("--root", type=Path, help="the dataset folder (needed for --format hf and --link-images)")
    export.add_argument("--prefix", default="", help="openood: text put before the paths of NAME's own lists (e.g. 'cub/')")
    export.add_argument("--far-ood", action="append", metavar="NAME=MANIFEST", help="openood: a coarse OOD set (build-ood-set) "
                        "listed as far-OOD in the config; repeatable")
    export.add_argument("--ood-root", action="append", metavar="NAME=DIR", help="openood: dataset folder of a --far-ood set "
                        "(default --root)")
    export.add_argument("--link-images", choices=("symlink", "hardlink"), help="openood: build data/images_fgood/, a "
                        "space-free tree of links to the images, and list its paths (needed where paths have spaces: dog)")
    _add_overwrite(export, "replace an earlier export OUT/NAME of the same format")
    export.set_defaults(run=cmd_export)

    ood_set = commands.add_parser(
        "build-ood-set", help="a fixed, seeded sample of a coarse OOD dataset as a manifest",
        description="Write OUT/NAME/manifest.json and splits/ood_test.txt: SIZE images (all by default) drawn with "
        "SEED from the dataset's official split(s): Places365 val, all of a DTD partition, all of an image folder.",
    )
    ood_set.add_argument("dataset", help="places365, dtd, imagefolder (or any adapter id), or synthetic-val "
                         "(the validation outliers of Appendix D.3, generated from --manifest's ID images)")
    ood_set.add_argument("--manifest", type=Path, help="synthetic-val: the benchmark manifest")
    ood_set.add_argument("--image-size", type=positive_int, default=448, help="synthetic-val: image size (default 448)")
    ood_set.add_argument("--root", type=Path, required=True, help="the dataset folder, or the folder it was unpacked into")
    ood_set.add_argument("--out", type=Path, required=True, help="output folder; the set goes to OUT/NAME/")
    ood_set.add_argument("--name", help="name of the set (default: the dataset id)")
    ood_set.add_argument("--size", type=positive_int, help="number of images to sample (default: all); synthetic-val: per kind (default 100)")
    ood_set.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    ood_set.add_argument("--split", action="append", help="official split to draw from (repeatable; default per dataset)")
    ood_set.add_argument("--hash-images", action="store_true", help="record each image's sha256")
    _add_overwrite(ood_set, "replace an earlier OOD set OUT/NAME")
    _add_dataset_options(ood_set)
    ood_set.set_defaults(run=cmd_build_ood_set)

    training = commands.add_parser(
        "train", help="train a reference method (standard, oe, energy-oe, rotation, mixupoe) on a benchmark",
        description="Train on the benchmark's id_train split. Recipes (Appendix D.1): standard and rotation train "
        "60 epochs (bird, car, aircraft) or 30 (flower, dog) from ImageNet weights; oe, energy-oe and mixupoe "
        "fine-tune the standard model (--init) for 10 epochs with 32 outliers per step, or --from-scratch. "
        "inet-* benchmarks (Appendix H.2): ResNet-18 from scratch, 90 epochs at lr 0.1, batch 256; oe, energy-oe, "
        "mixupoe and rotation fine-tune for 10 epochs at lr 1e-3 with 512 outliers per step. "
        "Writes OUT/classifier.pt, OUT/checkpoint.pt (resumable) and OUT/metrics.jsonl. Multi-GPU: "
        "torchrun --nproc-per-node N -m fgood_bench train ...",
    )
    training.add_argument("--method", required=True, choices=("standard", "oe", "energy-oe", "rotation", "mixupoe"))
    training.add_argument("--manifest", type=Path, required=True, help="the benchmark's manifest (build-splits)")
    training.add_argument("--root", type=Path, required=True, help="the benchmark dataset's folder")
    training.add_argument("--out", type=Path, required=True, help="folder for the checkpoints and the log")
    training.add_argument("--outliers", type=Path, help="outlier set: a filter-outliers (or build-ood-set) manifest")
    training.add_argument("--outlier-root", type=Path, help="the outlier dataset's folder (default --root)")
    training.add_argument("--outlier-batch-size", type=positive_int,
                          help="outliers per step (recipe: 32; 512 for inet-*); mixupoe mixes one per ID image and "
                          "draws more only for --beta-out")
    training.add_argument("--init", type=Path, help="the standard model that fine-tuning methods start from")
    training.add_argument("--from-scratch", action="store_true",
                          help="fine-tuning methods: train as standard training does instead (its weights and epochs)")
    training.add_argument("--allow-pretrained-leak", action="store_true",
                          help="accept ImageNet-pretrained weights for a benchmark built from ImageNet (they have seen its OOD classes)")
    training.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    _add_overwrite(training, "start over in an OUT that holds an earlier run (its files are replaced)", restart=True)
    training.add_argument("--max-steps", type=positive_int, help="stop after this many steps (smoke runs)")
    hyper = training.add_argument_group("method hyperparameters (paper's names; defaults Appendix D.3)")
    hyper.add_argument("--beta", type=float, help="OE weight, MixupOE beta_in-out (default 5.0; 1.0 for dog)")
    hyper.add_argument("--alpha", type=float, help="MixupOE alpha_in-out of Beta(alpha, alpha) (default 1.0)")
    hyper.add_argument("--beta-in-in", type=float, help="MixupOE: add the ID-ID term of eq. (2) with this weight")
    hyper.add_argument("--alpha-in-in", type=float, help="MixupOE: alpha of the ID-ID mixup (default --alpha)")
    hyper.add_argument("--beta-out", type=float, help="MixupOE: add the OOD (OE) term of eq. (2) with this weight")
    hyper.add_argument("--mix-op", choices=("mixup", "cutmix"), help="MixupOE mixing (default mixup)")
    hyper.add_argument("--coarse", action="store_true", help="MixupOE: lam' = min(lam, 1 - lam) (Appendix H.2)")
    hyper.add_argument("--m-in", type=float, help="EnergyOE m_in (default -15)")
    hyper.add_argument("--m-out", type=float, help="EnergyOE m_out (default -5)")
    hyper.add_argument("--energy-weight", type=float, help="EnergyOE lambda (default 0.1)")
    hyper.add_argument("--rotation-weight", type=float, help="rotation: weight of the rotation loss (default 1.0, the MixOE reference's)")
    _add_model_options(training, recipes=True)
    training.set_defaults(run=cmd_train)

    evaluate = commands.add_parser(
        "evaluate", help="score ID test images against holdout and coarse OOD sets; FPR95 / AUROC / AUPR per scorer",
        description="One forward pass per image feeds every scorer (higher score = more ID). Metrics: OOD is the "
        "positive class, detected by a low score (paper, Appendix C); AUPR in the table is AUPR-out. Validation "
        "outliers (build-ood-set synthetic-val) are scored against held-out ID validation images, never the ID test "
        "images. Writes results.json, results.csv, results.md and scores.parquet (per-image scores) into --out.",
    )
    evaluate.add_argument("--checkpoint", type=Path, required=True, help="a classifier of the benchmark's K ID classes")
    evaluate.add_argument("--manifest", type=Path, required=True, help="the benchmark's manifest (build-splits)")
    evaluate.add_argument("--root", type=Path, required=True, help="the benchmark dataset's folder")
    evaluate.add_argument("--ood", action="append", metavar="holdout|NAME=MANIFEST",
                          help="an OOD set: 'holdout' (the benchmark's ood_test split) or a build-ood-set manifest; "
                          "repeatable (default: holdout)")
    evaluate.add_argument("--ood-root", action="append", metavar="NAME=DIR", help="dataset folder of an OOD set (default --root)")
    evaluate.add_argument("--scorers", default="msp,odin,energy,maxlogit",
                          help="comma-separated: msp, odin, energy, maxlogit, mahalanobis, gram, rotation (default msp,odin,energy,maxlogit)")
    evaluate.add_argument("--out", type=Path, required=True, help="folder for the reports")
    evaluate.add_argument("--base-rate", type=positive_float, help="evaluate at ID:OOD = R:1 by seeded subsampling (paper: 5)")
    evaluate.add_argument("--metrics", choices=("paper", "openood", "pytorch-ood", "mixoe-reference"),
                          help="metric convention (default paper: OOD positive, AUPR = average precision; see docs/evaluation.md)")
    evaluate.add_argument("--protocol", choices=("paper",),
                          help="paper: the paper's Appendix C protocol, i.e. --base-rate 5 with the paper's metric convention")
    evaluate.add_argument("--repeats", type=positive_int, default=10, help="subsampling draws for --base-rate (default 10)")
    evaluate.add_argument("--seed", type=int, default=0,
                          help="seed of every random choice: --base-rate draws and the ID validation images held out of "
                          "id_train when the benchmark has no id_val split (default 0)")
    evaluate.add_argument("--odin-epsilon", type=non_negative_float, default=0.0,
                          help="ODIN input perturbation, a step in [0, 1] pixel units (divided by each channel's std on the "
                          "normalised input, as ODIN, OpenOOD and pytorch-ood, whose default is 0.0014) "
                          "(default 0: off, as in the paper)")
    evaluate.add_argument("--gram-orders", type=positive_int, default=10, help="Gram scorer: orders 1..P (default 10)")
    evaluate.add_argument("--feature-layers", choices=("stages", "blocks"), default="stages",
                          help="what mahalanobis and gram read: the four residual stages' outputs (default, as Lee et al.'s "
                          "code) or every residual block's output (Appendix D.2's wording)")
    evaluate.add_argument("--plots", action="store_true", help="also draw confidence.png and interpolation.png")
    _add_overwrite(evaluate, "replace the results of an earlier evaluation in OUT")
    group = evaluate.add_argument_group("model and data")
    group.add_argument("--arch", help="architecture of a bare state-dict checkpoint (a fgood-bench checkpoint names its own)")
    group.add_argument("--batch-size", type=positive_int, default=32)
    group.add_argument("--image-size", type=positive_int,
                       help="crop size (default: the checkpoint's training size and resize rule; 448 for a bare state dict); "
                       "another size than the checkpoint's is used with a warning")
    group.add_argument("--device", default="auto")
    group.add_argument("--workers", type=non_negative_int)
    group.add_argument("--no-amp", action="store_true",
                       help="all float32 on CUDA, for exact scores (default: bf16 autocast backbone, float32 head and scorers)")
    evaluate.set_defaults(run=cmd_evaluate)

    report = commands.add_parser("report", help="mean +- std of several evaluate runs (e.g. seeds)")
    report.add_argument("runs", type=Path, nargs="+", help="evaluate output folders")
    report.add_argument("--out", type=Path, help="also write report.json, report.csv and report.md (and paper.md) here (a folder of its own)")
    report.add_argument("--paper", action="store_true",
                        help="print the paper's values (Tables 5-8) beside these runs' mean ± std, marking disagreements; "
                        "needs runs evaluated with --protocol paper")
    _add_overwrite(report, "replace an earlier report in OUT")
    report.set_defaults(run=cmd_report)

    exclusions = commands.add_parser(
        "outlier-exclusions", help="the ImageNet-1k / WebVision concepts excluded from a benchmark's outlier set",
        description="Every ImageNet-1k concept that is a WordNet 3.0 hyponym (transitively, instance hyponyms included) "
        "of the benchmark's roots: bird: bird.n.01; dog: dog.n.01, wild_dog.n.01; flower: flower.n.01; car: "
        "motor_vehicle.n.01, bus.n.01, car_wheel.n.01, car_mirror.n.01, grille.n.02; aircraft: aircraft.n.01, wing.n.02. "
        "Prints wnid, names and the matching root.",
    )
    _add_exclusion_options(exclusions)
    exclusions.add_argument("--json", action="store_true", help="one JSON object (key excluded_wnids, ...)")
    exclusions.set_defaults(run=cmd_outlier_exclusions)

    outliers = commands.add_parser(
        "filter-outliers", help="an outlier-exposure set (WebVision, ImageNet, MINC) without the benchmark's concepts",
        description="Write OUT/NAME/manifest.json (kind outliers, split train), splits/train.txt and report.md: the "
        "training images of the source minus every image of an excluded concept, with a report of each excluded "
        "concept and the images removed. WebVision images are assigned to concepts through their query "
        "(info/queries_synsets_map.txt).",
    )
    _add_exclusion_options(outliers)
    outliers.add_argument("--source", required=True, choices=("webvision", "imagenet", "minc2500"))
    outliers.add_argument("--exclude-list", type=Path, action="append", metavar="FILE",
                          help="also exclude the wnids of FILE (a TSV with a wnid column, e.g. manifests/inet/inet_a.tsv); repeatable")
    outliers.add_argument("--root", type=Path, required=True, help="the source dataset's folder")
    outliers.add_argument("--out", type=Path, required=True, help="output folder; the set goes to OUT/NAME/")
    outliers.add_argument("--name", help="name of the set (default SOURCE-BENCHMARK)")
    _add_overwrite(outliers, "replace an earlier outlier set OUT/NAME")
    outliers.add_argument("--exclude-duplicates-of", type=Path, metavar="AUDIT_JSON",
                          help="also remove the outlier images an audit-leakage audit.json found to be copies of test images")
    _add_dataset_options(outliers)
    outliers.set_defaults(run=cmd_filter_outliers)

    plot = commands.add_parser(
        "plot", help="redraw a run's confidence plot, or draw the paper's comparison figures of several runs",
        description="One run: redraw RUN/confidence.png from its scores.parquet. Several runs (e.g. Standard, OE and "
        "MixupOE on one benchmark) with --out: OUT/confidence.png, one panel per model on shared axes (paper "
        "Figures 3 and 6), and OUT/interpolation.png, one row per model (Figure 4; needs runs evaluated with --plots).",
    )
    plot.add_argument("runs", type=Path, nargs="+", help="evaluate output folders")
    plot.add_argument("--out", type=Path, help="folder for the comparison figures (needed for several runs)")
    plot.add_argument("--hist", action="store_true", help="step histograms instead of kernel density curves")
    _add_overwrite(plot, "redraw an existing confidence.png, or replace earlier comparison figures in OUT")
    plot.set_defaults(run=cmd_plot)

    from fgood_bench.commands import audit, publish, study, sweep  # noqa: E402  (commands with a module of their own)

    audit.add_parser(commands)
    study.add_parser(commands)
    sweep.add_parser(commands)
    publish.add_parser(commands)
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


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):  # NaN fails both comparisons
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, --version, or a bad command line (already reported in one line)
        return done.code if isinstance(done.code, int) else EXIT_BAD_INPUT
    try:
        status = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except FgoodError as err:
        print(f"fgood-bench: error: {one_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        from fgood_bench.interrupt import RESUME_HINT

        print("fgood-bench: interrupted" + (f"; {RESUME_HINT}" if hasattr(args, "resume") else ""), file=sys.stderr)
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
