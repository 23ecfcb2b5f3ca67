"""``fgood-bench sweep``: a method's hyperparameters chosen on validation outliers (paper, Appendix D.3, Table 4)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands) -> None:
    from fgood_bench.commands.options import add_figure_options, add_model_options, non_negative_float, positive_int
    from fgood_bench.study.sweep_report import DEFAULT_TOLERANCE, SELECT_METRICS, SWEEP_KEYS  # light: no torch

    keys = "; ".join(f"{method}: {', '.join(names)}" for method, names in SWEEP_KEYS.items())
    sweep = commands.add_parser(
        "sweep", help="train a grid of hyperparameters, select on validation outliers (Appendix D.3, Table 4), resumable",
        description="Train every point of the grid with train and evaluate it on the synthetic validation outliers of "
        "Appendix D.3 (never a test OOD set) against held-out ID validation images that no model of the sweep is "
        "trained on; fine-tuning methods start from a standard model trained here without them. Select by the rule "
        "in docs/training.md. Writes OUT/grid.md and grid.csv (Table 4 layout), heatmap-*.png (2-D grids), "
        "selected.json and results.json; per point OUT/points/KEY=V,.../ (train, eval-val, result.json). Run again "
        "with the same arguments to continue a killed sweep; add grid values to extend it.",
    )
    sweep.add_argument("--method", required=True, choices=tuple(SWEEP_KEYS), help="the method whose hyperparameters are swept")
    sweep.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2,...",
                       help=f"a hyperparameter and its values, by its train option's name; repeatable ({keys})")
    sweep.add_argument("--manifest", type=Path, required=True, help="the benchmark's manifest (build-splits)")
    sweep.add_argument("--root", type=Path, required=True, help="the benchmark dataset's folder")
    sweep.add_argument("--out", type=Path, required=True, help="the sweep's folder (one sweep per folder)")
    sweep.add_argument("--outliers", type=Path, help="outlier set for oe, energy-oe, mixupoe (as train)")
    sweep.add_argument("--outlier-root", type=Path, help="the outlier dataset's folder (default --root)")
    sweep.add_argument("--outlier-batch-size", type=positive_int, help="outliers per step (default: the recipe's)")
    sweep.add_argument("--val-ood", type=Path, metavar="MANIFEST",
                       help="the validation outliers: a build-ood-set synthetic-val set of this benchmark (default: "
                       "built into OUT/val-ood/synthetic-val from the benchmark with --seed at the training image size)")
    sweep.add_argument("--val-ood-size", type=positive_int, default=100,
                       help="images per kind of the validation outliers built when --val-ood is not given (default 100)")
    sweep.add_argument("--init", type=Path,
                       help="the standard model to fine-tune from: it must have been trained without the ID validation "
                       "images (an earlier sweep's OUT/baseline/train/classifier.pt); default: trained here")
    sweep.add_argument("--standard-epochs", type=positive_int,
                       help="epochs of the standard model trained here (default: the recipe's, 60 or 30)")
    sweep.add_argument("--seeds", type=positive_int, default=1, metavar="N",
                       help="train every point (and the standard model trained here) with the training seeds --seed .. "
                       "--seed + N - 1; the tables show the mean +- std over them and the selection reads the mean "
                       "(Table 4: 5 runs; default 1)")
    sweep.add_argument("--from-scratch", action="store_true", help="fine-tuning methods: train each point as standard training does")
    sweep.add_argument("--scorer", "--scorers", dest="scorer", help="the evaluate scorer read for detection (default: the paper's for the method: "
                       "msp for oe, mixupoe; energy for energy-oe; rotation for rotation)")
    sweep.add_argument("--select-metric", choices=tuple(SELECT_METRICS), default="aupr",
                       help="validation metric the selection optimises, mean over the kinds of validation outliers "
                       "(default aupr, AUPR-out as Table 4; fpr95 is minimised)")
    sweep.add_argument("--accuracy-tolerance", type=non_negative_float, default=DEFAULT_TOLERANCE, metavar="POINTS",
                       help="eligible points lose at most this many percentage points of ID validation accuracy against "
                       f"the grid's best (default {DEFAULT_TOLERANCE:g})")
    test = sweep.add_argument_group("test OOD sets (analysis only: evaluated after the selection, never used by it)")
    test.add_argument("--evaluate-test", action="store_true", help="also evaluate every point on the test OOD sets")
    test.add_argument("--ood", action="append", metavar="holdout|NAME=MANIFEST", help="a test OOD set, as evaluate's "
                      "(default: holdout); repeatable")
    test.add_argument("--ood-root", action="append", metavar="NAME=DIR", help="dataset folder of a test OOD set (default --root)")
    test.add_argument("--protocol", choices=("paper",), help="paper: the test evaluations at ID:OOD = 5:1 (Appendix C)")
    add_model_options(sweep, recipes=True)
    add_figure_options(sweep.add_argument_group("figures (heatmap-*.png of 2-D grids)"), "120")
    sweep.add_argument("--resume", action="store_true", help="continue a stopped sweep (a plain rerun continues it too)")
    sweep.set_defaults(run=run_sweep, rerun_continues=True)


def run_sweep(args: argparse.Namespace) -> int:
    from fgood_bench import summary
    from fgood_bench.commands.options import figure_format, model_settings, named
    from fgood_bench.study.sweep import SweepRequest, run_sweep as sweep
    from fgood_bench.study.sweep_report import selection_lines, sweep_markdown

    settings = model_settings(args)
    result = sweep(SweepRequest(
        method=args.method, grid=args.grid, manifest=args.manifest, root=args.root, out=args.out, outliers=args.outliers,
        outlier_root=args.outlier_root, outlier_batch=args.outlier_batch_size, val_ood=args.val_ood,
        val_ood_size=args.val_ood_size, settings=settings, epochs=args.epochs, standard_epochs=args.standard_epochs,
        init=args.init, from_scratch=args.from_scratch, scorer=args.scorer, select_metric=args.select_metric,
        tolerance=args.accuracy_tolerance, evaluate_test=args.evaluate_test, test_ood=args.ood or [],
        test_ood_roots=named(args.ood_root, "--ood-root", "DIR"), protocol=args.protocol, progress=True, seeds=args.seeds,
        figures=figure_format(args),
    ))
    print(sweep_markdown(result), end="")
    summary.say(selection_lines(result, args.out))
    return 0
