"""A newcomer's day (issue 27): long commands talk in log files (off a terminal, study, sweep and
audit-leakage name the stage of each progress line and say when each stage starts, with the time
left), and errors name the flag that is missing."""



from conftest import run_cli
from fgood_bench.progress import LineProgress, Stages, stage_prefix


def test_stages_name_the_lines_inside_them_and_estimate_the_time_left(capsys, monkeypatch):
    import fgood_bench.progress as progress

    clock = iter([0.0, 10.0, 10.0, 30.0, 30.0, 30.0])  # enter and leave each stage: 10 s, 20 s, 0 s
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    stages = Stages("split", 3)
    with stages.stage(0, "split-00"):
        assert stage_prefix() == "[split 1 of 3] "
    with stages.stage(1):
        pass
    with stages.stage(2):
        pass
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "fgood-bench: split 1 of 3 (split-00): started"
    assert err[1] == "fgood-bench: split 2 of 3: started, about 0:00:20 left"  # 10 s a split, 2 to go
    assert err[2] == "fgood-bench: split 3 of 3: started, about 0:00:15 left"  # (10 + 20) / 2 s, 1 to go
    assert stage_prefix() == ""


def test_line_progress_carries_the_stage(capsys):
    with Stages("grid point", 2).stage(1, "alpha=1.0"):
        for _ in LineProgress(range(3), desc="epoch 1/1", interval=0.0):
            pass
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "fgood-bench: grid point 2 of 2 (alpha=1.0): started"
    assert lines[-1].startswith("[grid point 2 of 2] epoch 1/1: 3/3 (100%)")


def test_study_logs_each_split_off_a_terminal(dozen_birds, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("fgood_bench.training.train.train", lambda request: request.out / "classifier.pt")
    monkeypatch.setattr("fgood_bench.evaluation.evaluate.evaluate", lambda request: {
        "id_accuracy": 0.5, "metrics": {"holdout": {"msp": {m: {"mean": 0.6, "std": 0.0} for m in ("auroc", "aupr_out", "fpr95")}}}})
    status, _, err = run_cli("study", "random-splits", "bird", "--root", dozen_birds, "--out", tmp_path / "s", "--num-id", "4",
                             "--splits", "2", "--arch", "resnet18", "--weights", "none", "--image-size", "32", capsys=capsys)
    assert status == 0, err
    assert "fgood-bench: split 1 of 2 (split-00): started" in err and "fgood-bench: split 2 of 2 (split-01): started" in err


def test_audit_logs_its_hashing_by_image_set(bird_benchmark, dozen_birds, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FGOOD_BENCH_PROGRESS_SECONDS", "0")
    base = bird_benchmark["base"]
    status, _, err = run_cli("audit-leakage", "--benchmark", base / "out" / "bird", "--root", dozen_birds,
                             "--out", tmp_path / "a", capsys=capsys)
    assert status == 0, err
    assert "fgood-bench: image set 1 of 3 (id_train" in err
    assert any(line.startswith("[image set 3 of 3] hashing holdout: ") for line in err.splitlines()), err


def test_a_forgotten_outlier_root_is_named(bird_benchmark, dozen_birds, tmp_path, capsys):
    """train with outliers of another dataset and no --outlier-root says which flag is missing (issue 27 item 4)."""
    base = bird_benchmark["base"]
    for argv in (["train", "--method", "oe", "--manifest", base / "out" / "bird", "--root", dozen_birds, "--outliers",
                  base / "out" / "places365", "--from-scratch", "--out", tmp_path / "t", "--arch", "resnet18", "--weights",
                  "none", "--image-size", "32"],
                 ["audit-leakage", "--benchmark", base / "out" / "bird", "--root", dozen_birds, "--outliers",
                  base / "out" / "places365", "--out", tmp_path / "a"]):
        status, _, err = run_cli(*argv, capsys=capsys)
        assert status == 2 and "give the outliers' folder with --outlier-root DIR" in err and err.count("\n") == 1, err
        assert not (tmp_path / "t").exists() and not (tmp_path / "a").exists()


def test_one_vocabulary_with_the_old_spellings_kept():
    """Issue 27 item 7: --manifest names the benchmark in audit-leakage as in train and evaluate; --scorer and
    --scorers are both understood; audit's decoding threads are --threads; demo's device is auto as every command's."""
    from fgood_bench.cli import build_parser

    parser = build_parser()
    audit = ["audit-leakage", "--root", "r", "--out", "o"]
    for spelling in ("--manifest", "--benchmark"):
        assert parser.parse_args([*audit, spelling, "m", "--threads", "3"]).benchmark.name == "m"
    assert parser.parse_args([*audit, "--manifest", "m", "--workers", "2"]).workers == 2
    evaluate = ["evaluate", "--checkpoint", "c", "--manifest", "m", "--root", "r", "--out", "o"]
    assert parser.parse_args([*evaluate, "--scorer", "msp"]).scorers == "msp"
    assert parser.parse_args(["study", "random-splits", "bird", "--root", "r", "--out", "o", "--scorers", "energy"]).scorer == "energy"
    assert parser.parse_args(["demo"]).device == "auto"


def test_figure_legends_lie_inside_the_canvas(tmp_path):
    """Issue 27 item 2: confidence.png (one 504 px panel) and interpolation.png used to cut their legend
    at both edges; every legend now lies inside the saved canvas."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np

    from fgood_bench.evaluation import plots

    rng = np.random.default_rng(0)
    sets = {name: rng.uniform(0, 1, 50) for name in ("id", "holdout", "textures", "places365")}
    figures = [plots.confidence_figure({"": sets}, "bird · MixupOE: MSP"),
               plots.interpolation_figure({"": {lam: rng.uniform(0, 1, 50) for lam in (1.0, 0.5, 0.6, 0.7)}}, "bird",
                                          "textures")]
    for fig in figures:
        fig.canvas.draw()
        canvas = fig.bbox
        for legend in fig.legends:
            box = legend.get_window_extent()
            assert box.x0 >= canvas.x0 and box.x1 <= canvas.x1 and box.y0 >= canvas.y0 and box.y1 <= canvas.y1, (box, canvas)
        plots.plt.close(fig)
