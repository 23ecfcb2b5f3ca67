"""Confidence plots of the paper: densities of the MSP on ID, holdout and coarse OOD images
(Figures 3 and 6), and on pixel-wise interpolations lam * x_id + (1 - lam) * x_ood (Figure 4).

Curves are Gaussian kernel density estimates (``scipy.stats.gaussian_kde``), the smooth
densities the paper draws; ``style="hist"`` draws step histograms instead. Legends sit below
the panels, never over the curves. ``plot_runs`` draws the comparison figures of several
evaluate runs: one panel per model on shared axes (Figure 3/6) and one row per model of the
interpolation densities (Figure 4, from each run's ``interpolation.parquet``). Each figure is saved in
the formats of a :class:`~fgood_bench.tools.figures.FigureFormat` (PNG at 120 dpi by default).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.special import softmax  # noqa: E402
from scipy.stats import gaussian_kde  # noqa: E402

from fgood_bench.errors import FgoodError  # noqa: E402
from fgood_bench.inputs import clip, cut  # noqa: E402
from fgood_bench.outputs import clear_outputs, run_folder, write_files  # noqa: E402
from fgood_bench.tools.figures import PNG, FigureFormat, every_format, render_figure  # noqa: E402

LAMBDAS = (0.5, 0.6, 0.7)  # Figure 4 of the paper
# what evaluate writes into its --out (results.json last: its presence marks a complete evaluation)
# (the figures in any of the formats: an earlier run's confidence.pdf is cleared with the rest)
EVALUATE_FILES = ("scores.parquet", "results.csv", "results.md", *every_format("confidence"), "interpolation.parquet",
                  *every_format("interpolation"), "results.json")
PLOT_FILES = every_format("confidence", "interpolation")  # what plot RUN... --out writes
BINS = np.linspace(0.0, 1.0, 41)
GRID = np.linspace(0.0, 1.0, 401)
METHOD_NAMES = {"standard": "Standard", "oe": "OE", "energy-oe": "EnergyOE", "rotation": "Rotation", "mixupoe": "MixupOE"}
XLABEL = "prediction confidence (max softmax)"


def _set_label(name: str) -> str:
    return "ID test" if name == "id" else name


def _density(ax, values: np.ndarray, label: str, style: str = "kde", color=None) -> None:
    """One density curve; a set too small or too uniform for a kernel estimate gets a histogram."""
    values = np.asarray(values, np.float64)
    label = f"{label} (n={len(values):,})"
    if style == "kde" and len(values) > 1 and np.ptp(values) > 0:
        density = gaussian_kde(values)(GRID)
        (line,) = ax.plot(GRID, density, linewidth=1.8, label=label, color=color)
        ax.fill_between(GRID, density, alpha=0.15, color=line.get_color())
    else:
        ax.hist(values, bins=BINS, density=True, histtype="step", linewidth=1.8, label=label, color=color)


def _figure(rows: int, cols: int, width: float, height: float):
    """Panels on shared axes, with room for a legend below them (constrained layout)."""
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), dpi=120, sharex=True, sharey=True,
                             squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.set_xlim(0, 1)
    for ax in axes[-1]:
        ax.set_xlabel(XLABEL)
    for ax in axes[:, 0]:
        ax.set_ylabel("density")
    return fig, axes


def _legend_below(fig, ax) -> None:
    """The legend under the panels, in as many columns as fit the figure's width (constrained layout
    makes room below, not beside: a legend wider than the figure would be cut at both edges)."""
    handles, labels = ax.get_legend_handles_labels()
    renderer = fig.canvas.get_renderer()
    for ncol in range(min(4, len(labels)), 0, -1):
        legend = fig.legend(handles, labels, loc="outside lower center", ncol=ncol, frameon=False)
        if ncol == 1 or legend.get_window_extent(renderer).width <= 0.96 * fig.bbox.width:
            return
        legend.remove()


def confidence_figure(panels: dict[str, dict[str, np.ndarray]], title: str = "", style: str = "kde"):
    """Figure 3/6: one panel per model (name -> {set name -> MSP values}), shared axes."""
    fig, axes = _figure(1, len(panels), 4.2, 3.6)
    colors = {}
    for ax, (model, confidences) in zip(axes[0], panels.items()):
        for name, values in confidences.items():
            colors.setdefault(name, f"C{len(colors)}")
            _density(ax, values, _set_label(name), style, colors[name])
        ax.set_title(model)
    _legend_below(fig, axes[0][0])
    fig.suptitle(title)
    return fig


def interpolation_figure(rows: dict[str, dict[float, np.ndarray]], title: str = "", ood_name: str = "OOD", style: str = "kde"):
    """Figure 4: one row per model (name -> {lam -> MSP values}; lam 1.0 is the ID images)."""
    fig, axes = _figure(len(rows), 1, 6.0, 3.0)
    for ax, (model, panels) in zip(axes[:, 0], rows.items()):
        for k, (lam, values) in enumerate(sorted(panels.items(), reverse=True)):
            _density(ax, values, "ID" if lam == 1.0 else f"λ = {lam:g}", style, f"C{k}")
        ax.set_title(model)
    _legend_below(fig, axes[0][0])
    fig.suptitle(f"{title}: λ·x_ID + (1 − λ)·x_{ood_name}" if title else f"λ·x_ID + (1 − λ)·x_{ood_name}")
    return fig


def _save(fig, path: Path, figures: FigureFormat = PNG) -> list[Path]:
    """Write the figure as ``path`` with each format's suffix, each through a temporary file (never half
    a file), and release it. Returns the paths written."""
    path = Path(path)
    files = render_figure(fig, path.stem, figures)
    write_files(path.parent, files)
    return [path.parent / name for name in files]


def plot_confidence(confidences: dict[str, np.ndarray], path: Path, title: str = "", style: str = "kde",
                    figures: FigureFormat = PNG) -> Path:
    """One density curve of the maximum softmax probability per image set. ``path`` names the figure
    (its suffix is each format's); returns the first file written."""
    return _save(confidence_figure({"": confidences}, title, style), path, figures)[0]


def interpolation_confidences(model, id_set, ood_set, runtime, settings, batch_size: int = 64,
                              workers: int | None = None) -> dict[float, np.ndarray]:
    """MSP of the ID images (lam 1.0) and of their interpolations with OOD images at lam = 0.5, 0.6, 0.7."""
    from fgood_bench.evaluation.forward import mixed_outputs

    panels = {}
    for lam in (1.0, *LAMBDAS):
        logits = mixed_outputs(model, id_set.root, id_set.paths, ood_set.root, ood_set.paths, lam, runtime, settings,
                               batch_size, workers)
        panels[lam] = softmax(logits.astype(np.float64), axis=1).max(axis=1)
    return panels


def write_interpolation(panels: dict[float, np.ndarray], ood_name: str, path: Path) -> None:
    """``interpolation.parquet``: one row per interpolated image (lambda, msp), for ``plot`` to redraw."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"lambda": np.concatenate([np.full(len(v), lam) for lam, v in panels.items()]),
                      "msp": np.concatenate(list(panels.values()))})
    pq.write_table(table.replace_schema_metadata({"ood_set": ood_name}), path)


def plot_interpolation(panels: dict[float, np.ndarray], path: Path, title: str = "", ood_name: str = "OOD",
                       style: str = "kde", figures: FigureFormat = PNG) -> Path:
    return _save(interpolation_figure({"": panels}, title, ood_name, style), path, figures)[0]


# -- redrawing from evaluate runs ------------------------------------------------------------


def _read_table(path: Path):
    """A Parquet file of per-image values, opened only as a regular file (a FIFO never blocks), its
    column names unique."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fgood_bench.inputs import open_regular

    with open_regular(path, "Parquet file") as handle:
        try:
            table = pq.read_table(handle)
        except (OSError, pa.ArrowException) as err:
            raise FgoodError(f"{path}: not a readable Parquet file ({clip(str(err)) if str(err) else type(err).__name__})") from None
    repeated = next((name for i, name in enumerate(table.column_names) if name in table.column_names[:i]), None)
    if repeated is not None:
        raise FgoodError(f"{path}: column {cut(repeated)} appears twice")
    return table


def _numbers(table, path: Path, name: str, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Column ``name`` as float64, after checking that it holds numbers, every one finite (and within
    [low, high]): a figure is never drawn from NaN scores."""
    import pyarrow as pa

    column = table.column(name)
    if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
        raise FgoodError(f"{path}: column {name!r} holds {column.type}, not numbers")
    if column.null_count:
        raise FgoodError(f"{path}: column {name!r} has {column.null_count:,} empty values")
    values = column.to_numpy().astype(np.float64)
    bad = ~np.isfinite(values)
    if low is not None and high is not None:
        bad |= np.isfinite(values) & ((values < low) | (values > high))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        where = f"in [{low:g}, {high:g}]" if low is not None and high is not None else "finite"
        raise FgoodError(f"{path}: column {name!r}: {int(bad.sum()):,} of {len(values):,} values are not {where} "
                         f"(row {row + 1}: {values[row]!r})")
    return values


def _read_run(run_dir: Path) -> dict:
    import pyarrow as pa

    from fgood_bench.evaluation.report import read_results

    run_dir = Path(run_dir)
    path = run_dir / "scores.parquet"
    if not path.exists():
        raise FgoodError(f"{path}: not found (run fgood-bench evaluate first)")
    table = _read_table(path)
    if "set" not in table.column_names:
        raise FgoodError(f"{path}: has no set column; not a scores.parquet written by fgood-bench evaluate")
    if "msp" not in table.column_names:
        raise FgoodError(f"{path}: has no msp column; evaluate with --scorers including msp")
    set_column = table.column("set")
    if not (pa.types.is_string(set_column.type) or pa.types.is_large_string(set_column.type)) or set_column.null_count:
        raise FgoodError(f"{path}: column 'set' must name each image's set (strings, none empty), got {set_column.type}")
    for name in table.column_names:  # every scorer's column: finite numbers (MSP a probability)
        if name not in ("path", "set", "label"):
            _numbers(table, path, name, *((0.0, 1.0) if name == "msp" else ()))
    sets = np.array(set_column.to_pylist())
    msp = _numbers(table, path, "msp", 0.0, 1.0)
    results_path = run_dir / "results.json"
    # results.json read through the results schema (evaluation.report): a regular file, strict JSON, fields typed
    results = read_results(results_path, scores=False) if results_path.exists() or results_path.is_symlink() else {}
    run = {"confidence": {name: msp[sets == name] for name in dict.fromkeys(sets.tolist())},
           "benchmark": results.get("benchmark", {}).get("name", "?"), "model": results.get("model") or {}, "dir": run_dir}
    interpolation = run_dir / "interpolation.parquet"
    if interpolation.exists() or interpolation.is_symlink():
        table = _read_table(interpolation)
        for name in ("lambda", "msp"):
            if name not in table.column_names:
                raise FgoodError(f"{interpolation}: has no {name} column; not an interpolation.parquet written by "
                                 "fgood-bench evaluate --plots")
        lams, values = _numbers(table, interpolation, "lambda", 0.0, 1.0), _numbers(table, interpolation, "msp", 0.0, 1.0)
        run["interpolation"] = {float(lam): values[lams == lam] for lam in np.unique(lams)}
        metadata = table.schema.metadata or {}
        try:
            run["ood_name"] = clip(metadata.get(b"ood_set", b"OOD").decode("utf-8"), 60)
        except UnicodeDecodeError:
            raise FgoodError(f"{interpolation}: its ood_set metadata is not UTF-8 text") from None
    return run


def model_label(model: dict, fallback: str) -> str:
    """``MixupOE (resnet50)``: the method in the paper's spelling and the architecture."""
    method = model.get("method")
    if not method:
        return fallback
    return f"{METHOD_NAMES.get(method, method)} ({model.get('arch', '?')})"


def plot_run(run_dir: Path, style: str = "kde", overwrite: bool = False, figures: FigureFormat = PNG) -> Path:
    """Redraw the confidence plot of an evaluation from its saved per-image scores, in each of
    ``figures``' formats; returns the first file (``RUN/confidence.png`` by default)."""
    run = _read_run(run_dir)
    title = f"{run['benchmark']} · {model_label(run['model'], Path(run_dir).name)}: MSP"
    with run_folder(run_dir, "evaluate", reuse=True, owned=EVALUATE_FILES):
        for name in figures.names("confidence"):
            target = Path(run_dir) / name
            if target.exists() and not overwrite:
                raise FgoodError(f"{target}: exists; pass --overwrite to redraw it")
        return plot_confidence(run["confidence"], Path(run_dir) / "confidence", title=title, style=style, figures=figures)


def plot_runs(run_dirs: list[Path], out: Path, style: str = "kde", overwrite: bool = False,
              figures: FigureFormat = PNG) -> list[Path]:
    """The paper's comparison figures of several runs (e.g. Standard, OE, MixupOE) of one benchmark:
    ``confidence.png`` (Figure 3/6) and, when every run has interpolation data, ``interpolation.png`` (Figure 4),
    each in ``figures``' formats (an earlier comparison's files in other formats are removed)."""
    runs = [_read_run(d) for d in run_dirs]
    benchmarks = sorted({run["benchmark"] for run in runs})
    if len(benchmarks) > 1:
        raise FgoodError(f"the runs evaluate different benchmarks ({', '.join(benchmarks)}); compare runs of one benchmark")
    labels = [model_label(run["model"], run["dir"].name) for run in runs]
    labels = [f"{label}, {run['dir'].name}" if labels.count(label) > 1 else label for label, run in zip(labels, runs)]
    out = Path(out)
    with run_folder(out, "plot", reuse=overwrite, owned=PLOT_FILES):
        clear_outputs(out, PLOT_FILES)  # an earlier comparison in another format must not stay beside this one
        written = _save(confidence_figure({label: run["confidence"] for label, run in zip(labels, runs)},
                                          f"{benchmarks[0]}: MSP confidence", style), out / "confidence", figures)
        if all("interpolation" in run for run in runs):
            rows = {label: run["interpolation"] for label, run in zip(labels, runs)}
            written += _save(interpolation_figure(rows, benchmarks[0], runs[0]["ood_name"], style), out / "interpolation",
                             figures)
    return written
