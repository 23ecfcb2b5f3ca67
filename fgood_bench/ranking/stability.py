"""Split stability: how much the ID / holdout split depends on the classifier that ranked it.

The paper (section 3.1, Appendix A) ranks the classes with one trained classifier. With several
rankings (seeds, architectures, or several predictions files) fgood-bench ranks by the mean
S(c) over them (the consensus) and reports how much they agree: per-class S(c) mean and std,
each class's rank range, the pairwise Jaccard index of the top-K sets, the classes whose ID /
holdout role changes, and the gap at the ID boundary in units of the ranking noise.
"""

from __future__ import annotations

import itertools

import numpy as np

from fgood_bench.ranking.scores import ClassScores
from fgood_bench.tools.figures import PNG, FigureFormat, render_figure


def consensus_scores(rankings: list[ClassScores]) -> ClassScores:
    """Mean accuracy and mean entropy over the rankings, so that the score is the mean S(c)."""
    return ClassScores(
        num_test=rankings[0].num_test,
        accuracy=np.mean([r.accuracy for r in rankings], axis=0),
        mean_entropy=np.mean([r.mean_entropy for r in rankings], axis=0),
    )


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def stability_report(rankings: list[ClassScores], classes: tuple[str, ...] | list[str], num_id: int,
                     sources: list[dict]) -> dict:
    """The content of ``stability.json`` (see docs/audit.md for how to read it)."""
    consensus = consensus_scores(rankings)
    scores = np.stack([r.score for r in rankings])  # (rankings, classes)
    ranks = np.stack([r.rank for r in rankings])
    std = scores.std(axis=0, ddof=1) if len(rankings) > 1 else np.zeros(scores.shape[1])
    tops = [set(r.order[:num_id].tolist()) for r in rankings]
    pairs = [jaccard(a, b) for a, b in itertools.combinations(tops, 2)]
    order = consensus.order
    kth, next_ = int(order[num_id - 1]), int(order[num_id])
    gap = float(consensus.score[kth] - consensus.score[next_])
    # Pooled over all classes: one class's std from a handful of rankings is too noisy on its own.
    pooled_std = float(np.sqrt(np.mean(std ** 2)))
    times_id = np.zeros(len(classes), np.int64)
    for top in tops:
        times_id[list(top)] += 1
    changing = [c for c in order.tolist() if 0 < times_id[c] < len(rankings)]
    consensus_ids = set(order[:num_id].tolist())
    return {
        "num_rankings": len(rankings),
        "num_id": num_id,
        "sources": sources,
        "score": "mean over the rankings of S(c) = accuracy - mean prediction entropy (nats); consensus rank by it",
        "mean_jaccard": float(np.mean(pairs)) if pairs else 1.0,
        "min_jaccard": float(np.min(pairs)) if pairs else 1.0,
        "pairwise_jaccard": [[i, j, jaccard(tops[i], tops[j])] for i, j in itertools.combinations(range(len(tops)), 2)],
        "boundary": {"kth_class": classes[kth], "next_class": classes[next_], "score_gap": gap},
        "pooled_std": pooled_std,
        "boundary_margin_sigma": gap / pooled_std if pooled_std > 0 else None,  # the gap in units of the ranking noise
        "membership_changes": [
            {"index": c, "name": classes[c], "times_id": int(times_id[c]),
             "consensus_role": "id" if c in consensus_ids else "ood"} for c in changing
        ],
        "classes": [
            {"rank": int(consensus.rank[c]), "index": c, "name": classes[c], "score_mean": float(consensus.score[c]),
             "score_std": float(std[c]), "rank_min": int(ranks[:, c].min()), "rank_max": int(ranks[:, c].max()),
             "scores": [float(s) for s in scores[:, c]]}
            for c in order.tolist()
        ],
    }


def stability_summary(report: dict, file_sha256: str) -> dict:
    """What the manifest's provenance records of ``stability.json``."""
    return {"file": "stability.json", "sha256": file_sha256,
            **{key: report[key] for key in ("num_rankings", "mean_jaccard", "min_jaccard", "boundary_margin_sigma")},
            "membership_changes": len(report["membership_changes"])}


def stability_figures(report: dict, title: str = "", figures: FigureFormat = PNG) -> dict[str, bytes]:
    """``stability.KIND`` -> bytes for each of ``figures``' formats (120 dpi by default): consensus
    S(c) +- std across rankings, by consensus rank, with the ID boundary."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = report["classes"]
    rank = np.array([c["rank"] for c in classes])
    mean = np.array([c["score_mean"] for c in classes])
    std = np.array([c["score_std"] for c in classes])
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    ax.fill_between(rank, mean - std, mean + std, color="tab:blue", alpha=0.25, linewidth=0, label="± std over rankings")
    ax.plot(rank, mean, color="tab:blue", linewidth=1.5, label=f"mean S(c), {report['num_rankings']} rankings")
    ax.axvline(report["num_id"] + 0.5, color="tab:red", linestyle="--", linewidth=1.2, label=f"K = {report['num_id']}")
    ax.set_xlabel("consensus rank")
    ax.set_ylabel("S(c) = accuracy − mean entropy")
    margin = report["boundary_margin_sigma"]
    ax.set_title(f"{title}: mean Jaccard {report['mean_jaccard']:.3f}, boundary margin "
                 + (f"{margin:.2f} σ" if margin is not None else "n/a"), fontsize=10)
    ax.legend(loc="lower left", frameon=False, fontsize=8)
    fig.tight_layout()
    return render_figure(fig, "stability", figures)
