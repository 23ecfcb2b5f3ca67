"""``fgood-bench study random-splits``: accuracy and detection of random class splits (paper, Figure 2)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fgood_bench.errors import FgoodError


def add_parser(commands) -> None:
    from fgood_bench.commands.options import add_dataset_options, add_figure_options, add_model_options, positive_int

    study = commands.add_parser("study", help="studies of benchmark design run with the pipeline's own commands")
    kinds = study.add_subparsers(dest="study", required=True, metavar="STUDY")
    random = kinds.add_parser(
        "random-splits", help="train and evaluate random ID/holdout class splits: the variance of Figure 2",
        description="Draw --splits random sets of --num-id ID classes (seeded), build each as a benchmark with given "
        "classes, train it (standard training) and evaluate MSP against its holdout classes. Writes OUT/results.json, "
        "results.csv, results.md (per-split accuracy / AUROC / AUPR / FPR95 and their spread) and figure2.png (splits "
        "sorted by AUPR, the --ranked split marked). Run again with the same arguments to continue a killed study.",
    )
    random.add_argument("benchmark", nargs="?", help="bird, dog, flower, car or aircraft; omit (or say custom) with --dataset")
    random.add_argument("--dataset", help="adapter id, for a dataset without a preset")
    random.add_argument("--root", type=Path, required=True, help="the dataset folder")
    random.add_argument("--out", type=Path, required=True, help="the study's folder (one study per folder)")
    random.add_argument("--num-id", type=positive_int, default=10, help="ID classes per split (default 10, as Figure 2)")
    random.add_argument("--splits", type=positive_int, default=20, help="number of random splits (default 20)")
    random.add_argument("--ranked", type=Path, help="a build-splits benchmark with the same --num-id, trained and marked for comparison")
    random.add_argument("--scorer", "--scorers", dest="scorer", default="msp", help="the evaluate scorer whose AUROC / AUPR are reported (default msp)")
    random.add_argument("--protocol", choices=("paper", "all"), default="paper",
                        help="paper: ID:OOD = 5:1 with the paper's metric convention (Appendix C; default); all: every "
                        "image of each set (the holdout classes outnumber the ID ones, and AUPR-out saturates)")
    add_dataset_options(random)
    add_model_options(random)
    add_figure_options(random.add_argument_group("figures (figure2.png)"), "120")
    random.add_argument("--resume", action="store_true", help="continue a stopped study (a plain rerun continues it too)")
    random.set_defaults(run=run_random_splits, rerun_continues=True)


def run_random_splits(args: argparse.Namespace) -> int:
    from fgood_bench.commands.options import dataset_options, figure_format, model_settings
    from fgood_bench.study.random_splits import StudyRequest, run_study, study_markdown
    from fgood_bench.tools.loop import TrainConfig

    if args.seed < 0:
        raise FgoodError(f"--seed {args.seed}: must be 0 or more")
    config = TrainConfig(**model_settings(args))  # every model option the parser offers
    summary = run_study(StudyRequest(
        root=args.root, out=args.out, num_id=args.num_id, benchmark=None if args.benchmark == "custom" else args.benchmark,
        dataset=args.dataset, dataset_options=dataset_options(args), splits=args.splits, seed=args.seed,
        ranked=args.ranked, scorer=args.scorer, protocol=args.protocol, config=config, epochs=args.epochs, progress=True,
        figures=figure_format(args),
    ))
    print(study_markdown(summary), end="")
    return 0
