"""OOD metrics on 10^7 scores: fgood_bench.metrics against sklearn, in the same run.

Times ``ood_metrics`` (FPR95, AUROC, AUPR-out, AUPR-in) against sklearn's ``roc_auc_score`` +
``average_precision_score`` (AUROC and one AUPR only) and one ``np.sort`` of all scores (the
floor), and checks that the values agree to 1e-9. Target: at least 10x faster than sklearn.
Also times the other metric conventions (openood, pytorch-ood, mixoe-reference) on the same scores.

Usage: python scripts/bench_metrics.py [--n 10000000] [--id-fraction 0.1] [--float32]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from fgood_bench.metrics import CONVENTIONS, ood_metrics


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--id-fraction", type=float, default=0.1)
    parser.add_argument("--float32", action="store_true", help="float32 scores (real ties at this size)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n_id = int(args.n * args.id_fraction)
    dtype = np.float32 if args.float32 else np.float64
    id_scores = rng.normal(1.0, 1.0, n_id).astype(dtype)
    ood_scores = rng.normal(0.0, 1.5, args.n - n_id).astype(dtype)

    ours, t_ours = timed(lambda: ood_metrics(id_scores, ood_scores))
    labels = np.r_[np.zeros(n_id), np.ones(args.n - n_id)]
    pooled = -np.r_[id_scores, ood_scores].astype(np.float64)
    (auroc, aupr_out), t_sklearn = timed(lambda: (roc_auc_score(labels, pooled), average_precision_score(labels, pooled)))
    _, t_sort = timed(lambda: np.sort(np.r_[id_scores, ood_scores]))

    print(f"{args.n:,} scores ({n_id:,} ID), {np.dtype(dtype).name}")
    print(f"sklearn roc_auc_score + average_precision_score: {t_sklearn:6.2f} s")
    print(f"fgood_bench.metrics.ood_metrics (4 metrics):     {t_ours:6.2f} s  -> {t_sklearn / t_ours:.1f}x faster (target >= 10x)")
    print(f"one np.sort of all scores (floor):               {t_sort:6.2f} s  -> ours = {t_ours / t_sort:.1f}x the floor")
    for convention in CONVENTIONS:
        if convention != "paper":
            _, seconds = timed(lambda: ood_metrics(id_scores, ood_scores, convention))
            print(f"ood_metrics(convention={convention!r}):{' ' * (16 - len(convention))}{seconds:6.2f} s")
    print(f"|auroc - sklearn| = {abs(ours['auroc'] - auroc):.2e}, |aupr_out - sklearn| = {abs(ours['aupr_out'] - aupr_out):.2e} (target < 1e-9)")


if __name__ == "__main__":
    main()
