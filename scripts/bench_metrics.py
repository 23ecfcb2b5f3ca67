"""OOD metrics against their floor, one np.sort of the same scores, and sklearn, in the same run.

For each size (default 10^7 and 10^6 scores, 10% ID) times, best of ``--repeats`` interleaved runs:

* one ``np.sort`` of all scores pooled (the floor: every metric needs the pooled order),
* ``ood_metrics`` (FPR95, AUROC, AUPR-out, AUPR-in) under each convention,
* sklearn's ``roc_auc_score`` + ``average_precision_score`` twice (AUROC and both AUPRs, no FPR95),

and prints ours / np.sort (target: at most 3x) and sklearn / ours, and checks that the values agree
with sklearn's to 1e-12. Timings are noisy on a shared machine: take the best of several repeats.

Usage: python scripts/bench_metrics.py [--sizes 10000000 1000000] [--id-fraction 0.1] [--repeats 3]
                                       [--sklearn-repeats 1] [--float32]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from fgood_bench.metrics import CONVENTIONS, ood_metrics

TARGET_RATIO = 3.0  # ood_metrics at most 3x one np.sort of the same scores


def best_of(repeats: int, fn) -> tuple[object, float]:
    """fn()'s result and its fastest wall time over ``repeats`` calls."""
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best


def sklearn_metrics(id_scores: np.ndarray, ood_scores: np.ndarray) -> dict[str, float]:
    """The paper convention's AUROC and AUPRs from sklearn: OOD positive, detected by a low score."""
    is_ood = np.r_[np.zeros(id_scores.size), np.ones(ood_scores.size)]
    scores = np.r_[id_scores, ood_scores].astype(np.float64)
    return {"auroc": roc_auc_score(is_ood, -scores), "aupr_out": average_precision_score(is_ood, -scores),
            "aupr_in": average_precision_score(1 - is_ood, scores)}


def bench(n: int, id_fraction: float, dtype, repeats: int, sklearn_repeats: int) -> float:
    """Prints one size's timings; returns ours / np.sort for the paper convention."""
    rng = np.random.default_rng(0)
    n_id = max(1, int(n * id_fraction))
    id_scores = rng.normal(1.0, 1.0, n_id).astype(dtype)
    ood_scores = rng.normal(0.0, 1.5, n - n_id).astype(dtype)
    pooled = np.concatenate((id_scores, ood_scores))

    # interleave the floor and ours so that both see the same load
    floor, t_ours, ours = np.inf, dict.fromkeys(CONVENTIONS, np.inf), {}
    for _ in range(repeats):
        floor = min(floor, best_of(1, lambda: np.sort(pooled))[1])
        for convention in CONVENTIONS:
            ours[convention], seconds = best_of(1, lambda: ood_metrics(id_scores, ood_scores, convention))
            t_ours[convention] = min(t_ours[convention], seconds)
    reference, t_sklearn = best_of(sklearn_repeats, lambda: sklearn_metrics(id_scores, ood_scores))

    print(f"\n{n:,} scores ({n_id:,} ID), {np.dtype(dtype).name}; best of {repeats} (sklearn: {sklearn_repeats})")
    print(f"  one np.sort of all scores (floor)           {floor:7.3f} s")
    for convention, seconds in t_ours.items():
        print(f"  ood_metrics(convention={convention!r}){' ' * (17 - len(convention))}{seconds:7.3f} s"
              f"  = {seconds / floor:4.2f}x np.sort")
    paper = t_ours["paper"]
    print(f"  sklearn roc_auc_score + 2 x average_precision {t_sklearn:7.3f} s  = {t_sklearn / paper:4.1f}x ours (paper)")
    worst = max(abs(ours["paper"][metric] - value) for metric, value in reference.items())
    verdict = "ok" if paper / floor <= TARGET_RATIO else "ABOVE TARGET"
    print(f"  ours / np.sort (paper): {paper / floor:.2f} (target <= {TARGET_RATIO:g}: {verdict}); "
          f"max |ours - sklearn| over auroc, aupr_out, aupr_in = {worst:.1e} (target < 1e-12)")
    return paper / floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000_000, 1_000_000])
    parser.add_argument("--id-fraction", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=3, help="runs of np.sort and ours per size; the best counts")
    parser.add_argument("--sklearn-repeats", type=int, default=1, help="sklearn is slow: fewer runs")
    parser.add_argument("--float32", action="store_true", help="float32 scores (real ties at this size); "
                        "the floor then sorts float32, while ours works in float64")
    args = parser.parse_args()
    dtype = np.float32 if args.float32 else np.float64
    for n in args.sizes:
        bench(n, args.id_fraction, dtype, args.repeats, args.sklearn_repeats)


if __name__ == "__main__":
    main()
