"""Confidence plots of the paper: densities of the MSP on ID, holdout and coarse OOD images
(Figures 3 and 6), and on pixel-wise interpolations lam * x_id + (1 - lam) * x_ood (Figure 4)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.special import softmax  # noqa: E402

LAMBDAS = (0.5, 0.6, 0.7)
BINS = np.linspace(0.0, 1.0, 41)


def _density(ax, values: np.ndarray, label: str, **style) -> None:
    ax.hist(values, bins=BINS, density=True, histtype="step", linewidth=1.8, label=f"{label} (n={len(values):,})", **style)


def plot_confidence(confidences: dict[str, np.ndarray], path: Path, title: str = "") -> Path:
    """One density curve of the maximum softmax probability per image set."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name, values in confidences.items():
        _density(ax, np.asarray(values), "ID test" if name == "id" else name)
    ax.set_xlabel("prediction confidence (max softmax)")
    ax.set_ylabel("density")
    ax.set_xlim(0, 1)
    ax.set_title(title)
    ax.legend(loc="upper left", frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_interpolation(model, id_set, ood_set, config, runtime, path: Path, title: str = "", geometry=None) -> Path:
    """MSP densities of ID images and of their interpolations with OOD images at lam = 0.5, 0.6, 0.7."""
    from fgood_bench.evaluation.forward import mixed_outputs

    panels = {1.0: None, **{lam: None for lam in LAMBDAS}}
    for lam in panels:
        logits = mixed_outputs(model, id_set.root, id_set.paths, ood_set.root, ood_set.paths, lam, config, runtime, geometry)
        panels[lam] = softmax(logits.astype(np.float64), axis=1).max(axis=1)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for lam, values in panels.items():
        _density(ax, values, "ID" if lam == 1.0 else f"λ = {lam}")
    ax.set_xlabel("prediction confidence (max softmax)")
    ax.set_ylabel("density")
    ax.set_xlim(0, 1)
    ax.set_title(f"{title}: λ·x_ID + (1 − λ)·x_{ood_set.name}")
    ax.legend(loc="upper left", frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_run(run_dir: Path) -> Path:
    """Redraw the confidence plot of an evaluation from its saved per-image scores."""
    import pyarrow.parquet as pq

    from fgood_bench.errors import FgoodError

    path = Path(run_dir) / "scores.parquet"
    if not path.is_file():
        raise FgoodError(f"{path}: not found (run fgood-bench evaluate first)")
    table = pq.read_table(path)
    if "msp" not in table.column_names:
        raise FgoodError(f"{path}: has no msp column; evaluate with --scorers including msp")
    sets = table.column("set").to_pylist()
    msp = table.column("msp").to_numpy()
    groups = {name: msp[[s == name for s in sets]] for name in dict.fromkeys(sets)}
    return plot_confidence(groups, Path(run_dir) / "confidence.png", title=Path(run_dir).name)
