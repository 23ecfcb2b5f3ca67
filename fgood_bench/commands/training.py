"""``fgood-bench train``: the reference methods (standard, OE, EnergyOE, rotation, MixupOE) with the paper's recipes."""

from __future__ import annotations

import argparse
from pathlib import Path

from fgood_bench import summary
from fgood_bench.commands.options import add_model_options, add_overwrite, model_settings, positive_int


def add_parser(commands) -> None:
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
    training.add_argument("--method", required=True, choices=("standard", "oe", "energy-oe", "rotation", "mixupoe"),
                          help="standard (cross-entropy), oe, energy-oe, rotation or mixupoe (docs/training.md)")
    training.add_argument("--manifest", type=Path, required=True, help="the benchmark's manifest (build-splits)")
    training.add_argument("--root", type=Path, required=True, help="the benchmark dataset's folder")
    training.add_argument("--out", type=Path, required=True, help="folder for the checkpoints and the log")
    training.add_argument("--outliers", type=Path, help="outlier set: a filter-outliers (or build-ood-set) manifest")
    training.add_argument("--outlier-root", type=Path, help="the outlier dataset's folder (default --root)")
    training.add_argument("--outlier-batch-size", type=positive_int,
                          help="outliers per step (recipe: 32; 512 for inet-*); mixupoe mixes outlier j with ID image "
                          "j mod the ID batch")
    training.add_argument("--init", type=Path, help="the standard model that fine-tuning methods start from")
    training.add_argument("--from-scratch", action="store_true",
                          help="fine-tuning methods: train as standard training does instead (its weights and epochs)")
    training.add_argument("--allow-pretrained-leak", action="store_true",
                          help="accept ImageNet-pretrained weights for a benchmark built from ImageNet (they have seen its OOD classes)")
    training.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    add_overwrite(training, "start over in an OUT that holds an earlier run (its files are replaced)", restart=True)
    training.add_argument("--max-steps", type=positive_int, help="stop after this many steps (smoke runs)")
    training.add_argument("--compile", action="store_true",
                          help="torch.compile the model for training and prediction (default: eager); where compiling is not "
                          "available (no C++ compiler, an unsupported platform) it runs eagerly with one warning; "
                          "recorded in the checkpoint's training settings")
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
    add_model_options(training, recipes=True)
    training.set_defaults(run=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from fgood_bench.training.train import TrainRequest, train

    settings = {**model_settings(args), "compile": args.compile or None}  # None: the recipe's (eager)
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
