"""``fgood-bench evaluate``, ``report`` and ``plot``: OOD metrics of a trained model, and their summaries."""

from __future__ import annotations

import argparse
from pathlib import Path

from fgood_bench import summary
from fgood_bench.errors import FgoodError
from fgood_bench.commands.options import (
    add_figure_options, add_geometry_options, add_overwrite, device_name, figure_format, named, non_negative_float, non_negative_int, positive_float, positive_int,
    requested_settings,
)


def add_parser(commands) -> None:
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
    evaluate.add_argument("--scorers", "--scorer", dest="scorers", default="msp,odin,energy,maxlogit",
                          help="comma-separated: msp, odin, energy, maxlogit, mahalanobis, gram, rotation (default msp,odin,energy,maxlogit)")
    evaluate.add_argument("--out", type=Path, required=True, help="folder for the reports")
    evaluate.add_argument("--base-rate", type=positive_float, help="evaluate at ID:OOD = R:1 by seeded subsampling (paper: 5)")
    evaluate.add_argument("--metrics", choices=("paper", "openood", "pytorch-ood", "mixoe-reference"),
                          help="metric convention (default paper: OOD positive, AUPR = average precision; see docs/evaluation.md)")
    evaluate.add_argument("--protocol", choices=("paper",),
                          help="paper: the paper's Appendix C protocol, i.e. --base-rate 5 with the paper's metric convention")
    evaluate.add_argument("--repeats", type=positive_int, help="subsampling draws for --base-rate (default 10)")
    evaluate.add_argument("--seed", type=int, default=0,
                          help="seed of every random choice: --base-rate draws and the ID validation images held out of "
                          "id_train when the benchmark has no id_val split (default 0)")
    evaluate.add_argument("--odin-epsilon", type=non_negative_float,
                          help="ODIN input perturbation, a step in [0, 1] pixel units (divided by each channel's std on the "
                          "normalised input, as ODIN, OpenOOD and pytorch-ood, whose default is 0.0014) "
                          "(default 0: off, as in the paper)")
    evaluate.add_argument("--gram-orders", type=positive_int, help="Gram scorer: orders 1..P (default 10)")
    evaluate.add_argument("--feature-layers", choices=("stages", "blocks", "lee"),
                          help="what mahalanobis and gram read: stages, the four residual stages' outputs (default); blocks, "
                          "every residual block's output (Appendix D.2; the default under --protocol paper); lee, Lee et al.'s "
                          "feature_list (the stem and the four stages)")
    evaluate.add_argument("--plots", action="store_true",
                          help="also draw confidence.png and interpolation.png (in the --figure-format formats)")
    add_figure_options(evaluate.add_argument_group("figures (with --plots)"), "120")
    add_overwrite(evaluate, "replace the results of an earlier evaluation in OUT")
    group = evaluate.add_argument_group("model and data")
    group.add_argument("--arch", help="architecture of a bare state-dict checkpoint (a fgood-bench checkpoint names its own)")
    group.add_argument("--batch-size", type=positive_int, default=32,
                       help="training batch size of the model; scoring uses twice it (default 32)")
    add_geometry_options(group)
    group.add_argument("--device", type=device_name, default="auto", help="auto (default: CUDA when present), cuda, cuda:N or cpu")
    group.add_argument("--workers", type=non_negative_int, help="data-loader processes (default: CPUs, at most 16)")
    group.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                       help="on CUDA, the backbone in float16 autocast: faster, but AUROC / AUPR can move by up to about 5e-4 "
                       "from float32's (the head, features and scorers stay float32; docs/evaluation.md). "
                       "Default: strict float32, TF32 off")
    evaluate.set_defaults(run=cmd_evaluate)

    report = commands.add_parser("report", help="mean +- std of several evaluate runs (e.g. seeds)",
                                 description="Mean and std over evaluate runs of different trained models (e.g. one per "
                                 "training seed), as the paper's tables; --paper prints the paper's values beside them.")
    report.add_argument("runs", type=Path, nargs="+", help="evaluate output folders (or their results.json)")
    report.add_argument("--out", type=Path, help="also write report.json, report.csv and report.md (and paper.md) here (a folder of its own)")
    report.add_argument("--paper", action="store_true",
                        help="print the paper's values (Tables 5-8) beside these runs' mean ± std, marking disagreements; "
                        "needs runs evaluated with --protocol paper")
    add_overwrite(report, "replace an earlier report in OUT")
    report.set_defaults(run=cmd_report)

    plot = commands.add_parser(
        "plot", help="redraw a run's confidence plot, or draw the paper's comparison figures of several runs",
        description="One run: redraw RUN/confidence.png from its scores.parquet. Several runs (e.g. Standard, OE and "
        "MixupOE on one benchmark) with --out: OUT/confidence.png, one panel per model on shared axes (paper "
        "Figures 3 and 6), and OUT/interpolation.png, one row per model (Figure 4; needs runs evaluated with --plots). "
        "--figure-format pdf,svg writes them as vector figures (confidence.pdf, ...) instead of or beside the PNGs.",
    )
    plot.add_argument("runs", type=Path, nargs="+", help="evaluate output folders")
    plot.add_argument("--out", type=Path, help="folder for the comparison figures (needed for several runs)")
    plot.add_argument("--hist", action="store_true", help="step histograms instead of kernel density curves")
    add_figure_options(plot, "120")
    add_overwrite(plot, "redraw an existing confidence.png, or replace earlier comparison figures in OUT")
    plot.set_defaults(run=cmd_plot)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from fgood_bench.evaluation.evaluate import EvaluateRequest, evaluate
    from fgood_bench.evaluation.report import markdown_table

    request = EvaluateRequest(
        checkpoint=args.checkpoint, manifest=args.manifest, root=args.root, out=args.out, ood=args.ood or ["holdout"],
        ood_roots=named(args.ood_root, "--ood-root", "DIR"), scorers=[s for s in args.scorers.split(",") if s],
        requested=requested_settings(args), arch=args.arch, batch_size=args.batch_size, device=args.device,
        workers=args.workers, seed=args.seed, plots=args.plots, figures=figure_format(args), overwrite=args.overwrite,
        progress=True,
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
    figures = figure_format(args)
    if args.out is None and len(args.runs) > 1:
        raise FgoodError("plot of several runs draws comparison figures: give the folder for them with --out DIR")
    if args.out:
        paths = plot_runs(args.runs, args.out, style, overwrite=args.overwrite, figures=figures)
    else:
        plot_run(args.runs[0], style, overwrite=args.overwrite, figures=figures)
        paths = [args.runs[0] / name for name in figures.names("confidence")]
    for path in paths:
        print(path)
    return 0
