"""One rule for Ctrl-C (docs/outputs.md, "Interrupting and resuming"): the message says what was kept,
and the same command with --resume continues from it (study and sweep: a plain rerun too)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli
from fgood_bench.interrupt import forget, interrupted_message, keep

TINY = ["--arch", "resnet18", "--weights", "none", "--image-size", "32", "--batch-size", "16", "--workers", "0"]


def _epochs_that_stop_at(monkeypatch, stop_at: int | None) -> list[int]:
    """Record the epochs the training loop runs; Ctrl-C at the start of epoch index ``stop_at``."""
    import fgood_bench.tools.loop as loop

    ran = []
    real = loop._EpochRun.run

    def run(self, epoch, skip, state):
        if epoch == stop_at:
            raise KeyboardInterrupt
        ran.append(epoch)
        return real(self, epoch, skip, state)

    monkeypatch.setattr(loop._EpochRun, "run", run)
    return ran


def test_build_splits_stopped_before_its_first_checkpoint_says_nothing_was_kept(dozen_birds, tmp_path, capsys, monkeypatch):
    _epochs_that_stop_at(monkeypatch, 0)
    args = ["build-splits", "bird", "--root", dozen_birds, "--out", tmp_path / "out", "--num-id", "8", "--epochs", "2", *TINY]
    status, out, err = run_cli(*args, capsys=capsys)
    assert status == 130
    assert err == "fgood-bench: interrupted; nothing was kept yet: run the same command again to start over\n"
    assert "--resume" not in err and "kept:" not in err
    assert not (tmp_path / "out").exists()  # true: nothing is there


def test_build_splits_stopped_after_an_epoch_names_the_checkpoint_and_resume_continues(dozen_birds, tmp_path, capsys,
                                                                                         monkeypatch):
    ran = _epochs_that_stop_at(monkeypatch, 1)
    args = ["build-splits", "bird", "--root", dozen_birds, "--out", tmp_path / "out", "--num-id", "8", "--epochs", "2", *TINY]
    status, _, err = run_cli(*args, capsys=capsys)
    checkpoint = tmp_path / "out" / "bird.work" / "checkpoint.pt"
    assert status == 130 and ran == [0]
    assert err == (f"fgood-bench: interrupted; epoch 1 of 2 is kept in {checkpoint}: "
                   "run the same command with --resume to continue\n")
    assert checkpoint.is_file()

    monkeypatch.undo()
    ran = _epochs_that_stop_at(monkeypatch, None)
    status, _, err = run_cli(*args, "--resume", capsys=capsys)
    assert status == 0, err
    assert ran == [1]  # the second epoch only: the first was kept
    assert (tmp_path / "out" / "bird" / "manifest.json").is_file()


def test_train_stopped_before_its_first_checkpoint_leaves_nothing_and_a_rerun_starts(bird_benchmark, dozen_birds,
                                                                                      tmp_path, capsys, monkeypatch):
    """A run logs every 50 steps before its first checkpoint: stopped there, the log alone must not make the
    rerun ask for --resume or --restart (the message promises that the same command starts over)."""
    import fgood_bench.tools.loop as loop

    def stopped_after_a_log_line(self, epoch, skip, state):
        loop._log(self.options.log, {"epoch": 1, "step": 50})
        raise KeyboardInterrupt

    monkeypatch.setattr(loop._EpochRun, "run", stopped_after_a_log_line)
    args = ["train", "--method", "standard", "--manifest", bird_benchmark["base"] / "out" / "bird", "--root", dozen_birds,
            "--out", tmp_path / "run", "--epochs", "1", *TINY]
    status, _, err = run_cli(*args, capsys=capsys)
    assert status == 130 and "nothing was kept yet: run the same command again to start over" in err
    assert not (tmp_path / "run").exists()
    monkeypatch.undo()
    status, _, err = run_cli(*args, capsys=capsys)
    assert status == 0, err
    assert (tmp_path / "run" / "classifier.pt").is_file()


def test_evaluate_stopped_in_its_last_model_pass_leaves_out_as_it_was(bird_benchmark, dozen_birds, tmp_path, capsys,
                                                                    monkeypatch):
    """--plots runs the model once more (the interpolation figure) after scoring: Ctrl-C there must not leave
    scores written (the rerun would be refused as "an earlier evaluate output"), as the message says."""
    import torch

    import fgood_bench.evaluation.plots as plots
    from fgood_bench.manifests.manifest import Manifest
    from fgood_bench.tools.models import build_model, save_classifier

    base = bird_benchmark["base"]
    save_classifier(tmp_path / "ck.pt", build_model("resnet18", 8), "resnet18", Manifest.load(base / "out" / "bird").id_class_names,
                    {"image_size": 32})
    args = ["evaluate", "--checkpoint", tmp_path / "ck.pt", "--manifest", base / "out" / "bird", "--root", dozen_birds,
            "--ood", "holdout", "--out", tmp_path / "eval", "--workers", "0", "--device", "cpu", "--plots"]

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "interpolation_confidences", stopped)
    status, _, err = run_cli(*args, capsys=capsys)
    assert status == 130 and err.endswith("nothing was kept yet: run the same command again to start over\n")
    assert not (tmp_path / "eval").exists()
    monkeypatch.undo()
    torch.manual_seed(0)
    status, _, err = run_cli(*args, capsys=capsys)
    assert status == 0, err
    assert (tmp_path / "eval" / "interpolation.png").is_file()


# -- demo --workdir: stopped, then continued with --resume ---------------------------------------------------


@pytest.fixture
def fake_demo(monkeypatch):
    """The demo's stages as fakes that record their calls (the pipeline itself is tested in test_demo_and_docs.py)."""
    import fgood_bench.demo as demo

    calls: list[str] = []
    stop = {"at": None}

    def stage(name, result):
        def run(*args, **kwargs):
            if name == stop["at"]:
                stop["at"] = None
                raise KeyboardInterrupt
            calls.append(name)
            return result(*args, **kwargs)
        return run

    def outliers(benchmark, source, root, out, **kwargs):
        path = Path(out) / "webvision" / "manifest.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"exclusion": {"images_removed": 1, "images_kept": 2}}))
        return path

    def evaluate(request):
        Path(request.out).mkdir(parents=True, exist_ok=True)
        results = {"fake": request.checkpoint.parent.name}
        (Path(request.out) / "results.json").write_text(json.dumps(results))
        return results

    monkeypatch.setattr(demo, "write_demo_data", stage("data", lambda workdir: {}))
    monkeypatch.setattr(demo, "build_splits", stage("build-splits", lambda request: Path(request.out) / "bird" / "manifest.json"))
    monkeypatch.setattr(demo, "build_ood_set", stage("build-ood-set", lambda *a, **k: Path(a[2]) / "textures" / "manifest.json"))
    monkeypatch.setattr(demo, "filter_outliers", stage("filter-outliers", outliers))
    monkeypatch.setattr(demo, "train", stage("train", lambda request: Path(request.out) / "classifier.pt"))
    monkeypatch.setattr(demo, "evaluate", stage("evaluate", evaluate))
    monkeypatch.setattr(demo, "markdown_table", lambda results: json.dumps(results))
    return calls, stop


def test_demo_stopped_mid_way_continues_with_resume(fake_demo, tmp_path, capsys):
    calls, stop = fake_demo
    workdir = tmp_path / "demo"
    stop["at"] = "train"  # Ctrl-C in the standard model's training
    status, _, err = run_cli("demo", "--workdir", workdir, "--epochs", "1", capsys=capsys)
    assert status == 130
    assert calls == ["data", "build-splits", "build-ood-set", "filter-outliers"]
    assert err == (f"fgood-bench: interrupted; the finished demo stages (4 of 8: data, build-splits, build-ood-set, "
                   f"filter-outliers) are kept in {workdir}: run the same command with --resume to continue\n")

    calls.clear()
    status, out, err = run_cli("demo", "--workdir", workdir, "--epochs", "1", "--resume", capsys=capsys)
    assert status == 0, err
    assert calls == ["train", "train", "evaluate", "evaluate"]  # the finished stages are not redone
    assert "build-splits: finished in the stopped demo, kept" in out
    report = (workdir / "report.md").read_text()
    assert '"fake": "standard"' in report and '"fake": "mixupoe"' in report

    # a plain rerun still refuses (the demo is not replaced silently), and says both ways on
    status, _, err = run_cli("demo", "--workdir", workdir, "--epochs", "1", capsys=capsys)
    assert status == 2 and "pass --overwrite to run the demo there again, or --resume to continue it" in err


def test_demo_resume_with_other_epochs_or_without_workdir_is_refused(fake_demo, tmp_path, capsys):
    calls, stop = fake_demo
    stop["at"] = "train"
    assert run_cli("demo", "--workdir", tmp_path / "demo", "--epochs", "1", capsys=capsys)[0] == 130
    status, _, err = run_cli("demo", "--workdir", tmp_path / "demo", "--epochs", "2", "--resume", capsys=capsys)
    assert status == 2 and "the stopped demo ran with --epochs 1" in err
    status, _, err = run_cli("demo", "--resume", capsys=capsys)
    assert status == 2 and "give --workdir" in err


def test_demo_stopped_in_its_first_stage_says_resume_and_resume_wins_over_overwrite(fake_demo, tmp_path, capsys):
    """Stopped while writing its data, a --workdir demo's folder already refuses a plain rerun: the line says
    --resume (not "start over"), and the same command with --resume continues, --overwrite or not."""
    import fgood_bench.demo as demo

    calls, _ = fake_demo
    writes = demo.write_demo_data

    def stopped_while_writing(workdir):  # the first images are on disk when Ctrl-C comes
        (workdir / "data").mkdir()
        (workdir / "data" / "0001.jpg").write_bytes(b"partial")
        demo.write_demo_data = writes
        raise KeyboardInterrupt

    demo.write_demo_data = stopped_while_writing
    status, _, err = run_cli("demo", "--workdir", tmp_path / "demo", "--epochs", "1", "--overwrite", capsys=capsys)
    assert status == 130
    assert err == (f"fgood-bench: interrupted; the demo's work folder {tmp_path / 'demo'} is kept: "
                   "run the same command with --resume to continue\n")
    status, _, err = run_cli("demo", "--workdir", tmp_path / "demo", "--epochs", "1", capsys=capsys)
    assert status == 2 and "--resume" in err  # the plain rerun is refused, as the line said
    status, _, err = run_cli("demo", "--workdir", tmp_path / "demo", "--epochs", "1", "--overwrite", "--resume", capsys=capsys)
    assert status == 0, err
    assert calls[0] == "data"


def test_demo_in_a_temporary_folder_keeps_nothing(fake_demo, capsys):
    calls, stop = fake_demo
    stop["at"] = "evaluate"
    status, _, err = run_cli("demo", "--epochs", "1", capsys=capsys)
    assert status == 130
    assert err == "fgood-bench: interrupted; nothing was kept yet: run the same command again to start over\n"


# -- study and sweep: --resume, or a plain rerun -------------------------------------------------------------


def test_study_interrupt_message_names_the_finished_splits(monkeypatch, tmp_path, capsys):
    import fgood_bench.study.random_splits as study

    def run_study(request):  # what run_study records as its splits finish, then Ctrl-C
        keep(tmp_path / "splits", f"the finished splits (2 of 3) are kept in {tmp_path / 'splits'}")
        raise KeyboardInterrupt

    monkeypatch.setattr(study, "run_study", run_study)
    status, _, err = run_cli("study", "random-splits", "cub", "--root", tmp_path, "--out", tmp_path, capsys=capsys)
    assert status == 130
    assert err == (f"fgood-bench: interrupted; the finished splits (2 of 3) are kept in {tmp_path / 'splits'}: "
                   "run the same command again (--resume optional) to continue\n")
    monkeypatch.setattr(study, "run_study", lambda request: (_ for _ in ()).throw(KeyboardInterrupt))
    status, _, err = run_cli("study", "random-splits", "cub", "--root", tmp_path, "--out", tmp_path, "--resume",
                             capsys=capsys)  # --resume is accepted; nothing recorded this time
    assert err == "fgood-bench: interrupted; nothing was kept yet: run the same command again to start over\n"


def test_sweep_interrupt_message_and_resume_flag(monkeypatch, tmp_path, capsys):
    import fgood_bench.study.sweep as sweep

    def run_sweep(request):
        keep(tmp_path / "points", f"the finished grid points (1 of 4) are kept in {tmp_path / 'points'}")
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "run_sweep", run_sweep)
    status, _, err = run_cli("sweep", "--method", "mixupoe", "--manifest", tmp_path, "--root", tmp_path, "--out",
                             tmp_path / "s", "--grid", "alpha=0.4", "--resume", capsys=capsys)
    assert status == 130, err
    assert "the finished grid points (1 of 4) are kept in" in err and "(--resume optional) to continue" in err


def test_the_message_joins_what_was_kept():
    forget()
    assert interrupted_message() == "interrupted; nothing was kept yet: run the same command again to start over"
    keep("a", "epoch 1 of 2 is kept in a")
    keep("a", "epoch 2 of 2 is kept in a")  # the latest record of a place replaces the earlier one
    assert interrupted_message() == "interrupted; epoch 2 of 2 is kept in a: run the same command with --resume to continue"
    forget()
