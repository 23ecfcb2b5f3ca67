"""Confidence plots of the paper: densities of the MSP on ID, holdout and coarse OOD images
(Figures 3 and 6), and on pixel-wise interpolations lam * x_id + (1 - lam) * x_ood (Figure 4)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.special import softmax  # noqa: E402

from fgood_bench.outputs import atomic_write  # noqa: E402

LAMBDAS = (0.5, 0.6, 0.7)
# what evaluate writes into its --out (results.json last: its presence marks a complete evaluation)
EVALUATE_FILES = ("scores.parquet", "results.csv", "results.md", "confidence.png", "interpolation.png", "results.json")
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
    atomic_write(Path(path), lambda partial: fig.savefig(partial, format="png"))
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
    atomic_write(Path(path), lambda partial: fig.savefig(partial, format="png"))
    plt.close(fig)
    return path


def plot_run(run_dir: Path, overwrite: bool = False) -> Path:
    """Redraw the confidence plot of an evaluation from its saved per-image scores."""
    from fgood_bench.errors import FgoodError
    from fgood_bench.outputs import run_folder

    path = Path(run_dir) / "scores.parquet"
    if not path.is_file():
        raise FgoodError(f"{path}: not found (run fgood-bench evaluate first)")
    with run_folder(run_dir, "evaluate", reuse=True, owned=EVALUATE_FILES):
        target = Path(run_dir) / "confidence.png"
        if target.exists() and not overwrite:
            raise FgoodError(f"{target}: exists; pass --overwrite to redraw it")
        return _plot_scores(path, target)


def _plot_scores(path: Path, target: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fgood_bench.errors import FgoodError

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as err:
        raise FgoodError(f"{path}: not a readable Parquet file ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    if "set" not in table.column_names:
        raise FgoodError(f"{path}: has no set column; not a scores.parquet written by fgood-bench evaluate")
    if "msp" not in table.column_names:
        raise FgoodError(f"{path}: has no msp column; evaluate with --scorers including msp")
    sets = table.column("set").to_pylist()
    msp = table.column("msp").to_numpy()
    groups = {name: msp[[s == name for s in sets]] for name in dict.fromkeys(sets)}
    return plot_confidence(groups, target, title=path.parent.name)
