"""What a person running the commands sees: progress in logs, summaries, notices, Ctrl-C, plots,
warnings and errors that point to the fix (issue 16)."""

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import fake_run, run_cli
from fgood_bench import progress as progress_module
from fgood_bench.cli import main
from fgood_bench.datasets import synthetic
from fgood_bench.interrupt import StopOnInterrupt, ignore_sigint
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.tools.models import build_model, save_classifier
from test_outliers import webvision  # noqa: F401 (a fixture)

TINY = ["--arch", "resnet18", "--weights", "none", "--image-size", "32", "--batch-size", "16", "--workers", "0"]


@pytest.fixture(scope="module")
def logged_training(bird_benchmark, dozen_birds, tmp_path_factory):
    """One tiny `train` run with stderr redirected to a file (as under nohup), a progress line per
    step and the CPU notice's threshold at 0; returns (out folder, exit status, the log, stdout)."""
    out = tmp_path_factory.mktemp("logged") / "standard"
    log_path = out.parent / "stderr.log"
    patch = pytest.MonkeyPatch()
    patch.setenv(progress_module.INTERVAL_VARIABLE, "0")
    patch.setattr(progress_module, "SLOW_RUN_SECONDS", 0.0)
    stdout = io.StringIO()
    with open(log_path, "w") as log:
        patch.setattr(sys, "stderr", log)
        patch.setattr(sys, "stdout", stdout)
        try:
            status = main(["train", "--method", "standard", "--manifest", str(bird_benchmark["base"] / "out" / "bird"),
                           "--root", str(dozen_birds), "--out", str(out), "--epochs", "2", "--max-steps", "4", *TINY])
        finally:
            patch.undo()
    return out, status, log_path.read_text(), stdout.getvalue()


# -- 4. progress lines when stderr is a file ------------------------------------------------------


def test_progress_lines_reach_a_redirected_stderr(logged_training):
    out, status, log, stdout = logged_training
    assert status == 0, log
    lines = [line for line in log.splitlines() if line.startswith("epoch ")]
    assert lines[0].startswith("epoch 1/2: 1/3 (33%), loss ") and "step 1/6" in lines[0]
    assert "img/s" in lines[0] and "elapsed" in lines[0] and "left (run: " in lines[0]
    assert lines[2].startswith("epoch 1/2: 3/3 (100%), loss ") and "step 3/6" in lines[2]  # at the loop's end
    assert any(line.startswith("predicting: ") for line in log.splitlines())
    assert "\r" not in log  # no bar redraws in a log file
    assert stdout.strip() == str(out / "classifier.pt")


def test_progress_lines_are_rate_limited(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(progress_module, "_last_line", [1000.0])
    stream = io.StringIO()
    bar = progress_module.LineProgress(range(100), desc="scoring", stream=stream, interval=30.0, items_per_step=4)
    for _ in bar:
        clock[0] += 1.0  # one step a second for 100 s: a line at 30, 60, 90 s and none at the end
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and lines[0] == "scoring: 30/100 (30%), 4.0 img/s, 0:00:30 elapsed, 0:01:10 left"
    short = progress_module.LineProgress(range(3), desc="short", stream=stream, interval=30.0)
    assert list(short) == [0, 1, 2] and len(stream.getvalue().splitlines()) == 3  # a short loop adds nothing


def test_progress_on_a_terminal_is_a_tqdm_bar(monkeypatch):
    from tqdm.auto import tqdm

    assert not isinstance(progress_module.progress([1], desc="x"), tqdm)  # pytest captures stderr: not a terminal
    monkeypatch.setattr(progress_module, "on_terminal", lambda stream=None: True)
    assert isinstance(progress_module.progress([1], desc="x"), tqdm)
    monkeypatch.setenv(progress_module.INTERVAL_VARIABLE, "5")
    assert progress_module.line_interval() == 5.0


# -- 5. summaries ----------------------------------------------------------------------------------


def test_train_ends_with_a_summary(logged_training):
    out, _, log, _ = logged_training
    assert "trained standard (resnet18) on bird: 2 of 2 epochs, 4 steps, final mean loss " in log
    assert f"checkpoint: {out / 'classifier.pt'}" in log
    payload = torch.load(out / "classifier.pt", weights_only=True)
    accuracy = payload["id_accuracy"]
    assert accuracy["split"] == "id_test" and accuracy["images"] == 32 and 0 <= accuracy["accuracy"] <= 1
    assert f"ID accuracy {100 * accuracy['accuracy']:.1f}% on id_test (32 images)" in log


def test_build_splits_ends_with_a_summary(bird_benchmark, dozen_birds, tmp_path, capsys):
    status, out, err = run_cli("build-splits", "bird", "--root", dozen_birds, "--out", tmp_path, "--num-id", "8",
                               "--predictions", bird_benchmark["base"] / "preds.npz", capsys=capsys)
    assert status == 0, err
    manifest = json.loads(Path(out.strip()).read_text())
    ranking = manifest["ranking"]["classes"]
    margin = ranking[7]["score"] - ranking[8]["score"]
    assert "benchmark bird (cub): K = 8 ID classes, 4 holdout OOD classes (ranked)" in err
    assert "splits: id_train 48, id_test 32, ood_test 16 images" in err
    assert f"S(c) margin at the border: {margin:.4f} (last ID class {ranking[7]['name']!r}" in err
    assert f"manifest: {out.strip()}" in err


def test_filter_outliers_ends_with_a_summary(webvision, tmp_path, capsys):  # noqa: F811
    root, _ = webvision
    status, out, err = run_cli("filter-outliers", "dog", "--source", "webvision", "--root", root, "--out", tmp_path, capsys=capsys)
    assert status == 0, err
    assert "kept 18 images of 3 concepts; removed 18 images of 2 concepts (123 concepts excluded, 121 of them had no image here)" in err
    assert f"report: {tmp_path / 'webvision-dog' / 'report.md'}" in err


@pytest.fixture(scope="module")
def checkpoints(bird_benchmark, tmp_path_factory):
    """A tiny random ResNet-18 of the 8 ID classes, and one whose head is all zeros (every logit equal)."""
    base = tmp_path_factory.mktemp("checkpoints")
    names = Manifest.load(bird_benchmark["base"] / "out" / "bird").id_class_names
    torch.manual_seed(0)
    model = build_model("resnet18", 8)
    save_classifier(base / "random.pt", model, "resnet18", names, {"method": "oe"})
    torch.nn.init.zeros_(model.fc.weight)
    torch.nn.init.zeros_(model.fc.bias)
    save_classifier(base / "flat.pt", model, "resnet18", names, {"method": "standard"})
    return base


def evaluate_args(bird_benchmark, dozen_birds, checkpoint, out, *extra):
    base = bird_benchmark["base"]
    return ["evaluate", "--checkpoint", checkpoint, "--manifest", base / "out" / "bird", "--root", dozen_birds,
            "--out", out, "--image-size", "32", "--workers", "0", *extra]


def test_evaluate_ends_with_protocol_and_files(bird_benchmark, dozen_birds, checkpoints, tmp_path, capsys):
    status, out, err = run_cli(*evaluate_args(bird_benchmark, dozen_birds, checkpoints / "random.pt", tmp_path / "run",
                                              "--scorers", "msp,energy"), capsys=capsys)
    assert status == 0, err
    assert out.startswith("**bird**") and "| msp | " in out
    assert f"model: oe (resnet18), {checkpoints / 'random.pt'}" in err
    assert "protocol: OOD is the positive class" in err and "base rate: all images of each set" in err
    assert f"files in {tmp_path / 'run'}: results.csv, results.json, results.md, scores.parquet" in err
    assert f"Model: oe (resnet18), checkpoint `{checkpoints / 'random.pt'}`." in (tmp_path / "run" / "results.md").read_text()


# -- 6. a long run on the CPU says so once ---------------------------------------------------------


def test_a_long_cpu_run_says_so_once(logged_training, monkeypatch, capsys):
    _, _, log, _ = logged_training
    assert log.count("fgood-bench: note: training runs on the CPU at ") == 1
    assert "for its 4 steps. The paper's recipe (ResNet-50 at 448 px) is meant for a GPU (--device cuda)" in log
    notice = progress_module.SlowRunNotice("cpu", 1000)  # 1000 steps at 2 s: over the hour of the threshold
    clock = [0.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock[0])
    notice.started = 0.0
    for _ in range(10):
        clock[0] += 2.0
        notice.step()
    assert capsys.readouterr().err == ""  # 2000 s: under the hour
    notice = progress_module.SlowRunNotice("cpu", 10_000)
    notice.started = clock[0]
    for _ in range(10):
        clock[0] += 2.0
        notice.step()
    assert capsys.readouterr().err.count("at 2.0 s a step: about 5:33:20 for its 10,000 steps") == 1
    quiet = progress_module.SlowRunNotice("cuda", 10_000)
    for _ in range(10):
        clock[0] += 2.0
        quiet.step()
    assert capsys.readouterr().err == ""


# -- 7. Ctrl-C ---------------------------------------------------------------------------------------


def test_ctrl_c_stops_a_backward_pass_at_its_next_layer():
    model = build_model("resnet18", 8)
    first_grad = model.fc.weight  # the head's gradient is the first one backward computes
    first_grad.register_hook(lambda grad: os.kill(os.getpid(), signal.SIGINT))
    with StopOnInterrupt(model) as stop:
        loss = model(torch.randn(2, 3, 32, 32)).sum()
        with pytest.raises(KeyboardInterrupt):
            loss.backward()
        assert stop.requested
    assert model.conv1.weight.grad is None  # backward stopped long before the first layer
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    assert not model._forward_pre_hooks


def test_ctrl_c_says_how_to_continue(monkeypatch, capsys):
    import fgood_bench.training.train as train_module

    def interrupted(request):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "train", interrupted)
    status, out, err = run_cli("train", "--method", "standard", "--manifest", "m", "--root", "r", "--out", "o", capsys=capsys)
    assert status == 130 and out == ""
    assert err == "fgood-bench: interrupted; nothing was kept yet: run the same command again to start over\n"


def test_loader_workers_leave_ctrl_c_to_the_main_process():
    from fgood_bench.tools.images import make_loader

    assert make_loader(list(range(4)), 2, workers=1).worker_init_fn is ignore_sigint


@pytest.mark.slow
def test_ctrl_c_during_a_long_cpu_step_exits_at_once(bird_benchmark, dozen_birds, tmp_path):
    """A real process, a step of several seconds (ResNet-50 at 224 px): Ctrl-C answers well before it ends."""
    env = {**os.environ, progress_module.INTERVAL_VARIABLE: "0", "PYTHONPATH": str(Path(__file__).parents[1])}
    command = [sys.executable, "-m", "fgood_bench", "train", "--method", "standard", "--manifest",
               str(bird_benchmark["base"] / "out" / "bird"), "--root", str(dozen_birds), "--out", str(tmp_path / "run"),
               "--arch", "resnet50", "--weights", "none", "--image-size", "224", "--batch-size", "16", "--workers", "1"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    lines = []
    for line in process.stderr:  # the first step's line: the second step is under way
        lines.append(line)
        if line.startswith("epoch 1/"):
            break
    step_started = time.monotonic()
    hours, minutes, seconds = lines[-1].split(" elapsed")[0].rsplit(", ", 1)[1].split(":")
    step_seconds = 3600 * int(hours) + 60 * int(minutes) + int(seconds)
    time.sleep(0.5)
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read()
    process.wait(timeout=60)
    answered = time.monotonic() - sent
    assert process.returncode == 130, rest
    # stopped in its first epoch: no checkpoint yet, so nothing to --resume, and nothing left to block a rerun
    assert "Traceback" not in rest and rest.strip().splitlines()[-1].endswith("nothing was kept yet: run the same command "
                                                                             "again to start over")
    assert not (tmp_path / "run").exists()
    assert answered < 3.0 or answered < 0.5 * step_seconds, (answered, step_seconds, time.monotonic() - step_started)


# -- 9. plots ----------------------------------------------------------------------------------------


def test_comparison_figures_of_several_runs(tmp_path, capsys):
    runs = [fake_run(tmp_path / name, name, k) for k, name in enumerate(("standard", "oe", "mixupoe"))]
    status, out, err = run_cli("plot", *runs, "--out", tmp_path / "figures", capsys=capsys)
    assert status == 0, err
    assert out.split() == [str(tmp_path / "figures" / "confidence.png"), str(tmp_path / "figures" / "interpolation.png")]
    for path in out.split():
        assert Path(path).read_bytes()[:4] == b"\x89PNG"
    status, _, err = run_cli("plot", *runs, "--hist", capsys=capsys)
    assert status == 2 and "--out DIR" in err


def test_figure_panels_titles_and_legend_outside():
    from fgood_bench.evaluation import plots

    rng = np.random.default_rng(0)
    panels = {name: {"id": rng.beta(8, 1, 50), "holdout": rng.beta(3, 2, 20), "places": rng.beta(1, 3, 20)}
              for name in ("Standard (resnet50)", "OE (resnet50)", "MixupOE (resnet50)")}
    for style in ("kde", "hist"):
        fig = plots.confidence_figure(panels, "dog: MSP confidence", style)
        axes = fig.axes
        assert [ax.get_title() for ax in axes] == list(panels) and fig.get_suptitle() == "dog: MSP confidence"
        assert all(ax.get_shared_x_axes().joined(axes[0], ax) and ax.get_shared_y_axes().joined(axes[0], ax) for ax in axes)
        if style == "kde":
            assert all(len(ax.lines) == 3 and len(ax.lines[0].get_xdata()) == len(plots.GRID) for ax in axes)
        fig.canvas.draw()
        legend = fig.legends[0]
        assert [t.get_text() for t in legend.get_texts()] == ["ID test (n=50)", "holdout (n=20)", "places (n=20)"]
        assert not any(legend.get_window_extent().overlaps(ax.get_window_extent()) for ax in axes)
        plots.plt.close(fig)
    rows = {"Standard": {1.0: rng.beta(8, 1, 30), 0.5: rng.beta(2, 2, 30), 0.7: rng.beta(4, 2, 30)},
            "MixupOE": {1.0: rng.beta(6, 1, 30), 0.5: rng.beta(1, 2, 30), 0.7: rng.beta(2, 2, 30)}}
    fig = plots.interpolation_figure(rows, "dog", "places")
    assert [ax.get_title() for ax in fig.axes] == ["Standard", "MixupOE"]  # one row per model
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["ID (n=30)", "λ = 0.7 (n=30)", "λ = 0.5 (n=30)"]
    assert fig.axes[0].get_position().y0 > fig.axes[1].get_position().y1
    plots.plt.close(fig)


def test_single_run_plot_is_titled_by_model_and_benchmark(tmp_path, monkeypatch):
    from fgood_bench.evaluation import plots

    run = fake_run(tmp_path / "run", "mixupoe", 0, interpolation=False)
    titles = []
    original = plots.confidence_figure
    monkeypatch.setattr(plots, "confidence_figure", lambda *a, **k: titles.append(a[1]) or original(*a, **k))
    assert plots.plot_run(run) == run / "confidence.png" and (run / "confidence.png").is_file()
    assert titles == ["dog · MixupOE (resnet50): MSP"]


# -- 11. degenerate scorers ---------------------------------------------------------------------------


def test_a_degenerate_scorer_is_flagged(bird_benchmark, dozen_birds, checkpoints, tmp_path, capsys):
    from fgood_bench.evaluation.evaluate import degenerate_scorers

    scores = {"id": {"a": np.array([0.3, 0.3]), "b": np.array([1.0, 2.0])}, "ood": {"a": np.array([0.3 + 1e-9]), "b": np.array([0.0])}}
    assert [name for name, _, _ in degenerate_scorers(scores, ["a", "b"])] == ["a"]
    status, out, err = run_cli(*evaluate_args(bird_benchmark, dozen_birds, checkpoints / "flat.pt", tmp_path / "run",
                                              "--scorers", "msp,maxlogit"), capsys=capsys)
    assert status == 0, err
    assert "warning: the msp scorer gives (nearly) the same score to all 48 images" in err
    assert "warning: the maxlogit scorer" in err
    assert "| msp (degenerate: one score for all images) |" in out
    assert json.loads((tmp_path / "run" / "results.json").read_text())["degenerate_scorers"] == ["msp", "maxlogit"]


# -- 12. errors that point to the fix ------------------------------------------------------------------


def test_missing_ood_root_names_the_option(bird_benchmark, dozen_birds, checkpoints, tmp_path, capsys):
    base = bird_benchmark["base"]
    args = evaluate_args(bird_benchmark, dozen_birds, checkpoints / "random.pt", tmp_path / "run",
                         "--ood", f"places={base / 'out' / 'places365'}")
    status, _, err = run_cli(*args, capsys=capsys)
    # another dataset is never inside the benchmark's --root (a DTD set once matched CUB's images/ folder)
    assert status == 2 and ("OOD set 'places' is a places365 set and --root is the benchmark's cub folder: give the set's "
                            "folder with --ood-root places=DIR") in err
    status, _, err = run_cli(*args, "--ood-root", f"places={bird_benchmark['places']}", "--ood-root", f"place={bird_benchmark['places']}",
                             capsys=capsys)
    assert status == 2 and "--ood-root place=...: no OOD set is named 'place'" in err


def test_refused_resume_names_the_changed_setting(logged_training, bird_benchmark, dozen_birds, capsys):
    out, _, _, _ = logged_training
    args = ["train", "--method", "standard", "--manifest", bird_benchmark["base"] / "out" / "bird", "--root", dozen_birds,
            "--out", out, "--epochs", "2", "--resume", *TINY]
    status, _, err = run_cli(*args, "--lr", "0.01", capsys=capsys)
    assert status == 2 and "was written with other training settings (lr 0.001 -> 0.01)" in err
    status, _, err = run_cli(*args, "--seed", "3", capsys=capsys)
    assert status == 2 and "(seed 0 -> 3)" in err


def fake_results(folder: Path, scorers: list[str], checkpoint: str = "aa", seed: int = 0) -> Path:
    folder.mkdir(parents=True)
    metrics = {"holdout": {s: {"fpr95": 0.5, "auroc": 0.7, "aupr_out": 0.4, "aupr_in": 0.8} for s in scorers}}
    (folder / "results.json").write_text(json.dumps({
        "toolkit": "t", "convention": "c", "metrics_reported": ["fpr95", "auroc", "aupr_out", "aupr_in"],
        "benchmark": {"name": "bird"}, "scorers": scorers, "base_rate": "none: all images of each set",
        "checkpoint_sha256": checkpoint, "id_accuracy": 0.9, "metrics": metrics}))
    return folder


def test_report_names_differing_scorers_and_refuses_a_run_twice(tmp_path, capsys):
    one = fake_results(tmp_path / "one", ["msp", "energy"])
    other = fake_results(tmp_path / "other", ["msp", "odin"], checkpoint="bb")
    status, _, err = run_cli("report", one, other, capsys=capsys)
    assert status == 2 and f"{other}: its scorers differ from {one}'s (it lacks energy; it adds odin)" in err
    status, _, err = run_cli("report", one, one, capsys=capsys)
    assert status == 2 and f"{one}: the same run as {one}" in err
    copy = fake_results(tmp_path / "copy", ["msp", "energy"])
    status, _, err = run_cli("report", one, copy, capsys=capsys)
    assert status == 2 and f"{copy}: the same checkpoint as {one}; report's ± is over trained models" in err
    reseeded = fake_results(tmp_path / "reseeded", ["msp", "energy"], seed=1)  # another --seed: other draws, same model
    assert run_cli("report", one, reseeded, capsys=capsys)[0] == 2
    second = fake_results(tmp_path / "second", ["msp", "energy"], checkpoint="cc")
    assert run_cli("report", one, second, capsys=capsys)[0] == 0


def test_report_refuses_runs_scored_with_other_settings(tmp_path, capsys):
    """Mahalanobis on the stages against one on every block, or float16 against float32 scores: not
    seeds of one experiment, so not averaged."""
    runs = []
    for name, layers, precision in (("a", "stages", "float32"), ("b", "blocks", "float32"), ("c", "stages", "float16"),
                                    ("d", "stages", "float32")):
        folder = fake_results(tmp_path / name, ["mahalanobis"], checkpoint=name)
        results = json.loads((folder / "results.json").read_text())
        results["settings"] = {"seed": ord(name), "model": {"arch": "resnet50", "precision": precision},
                               "scorers": {"mahalanobis": {"feature_layers": layers}}, "id_validation": {"seed": ord(name)}}
        (folder / "results.json").write_text(json.dumps(results))
        runs.append(folder)
    status, _, err = run_cli("report", runs[0], runs[1], capsys=capsys)
    assert status == 2 and "its settings.scorers.mahalanobis differs" in err and err.count("\n") == 1
    status, _, err = run_cli("report", runs[0], runs[2], capsys=capsys)
    assert status == 2 and "its settings.model.precision differs from" in err and "'float16' against 'float32'" in err
    status, out, err = run_cli("report", runs[0], runs[3], "--out", tmp_path / "agg", capsys=capsys)  # seeds may differ
    assert status == 0, err
    assert json.loads((tmp_path / "agg" / "report.json").read_text())["settings"]["model"]["precision"] == "float32"


# -- 13. small ones -----------------------------------------------------------------------------------


def test_inspect_into_a_closed_pipe_ends_quietly():
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written, as after `| head`
    try:
        result = subprocess.run([sys.executable, "-m", "fgood_bench", "inspect", "cub", "--sample", "--json"], stdout=write,
                                stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    finally:
        os.close(write)
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr, result.stderr
    assert result.returncode == 141


def test_inspect_json_lists_missing_paths_and_the_options_in_effect(tmp_path, capsys):
    root = synthetic.write_sample("dtd", tmp_path / "dtd")
    images = sorted((root / "images").rglob("*.jpg"))[:2]
    for image in images:
        image.unlink()
    status, out, _ = run_cli("inspect", "dtd", "--root", root, "--json", capsys=capsys)
    report = json.loads(out)
    assert status == 2 and report["options"] == {"partition": 1}
    missing = sorted(p for paths in report["missing_paths"].values() for p in paths)
    assert set(missing) == {image.relative_to(root).as_posix() for image in images}
    thudogs = synthetic.write_sample("thudogs", tmp_path / "dogs")
    status, out, _ = run_cli("inspect", "thudogs", "--root", thudogs, "--json", capsys=capsys)
    assert json.loads(out)["options"]["variant"] in ("high", "low")
    status, out, _ = run_cli("inspect", "fgvc_aircraft", "--sample", "--json", capsys=capsys)
    assert json.loads(out)["options"] == {"level": "variant"}


def test_inspect_sample_without_root_shows_no_deleted_path(capsys):
    status, out, err = run_cli("inspect", "cub", "--sample", capsys=capsys)
    assert status == 0
    assert "fgood-sample-" not in out + err and "temporary folder, removed after the check" in err
    assert out.startswith("cub: (temporary sample, removed)")
    status, out, _ = run_cli("inspect", "cub", "--sample", "--json", capsys=capsys)
    assert json.loads(out)["root"] is None


def test_load_index_is_not_hugging_faces_load_dataset():
    import datasets

    import fgood_bench
    from fgood_bench.datasets import load_dataset, load_index

    assert load_dataset is load_index and fgood_bench.load_index is load_index
    assert datasets.load_dataset is not load_index
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "load_index(" in readme and "fgood_bench.datasets import load_dataset" not in readme


def test_layer_hooks_only_where_a_step_is_long():
    """On CUDA a step is short: no per-layer hooks on the training hot path (Ctrl-C waits for the step)."""
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())
    with StopOnInterrupt(model, layer_hooks=False) as stop:
        assert stop.handles == []
    with StopOnInterrupt(model) as stop:
        assert len(stop.handles) == 3 + 2  # every module (incl. the container) and every parameter
