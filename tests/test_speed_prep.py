"""What the end-to-end GPU measurement (scripts/gpu_check.sh, Part 3) relies on, checked on the CPU:
the Tsinghua Dogs-like data generator, build-splits' phase timings, and ``--compile`` (compiled, or eager
with one warning where compiling is not available)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fgood_bench.datasets import load_dataset
from fgood_bench.tools import runtime
from conftest import run_cli

REPO = Path(__file__).resolve().parent.parent
TINY = ["--arch", "resnet18", "--weights", "none", "--image-size", "32", "--batch-size", "8", "--workers", "0"]
PHASES = ("dataset_index", "dataset_checks", "model_setup", "training_setup", "training_loader_start", "training_first_step",
          "training_compute", "checkpointing", "inference_setup", "inference_loader_start", "inference_first_batch",
          "ranking", "writing")


def generator():
    """scripts/make_thudogs_like.py as a module (importable by name: its process pool pickles its functions)."""
    if "make_thudogs_like" not in sys.modules:
        spec = importlib.util.spec_from_file_location("make_thudogs_like", REPO / "scripts" / "make_thudogs_like.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["make_thudogs_like"] = module
        spec.loader.exec_module(module)
    return sys.modules["make_thudogs_like"]


@pytest.fixture(scope="module")
def tiny_dogs(tmp_path_factory) -> Path:
    """The generated download at scale 0.001 (one to seven images per breed and split), 40 x 30 JPEGs."""
    out = tmp_path_factory.mktemp("dogs")
    generator().make(out, scale=0.001, size=(40, 30), distinct=0, workers=2)
    return out


def test_the_full_size_keeps_every_official_line_and_a_scale_keeps_every_breed():
    make = generator()
    lists = {s: make.read_list(make.LISTS / n) for s, n in make.LIST_FILES.items()}
    assert [len(make.scaled(lists[s], 1.0)) for s in ("train", "val")] == [65_228, 5_200]
    small = make.scaled(lists["val"], 0.001)
    assert len(small) == 130 and small == [line for line in lists["val"] if line in set(small)]  # official order


def test_generated_download_has_the_official_layout(tiny_dogs):
    raw = (tiny_dogs / "TrainAndValList" / "train.lst").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf.//1043-n000001-Shiba_Dog/") and raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    index = load_dataset("thudogs", tiny_dogs)
    assert len(index.classes) == 130 and "Fila Braziliero" in index.classes
    val = index.split("val").column("path").to_pylist()
    assert len(val) == 130 and all(p.startswith("low-resolution/") for p in val)
    sizes = {Image.open(tiny_dogs / p).size for p in index.split("train").column("path").to_pylist()[:8]}
    assert sizes <= {(40, 30), (30, 40)}
    # --distinct: repeated contents, the same layout
    other = tiny_dogs.parent / "dogs-distinct"
    stats = generator().make(other, scale=0.001, size=(40, 30), distinct=3, workers=2)
    assert stats["val"] == 130 and len({p.read_bytes() for p in (other / "low-resolution").rglob("*.jp*g")}) == 3


def test_build_splits_dog_on_generated_data_records_phase_timings(tiny_dogs, tmp_path, capsys):
    status, _, err = run_cli("build-splits", "dog", "--root", tiny_dogs, "--out", tmp_path, "--epochs", "1", *TINY,
                             capsys=capsys)
    assert status == 0, err
    timings = json.loads((tmp_path / "dog.work" / "timings.json").read_text())
    phases = timings["phases"]
    assert set(PHASES) <= set(phases) and all(v >= 0 for v in phases.values())
    assert timings["total_seconds"] == pytest.approx(sum(phases.values()), abs=1e-4)
    assert timings["counts"]["training_compute"] + 1 == timings["train_images"] // 8  # every step but the first
    assert timings["eval_images"] == 130 and timings["compile"] is False and timings["device"] == "cpu"
    manifest = (tmp_path / "dog" / "manifest.json").read_text()
    assert "seconds" not in manifest and "timings" not in manifest and '"compile"' not in manifest


@pytest.fixture(scope="module")
def eager_birds(dozen_birds, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eager")
    from fgood_bench.cli import main

    assert main([str(a) for a in ("build-splits", "bird", "--root", dozen_birds, "--out", out, "--num-id", "8",
                                  "--epochs", "1", *TINY)]) == 0
    return out / "bird"


def test_compile_falls_back_to_eager_with_one_warning(dozen_birds, eager_birds, tmp_path, capsys, monkeypatch):
    def unsupported(*args, **kwargs):  # as torch.compile on a platform or Python it does not support
        raise RuntimeError("torch.compile is not supported on this platform\nsecond line")

    monkeypatch.setattr(torch, "compile", unsupported)
    monkeypatch.setattr(runtime, "_COMPILE_STATE", {})
    monkeypatch.setattr(runtime, "_WARNED", set())
    status, _, err = run_cli("build-splits", "bird", "--root", dozen_birds, "--out", tmp_path, "--num-id", "8",
                             "--epochs", "1", *TINY, "--compile", capsys=capsys)
    assert status == 0, err
    warnings = [line for line in err.splitlines() if "--compile" in line]
    assert warnings == ["warning: --compile: torch.compile is not available here (RuntimeError: torch.compile is not "
                        "supported on this platform); running eagerly"]
    for name in ("ranking.csv", "predictions.npz", "splits/id_train.txt"):  # eager: the very same run
        assert (tmp_path / "bird" / name).read_bytes() == (eager_birds / name).read_bytes(), name
    source = json.loads((tmp_path / "bird" / "manifest.json").read_text())["predictions"]["source"]
    assert source["compile"] is True and "compile" not in json.loads((eager_birds / "manifest.json").read_text())["predictions"]["source"]
    timings = json.loads((tmp_path / "bird.work" / "timings.json").read_text())
    assert timings["compile"] is True and timings["compile_unavailable"].startswith("RuntimeError")


def test_a_compiled_model_failing_at_its_first_call_runs_eagerly(capsys):
    class Broken:
        def __call__(self, x):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

    eager = torch.nn.Linear(3, 2)
    model = runtime._EagerOnFailure(Broken(), eager, "--compile")
    x = torch.ones(4, 3)
    assert torch.equal(model(x), eager(x)) and torch.equal(model(x), eager(x))
    assert model.weight is eager.weight  # the module's attributes, as before
    err = capsys.readouterr().err.splitlines()
    assert err == ["warning: --compile: torch.compile failed (RuntimeError: InvalidCxxCompiler: No working C++ compiler "
                   "found); running eagerly"]


def test_a_compiled_model_failing_at_a_later_recompile_runs_eagerly_from_then_on(capsys):
    """A new batch shape (the last, shorter batch) recompiles: a failure there falls back too, not a traceback."""
    eager = torch.nn.Linear(3, 2)

    class FailsOnANewShape:
        def __call__(self, x):
            if x.shape[0] != 4:
                raise RuntimeError("BackendCompilerFailed: recompiling for a new shape")
            return eager(x)

    model = runtime._EagerOnFailure(FailsOnANewShape(), eager, "--compile")
    assert torch.equal(model(torch.ones(4, 3)), eager(torch.ones(4, 3)))
    assert capsys.readouterr().err == ""
    assert torch.equal(model(torch.ones(2, 3)), eager(torch.ones(2, 3)))
    assert model(torch.ones(4, 3)).shape == (4, 2)
    assert capsys.readouterr().err.count("running eagerly") == 1


def test_resume_accepts_a_run_started_without_compile():
    from fgood_bench.tools.loop import TrainConfig, _config_key

    assert _config_key(TrainConfig(compile=True)) == _config_key(TrainConfig())
    assert TrainConfig(compile=True).record()["compile"] is True and "compile" not in TrainConfig().record()


@pytest.mark.slow
def test_compiled_runs_compute_what_eager_runs_compute(dozen_birds, eager_birds, tmp_path, capsys, monkeypatch):
    """A real torch.compile (inductor, C++ on the CPU): minutes on a small CPU, hence slow.

    Compiled kernels reorder float32 sums (fused BatchNorm and ReLU epilogues), so results agree to a
    tolerance, not bitwise. A whole compiled training is not compared with the eager one: this fixture's
    ResNet-18 at 32 px normalises layer4 over 8 values (1 x 1 pixels x batch 8), which amplifies a 1e-7
    difference to 1e-4 in conv1 after two steps and to a different ranking after nine. So: (1) one compiled
    training step moves the weights as the eager step does, to 1e-5; (2) the ranking from a fixed checkpoint,
    scored by the compiled model, is the eager one, its logits (of order 1) within 1e-4; (3) build-splits
    --compile trains, ranks and records it."""
    from fgood_bench.tools.loop import LoopOptions, TrainConfig, TrainData, train_classifier
    from fgood_bench.tools.models import build_model
    from fgood_bench.tools.runtime import seed_everything, setup_runtime

    monkeypatch.setattr(runtime, "_COMPILE_STATE", {})
    train = load_dataset("cub", dozen_birds).split("train")
    data = TrainData(dozen_birds, train.column("path").to_pylist(), train.column("label").to_pylist())
    weights = {}
    for compile in (False, True):
        seed_everything(0)
        model = build_model("resnet18", 12, "none", 32)
        config = TrainConfig(arch="resnet18", weights="none", image_size=32, batch_size=8, workers=0, epochs=1, compile=compile)
        model = train_classifier(model, data, config, setup_runtime("cpu"), tmp_path / f"step-{compile}",
                                 options=LoopOptions(progress=False, max_steps=1))
        weights[compile] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for name, value in weights[False].items():
        torch.testing.assert_close(weights[True][name], value, rtol=0, atol=1e-5, msg=name)

    checkpoint = eager_birds.parent / "bird.work" / "classifier.pt"
    status, _, err = run_cli("build-splits", "bird", "--root", dozen_birds, "--out", tmp_path / "scored", "--num-id", "8",
                             "--checkpoint", checkpoint, *TINY, "--compile", capsys=capsys)
    assert status == 0 and "running eagerly" not in err, err
    with np.load(tmp_path / "scored" / "bird" / "predictions.npz") as ours, np.load(eager_birds / "predictions.npz") as eager:
        np.testing.assert_allclose(ours["logits"], eager["logits"], rtol=0, atol=1e-4)
    ranking = [line.split(",")[:4] for line in (tmp_path / "scored" / "bird" / "ranking.csv").read_text().splitlines()]
    assert ranking == [line.split(",")[:4] for line in (eager_birds / "ranking.csv").read_text().splitlines()]

    status, _, err = run_cli("build-splits", "bird", "--root", dozen_birds, "--out", tmp_path / "trained", "--num-id", "8",
                             "--epochs", "1", *TINY, "--compile", capsys=capsys)
    assert status == 0 and "running eagerly" not in err, err
    timings = json.loads((tmp_path / "trained" / "bird.work" / "timings.json").read_text())
    assert timings["compile"] is True and timings["compile_unavailable"] is None
    assert json.loads((tmp_path / "trained" / "bird" / "manifest.json").read_text())["predictions"]["source"]["compile"] is True


def test_train_compile_is_recorded_and_falls_back_to_eager(bird_benchmark, dozen_birds, tmp_path, capsys, monkeypatch):
    def no_compiler(*args, **kwargs):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

    monkeypatch.setattr(torch, "compile", no_compiler)
    monkeypatch.setattr(runtime, "_COMPILE_STATE", {})
    monkeypatch.setattr(runtime, "_WARNED", set())
    status, _, err = run_cli("train", "--method", "standard", "--manifest", bird_benchmark["base"] / "out" / "bird",
                             "--root", dozen_birds, "--out", tmp_path / "t", "--max-steps", "1", *TINY, "--compile",
                             capsys=capsys)
    assert status == 0, err
    assert [line for line in err.splitlines() if "--compile" in line] == [
        "warning: --compile: torch.compile is not available here (RuntimeError: InvalidCxxCompiler: No working C++ "
        "compiler found); running eagerly"]
    payload = torch.load(tmp_path / "t" / "classifier.pt", map_location="cpu", weights_only=True)
    assert payload["training"]["compile"] is True
