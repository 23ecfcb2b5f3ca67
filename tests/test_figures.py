"""Figures in PNG, PDF and SVG at a chosen dpi (``--figure-format``, ``--dpi``) for every command that
draws, byte-identical on every run; and ``cam --layout figure7``, the paper's Figure 7."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import fake_run, run_cli, write_predictions
from fgood_bench.cli import build_parser
from fgood_bench.errors import FgoodError
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.tools.figures import FigureFormat, render_figure
from fgood_bench.tools.models import build_model, save_classifier

VECTOR = ("--figure-format", "pdf", "--figure-format", "svg")


def assert_formats(folder: Path, stem: str, formats=("pdf", "svg")) -> None:
    for kind in formats:
        data = (folder / f"{stem}.{kind}").read_bytes()
        if kind == "pdf":
            assert data[:5] == b"%PDF-", stem
        elif kind == "svg":
            assert b"<svg" in data[:1000] and data.rstrip().endswith(b"</svg>"), stem
        else:
            assert data[:4] == b"\x89PNG", stem


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def same_files(a: Path, b: Path, names) -> None:
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


# -- the shared saving ---------------------------------------------------------------------------


def test_figure_format_checks_and_renders_deterministically():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assert FigureFormat().formats == ("png",) and FigureFormat(("PDF", "svg", "pdf")).formats == ("pdf", "svg")
    with pytest.raises(FgoodError, match="--figure-format eps: choose from png, pdf, svg"):
        FigureFormat(("eps",))
    with pytest.raises(FgoodError, match="--dpi 0"):
        FigureFormat(dpi=0)

    def draw():
        fig, ax = plt.subplots(figsize=(2, 1), dpi=120)
        ax.plot([0, 1], [1, 0], label="a line")
        ax.legend()
        return fig

    first = render_figure(draw(), "x", FigureFormat(("png", "pdf", "svg")))
    assert list(first) == ["x.png", "x.pdf", "x.svg"] and first == render_figure(draw(), "x", FigureFormat(("png", "pdf", "svg")))
    assert b"CreationDate" not in first["x.pdf"] and b"Matplotlib v" not in first["x.svg"] and b"<dc:date>" not in first["x.svg"]
    assert Image.open(io.BytesIO(first["x.png"])).size == (240, 120)  # the figure's own dpi
    assert Image.open(io.BytesIO(render_figure(draw(), "x", FigureFormat(dpi=60))["x.png"])).size == (120, 60)
    assert plt.get_fignums() == []  # closed


def test_every_drawing_command_takes_the_figure_options():
    parser = build_parser()
    commands = {
        "evaluate": ["evaluate", "--checkpoint", "c", "--manifest", "m", "--root", "r", "--out", "o", "--plots"],
        "plot": ["plot", "run"],
        "cam": ["cam", "--checkpoint", "c", "--manifest", "m", "--root", "r", "--out", "o"],
        "build-splits": ["build-splits", "bird", "--root", "r", "--out", "o", "--seeds", "3"],
        "audit-leakage": ["audit-leakage", "--manifest", "m", "--root", "r", "--out", "o"],
        "sweep": ["sweep", "--method", "oe", "--grid", "beta=0.5", "--manifest", "m", "--root", "r", "--out", "o"],
        "study": ["study", "random-splits", "bird", "--root", "r", "--out", "o"],
    }
    from fgood_bench.commands.options import figure_format

    for name, argv in commands.items():
        args = parser.parse_args([*argv, "--figure-format", "png,pdf", "--figure-format", "svg", "--dpi", "300"])
        assert figure_format(args) == FigureFormat(("png", "pdf", "svg"), 300.0), name
        assert figure_format(parser.parse_args(argv)) == FigureFormat(), name


# -- plot and evaluate --plots -------------------------------------------------------------------


def test_plot_writes_pdf_and_svg_byte_identical_and_dpi_sets_the_png_size(tmp_path, capsys):
    runs = [fake_run(tmp_path / name, name, k) for k, name in enumerate(("standard", "mixupoe"))]
    for out in ("a", "b"):
        status, stdout, err = run_cli("plot", *runs, "--out", tmp_path / out, *VECTOR, capsys=capsys)
        assert status == 0, err
    names = ["confidence.pdf", "confidence.svg", "interpolation.pdf", "interpolation.svg"]
    assert stdout.split() == [str(tmp_path / "b" / name) for name in names]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [".fgood-bench.json", *names]
    assert_formats(tmp_path / "a", "confidence")
    assert_formats(tmp_path / "a", "interpolation")
    same_files(tmp_path / "a", tmp_path / "b", names)
    # PNG at the default 120 dpi, then at 60: half the pixels each way; the earlier PDF and SVG are cleared
    assert run_cli("plot", *runs, "--out", tmp_path / "a", "--overwrite", capsys=capsys)[0] == 0
    width, height = png_size(tmp_path / "a" / "confidence.png")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [".fgood-bench.json", "confidence.png", "interpolation.png"]
    assert run_cli("plot", *runs, "--out", tmp_path / "c", "--dpi", "60", capsys=capsys)[0] == 0
    assert png_size(tmp_path / "c" / "confidence.png") == (round(width / 2), round(height / 2))
    # one run redrawn in its own folder: the formats asked for, refused where one exists
    status, stdout, err = run_cli("plot", runs[0], "--figure-format", "svg", capsys=capsys)
    assert status == 0 and stdout.split() == [str(runs[0] / "confidence.svg")], err
    assert_formats(runs[0], "confidence", ("svg",))
    status, _, err = run_cli("plot", runs[0], "--figure-format", "png,svg", capsys=capsys)
    assert status == 2 and "confidence.svg: exists; pass --overwrite" in err and not (runs[0] / "confidence.png").exists()


def test_legends_stay_inside_the_canvas_at_another_dpi():
    from fgood_bench.evaluation import plots

    rng = np.random.default_rng(0)
    fig = plots.confidence_figure({"": {name: rng.uniform(0, 1, 50) for name in ("id", "holdout", "textures", "places365")}},
                                  "bird · MixupOE: MSP")
    svg = render_figure(fig, "confidence", FigureFormat(("svg", "png"), dpi=300))
    with Image.open(io.BytesIO(svg["confidence.png"])) as image:
        assert image.size == (round(4.2 * 300), round(3.6 * 300))
    fig = plots.confidence_figure({"": {name: rng.uniform(0, 1, 50) for name in ("id", "holdout", "textures", "places365")}},
                                  "bird · MixupOE: MSP")
    fig.set_dpi(300)
    fig.canvas.draw()
    for legend in fig.legends:
        box = legend.get_window_extent()
        assert box.x0 >= fig.bbox.x0 and box.x1 <= fig.bbox.x1 and box.y0 >= fig.bbox.y0 and box.y1 <= fig.bbox.y1
    plots.plt.close(fig)


@pytest.fixture(scope="module")
def checkpoints(bird_benchmark, tmp_path_factory):
    """Two ResNet-18 checkpoints of the bird benchmark's 8 ID classes at image size 32."""
    folder = tmp_path_factory.mktemp("figures")
    names = Manifest.load(bird_benchmark["base"] / "out" / "bird").id_class_names
    paths = []
    for seed, method in ((0, "standard"), (1, "mixupoe")):
        torch.manual_seed(seed)
        paths.append(folder / method / "classifier.pt")
        save_classifier(paths[-1], build_model("resnet18", 8), "resnet18", names, {"image_size": 32, "method": method})
    return paths


def test_evaluate_plots_as_pdf(bird_benchmark, dozen_birds, checkpoints, tmp_path, capsys):
    base = bird_benchmark["base"]
    status, _, err = run_cli("evaluate", "--checkpoint", checkpoints[0], "--manifest", base / "out" / "bird", "--root",
                             dozen_birds, "--out", tmp_path / "run", "--scorers", "msp", "--workers", "0", "--device", "cpu",
                             "--plots", "--figure-format", "pdf", capsys=capsys)
    assert status == 0, err
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert "confidence.pdf" in files and "interpolation.pdf" in files and "confidence.png" not in files
    assert_formats(tmp_path / "run", "confidence", ("pdf",))
    assert_formats(tmp_path / "run", "interpolation", ("pdf",))


# -- cam -----------------------------------------------------------------------------------------


def cam_args(bird_benchmark, dozen_birds, checkpoints, out, *extra):
    return ["cam", "--checkpoint", checkpoints[0], "--checkpoint", checkpoints[1], "--manifest",
            bird_benchmark["base"] / "out" / "bird", "--root", dozen_birds, "--out", out, "--device", "cpu", "--num", "2", *extra]


def test_cam_svg_pdf_alias_and_dpi(bird_benchmark, dozen_birds, checkpoints, tmp_path, capsys):
    from fgood_bench.evaluation import cam

    for out in ("a", "b"):
        status, stdout, err = run_cli(*cam_args(bird_benchmark, dozen_birds, checkpoints, tmp_path / out,
                                                "--figure-format", "svg", "--pdf"), capsys=capsys)
        assert status == 0, err
    names = ["cam.svg", "cam.png", "cam.pdf", "cam.json"]
    assert stdout.split() == [str(tmp_path / "b" / name) for name in names]
    assert json.loads((tmp_path / "a" / "cam.json").read_text())["figure"]["files"] == names
    assert_formats(tmp_path / "a", "cam", ("svg", "png", "pdf"))
    same_files(tmp_path / "a", tmp_path / "b", names)
    width, height = png_size(tmp_path / "a" / "cam.png")
    assert width == round(3 * cam.PANEL_INCHES * cam.DPI)
    status, _, err = run_cli(*cam_args(bird_benchmark, dozen_birds, checkpoints, tmp_path / "a", "--dpi", "50", "--overwrite"),
                             capsys=capsys)
    assert status == 0, err
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [".fgood-bench.json", "cam.json", "cam.png"]  # svg, pdf gone
    assert png_size(tmp_path / "a" / "cam.png") == (round(width / 2), round(height / 2))


def write_spec(path: Path, bird_benchmark, dozen_birds, checkpoints, names=("Bird", "Bird again"), labels=("Standard", "MixupOE")):
    """A Figure 7 spec of the bird benchmark under two names (paths relative to the spec's folder)."""
    import os

    folder = path.parent
    lines = ["benchmarks:"]
    for name in names:
        lines += [f"  {name}:", f"    manifest: {os.path.relpath(bird_benchmark['base'] / 'out' / 'bird', folder)}",
                  f"    root: {dozen_birds}", "    checkpoints:"]
        lines += [f"      {label}: {checkpoint}" for label, checkpoint in zip(labels, checkpoints)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cam_figure7_layout(bird_benchmark, dozen_birds, checkpoints, tmp_path, capsys):
    from fgood_bench.evaluation import cam, cam_figure7

    spec = write_spec(tmp_path / "figure7.yaml", bird_benchmark, dozen_birds, checkpoints)
    status, stdout, err = run_cli("cam", "--layout", "figure7", "--spec", spec, "--out", tmp_path / "fig", "--device", "cpu",
                                  "--seed", "3", "--figure-format", "png,pdf", capsys=capsys)
    assert status == 0, err
    assert stdout.split() == [str(tmp_path / "fig" / name) for name in ("cam.png", "cam.pdf", "cam.json")]
    record = json.loads((tmp_path / "fig" / "cam.json").read_text())
    rows, cols = 2 * (1 + 2), 2
    assert record["layout"] == "figure7" and record["figure"] == {
        "rows": rows, "columns": cols, "column_labels": ["Bird", "Bird again"],
        "row_labels": ["ID image", "ID: Standard", "ID: MixupOE", "OOD image (holdout)", "OOD: Standard", "OOD: MixupOE"],
        "files": ["cam.png", "cam.pdf", "cam.json"]}
    assert_formats(tmp_path / "fig", "cam", ("png", "pdf"))
    with Image.open(tmp_path / "fig" / "cam.png") as png:
        assert png.size == (round((cols * cam.PANEL_INCHES + 0.4) * cam.DPI),
                            round((rows * (cam.PANEL_INCHES + cam.CAPTION_INCHES) + 0.3) * cam.DPI))
    bench = Manifest.load(bird_benchmark["base"] / "out" / "bird")
    for column in record["benchmarks"]:  # one seeded image of each kind, the same for the same benchmark
        assert column["images"]["ID"]["path"] == bench.split("id_test").paths[cam.choose_images(32, 1, 3)[0]]
        assert column["images"]["OOD"]["path"] == bench.split("ood_test").paths[cam.choose_images(16, 1, 3)[0]]
        assert [m["label"] for m in column["models"]] == ["Standard", "MixupOE"]
    # the figure itself: a column per benchmark, the rows named, one image per panel, the captions
    panels = [(np.zeros((8, 8, 3), np.uint8), np.ones((8, 8)), m) for m in ("s", "m")]
    fig = cam_figure7.figure7_figure(
        [{"name": name, **{kind: {"image": np.zeros((8, 8, 3), np.uint8), "caption": kind, "panels": panels}
                           for kind in ("ID", "OOD")}} for name in ("Bird", "Dog", "Car")], ["Standard", "MixupOE"])
    grid = np.array(fig.axes).reshape(rows, 3)
    assert [ax.get_title() for ax in grid[0]] == ["Bird", "Dog", "Car"]
    assert [ax.get_ylabel() for ax in grid[:, 0]] == record["figure"]["row_labels"]
    assert [ax.get_xlabel() for ax in grid[:, 2]] == ["ID", "s", "m", "OOD", "s", "m"]
    assert all(len(ax.get_images()) == 1 for ax in fig.axes)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_cam_figure7_bad_specs_fail_in_one_line(bird_benchmark, dozen_birds, checkpoints, tmp_path, capsys):
    def error(text=None, *extra):
        spec = tmp_path / "bad.yaml"
        if text is not None:
            spec.write_text(text)
        status, _, err = run_cli("cam", "--layout", "figure7", "--spec", spec, "--out", tmp_path / "out", "--device", "cpu",
                                 *extra, capsys=capsys)
        assert status == 2 and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "out").exists()
        return err

    good = write_spec(tmp_path / "good.yaml", bird_benchmark, dozen_birds, checkpoints).read_text()
    spec = str(tmp_path / "bad.yaml")
    assert f"{spec}: benchmarks.Bird.chekpoints: unknown key (expected one of manifest, root, checkpoints)" in error(
        good.replace("checkpoints:", "chekpoints:", 1))
    assert f"{spec}: benchmarks.Bird.root: missing" in error("\n".join(l for l in good.splitlines() if "root:" not in l))
    err = error(good.replace("MixupOE:", "OE:", 1))
    assert f"{spec}: benchmarks.Bird again.checkpoints: names the models Standard, MixupOE; every benchmark names the same" in err
    assert f"{spec}: benchmarks.Bird.manifest: " in error(good.replace("out/bird", "out/nowhere", 1))
    assert f"{spec}: figures: unknown key (expected benchmarks)" in error(good + "figures: 1\n")
    assert f"{spec}: benchmarks: expected a non-empty mapping" in error("benchmarks: []\n")
    assert "drop --manifest" in error(good, "--manifest", "m")


# -- build-splits (stability), audit-leakage (contact sheet), study (figure2), sweep (heat maps) ----


def test_build_splits_stability_figure_formats(dozen_birds, tmp_path, capsys):
    files = []
    for i in range(2):
        write_predictions(tmp_path / f"p{i}.npz", dozen_birds, {c: 0.9 - 0.05 * c + 0.03 * i * (c % 2) for c in range(12)})
        files += ["--predictions", tmp_path / f"p{i}.npz"]
    for out in ("a", "b"):
        status, _, err = run_cli("build-splits", "bird", "--root", dozen_birds, "--out", tmp_path / out, "--num-id", "8", *files,
                                 *VECTOR, "--figure-format", "png", "--dpi", "60", capsys=capsys)
        assert status == 0, err
    folder = tmp_path / "a" / "bird"
    assert_formats(folder, "stability", ("pdf", "svg", "png"))
    same_files(folder, tmp_path / "b" / "bird", ["stability.pdf", "stability.svg", "stability.png"])
    assert png_size(folder / "stability.png") == (7 * 60, 4 * 60)
    assert Manifest.load(folder / "manifest.json").kind == "benchmark"  # the extra files leave the manifest valid


def test_contact_sheet_formats(dozen_birds):
    from fgood_bench.audit.leakage import ImageSet, contact_sheet

    paths = sorted(str(p.relative_to(dozen_birds / "images")) for p in (dozen_birds / "images").rglob("*.jpg"))[:4]
    sets = {"a": ImageSet("a", dozen_birds / "images", paths, None, "x"), "b": ImageSet("b", dozen_birds / "images", paths, None, "y")}
    pairs = [{"a": "a", "a_path": p, "b": "b", "b_path": q, "kind": "near", "distance": 3} for p, q in zip(paths, paths[1:])]
    files = contact_sheet(pairs, sets, figures=FigureFormat(("png", "pdf", "svg")))
    assert list(files) == ["contact_sheet.png", "contact_sheet.pdf", "contact_sheet.svg"]
    assert files == contact_sheet(pairs, sets, figures=FigureFormat(("png", "pdf", "svg")))
    assert files["contact_sheet.pdf"][:5] == b"%PDF-" and b"<svg" in files["contact_sheet.svg"][:1000]
    size = Image.open(io.BytesIO(files["contact_sheet.png"])).size
    assert size == (2 * 128 + 520 + 4 * 6, 3 * (128 + 6) + 6)  # one pixel per pixel of the sheet by default
    doubled = contact_sheet(pairs, sets, figures=FigureFormat(dpi=200))["contact_sheet.png"]
    assert Image.open(io.BytesIO(doubled)).size == (2 * size[0], 2 * size[1])


def test_figure2_and_heatmap_formats():
    from fgood_bench.study import random_splits, sweep_report

    summary = {"splits": [{"split": f"split-{i:02d}", "accuracy": 0.8 + i / 100, "auroc": 0.7 + i / 50, "aupr": 0.3 + i / 20}
                          for i in range(4)],
               "ranked": None, "settings": {"scorer": "msp", "benchmark": "bird", "dataset": "cub", "num_id": 10}}
    files = random_splits.figure2_files(summary, FigureFormat(("svg", "pdf", "png"), dpi=60))
    assert list(files) == ["figure2.svg", "figure2.pdf", "figure2.png"]
    assert files == random_splits.figure2_files(summary, FigureFormat(("svg", "pdf", "png"), dpi=60))
    assert Image.open(io.BytesIO(files["figure2.png"])).size == (420, 420)  # 7 x 7 in
    assert random_splits.figure2(summary)[:4] == b"\x89PNG"

    grid = {"alpha": [0.5, 1.0], "beta": [1.0, 5.0]}
    points = [{"point": {"alpha": a, "beta": b}, "validation": {"accuracy": 0.9, "auroc": a / 2 + b / 20, "aupr": a / 3,
                                                                "fpr95": 0.5}} for a in grid["alpha"] for b in grid["beta"]]
    summary = {"grid": grid, "points": points, "test": None, "selection": {"point": {"alpha": 1.0, "beta": 5.0}},
               "settings": {"benchmark": {"name": "bird"}, "method": "mixupoe"}}
    files = sweep_report.heatmaps(summary, FigureFormat(("pdf", "svg")))
    assert sorted(files) == sorted(f"heatmap-val-{m}.{k}" for m in ("accuracy", "aupr", "auroc", "fpr95") for k in ("pdf", "svg"))
    assert files == sweep_report.heatmaps(summary, FigureFormat(("pdf", "svg")))
    assert all(data[:5] == b"%PDF-" for name, data in files.items() if name.endswith(".pdf"))
    assert sorted(sweep_report.heatmaps(summary)) == [f"heatmap-val-{m}.png" for m in ("accuracy", "aupr", "auroc", "fpr95")]
