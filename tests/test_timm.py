"""Any timm backbone (--arch timm/NAME): training, evaluation, weights files, refusals, the docs' example.

timm's own tiny test models (timm.list_models('test_*'): a ResNet, a ViT, a ConvNeXt of a few
hundred thousand parameters) at 32 px, with generated weights: no download.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from conftest import run_cli

from fgood_bench.cli import main
from fgood_bench.errors import FgoodError
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.tools.models import build_model, load_classifier, save_classifier
from fgood_bench.tools.settings import MODEL_CONFIG

ROOT = Path(__file__).parents[1]
CNN, VIT = "timm/test_resnet", "timm/test_vit"
TINY = ["--image-size", "32", "--batch-size", "8", "--workers", "0"]


@pytest.fixture(scope="module")
def bench(dozen_birds, bird_benchmark, tmp_path_factory):
    """The bird benchmark (K=8) and a timm/test_resnet trained on it for one epoch at 32 px through the CLI."""
    base = bird_benchmark["base"]
    folder = tmp_path_factory.mktemp("timm")
    assert main(["train", "--method", "standard", "--manifest", str(base / "out" / "bird"), "--root", str(dozen_birds),
                 "--out", str(folder / "standard"), "--epochs", "1", "--arch", CNN, "--weights", "none", *TINY]) == 0
    return {"manifest": base / "out" / "bird", "root": dozen_birds, "folder": folder,
            "checkpoint": folder / "standard" / "classifier.pt",
            "classes": Manifest.load(base / "out" / "bird").id_class_names}


def evaluate_args(bench, checkpoint, out, *extra):
    return ["evaluate", "--checkpoint", checkpoint, "--manifest", bench["manifest"], "--root", bench["root"], "--out", out,
            "--workers", "0", "--device", "cpu", *extra]


def test_train_evaluate_and_cam_a_timm_cnn(bench, tmp_path, capsys):
    model, payload = load_classifier(bench["checkpoint"], 8)
    assert payload["arch"] == CNN and type(model).__module__.startswith("timm.")
    # the model's own pretrained config, recorded with the architecture
    assert payload["pretrained_cfg"]["input_size"] == [3, 160, 160] and payload["pretrained_cfg"]["mean"] == [0.5] * 3
    status, _, err = run_cli(*evaluate_args(bench, bench["checkpoint"], tmp_path / "eval", "--scorers",
                                            "msp,energy,mahalanobis,gram", "--gram-orders", "2"), capsys=capsys)
    assert status == 0, err
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert set(results["metrics"]["holdout"]) == {"msp", "energy", "mahalanobis", "gram"}
    assert results["settings"]["resolved"]["geometry"] == {"value": {"crop": 32, "resize": 37, "mode": "square"},
                                                           "source": "checkpoint"}
    status, out, err = run_cli("cam", "--checkpoint", bench["checkpoint"], "--manifest", bench["manifest"], "--root",
                               bench["root"], "--out", tmp_path / "cam", "--num", "2", "--device", "cpu", capsys=capsys)
    assert status == 0, err
    assert (tmp_path / "cam" / "cam.png").is_file()


def test_build_splits_ranks_with_a_timm_model(dozen_birds, tmp_path, capsys):
    status, _, err = run_cli("build-splits", "bird", "--root", dozen_birds, "--out", tmp_path, "--num-id", "8", "--arch", CNN,
                             "--weights", "none", "--epochs", "1", *TINY, capsys=capsys)
    assert status == 0, err
    manifest = json.loads((tmp_path / "bird" / "manifest.json").read_text())
    assert manifest["predictions"]["source"]["arch"] == CNN
    assert manifest["predictions"]["source"]["timm"] == timm.__version__
    # beside another architecture each run has its own work folder: timm's '/' does not nest folders
    status, _, err = run_cli("build-splits", "bird", "--root", dozen_birds, "--out", tmp_path / "two", "--num-id", "8",
                             "--arch", CNN, "--arch", "resnet18", "--weights", "none", "--epochs", "1", *TINY, capsys=capsys)
    assert status == 0, err
    work = tmp_path / "two" / "bird.work"
    assert sorted(p.name for p in work.iterdir() if p.is_dir()) == sorted([CNN.replace("/", "_") + "-seed0", "resnet18-seed0"])


def test_a_vit_refuses_gram_and_cam_with_one_line_and_trains_rotation(bench, tmp_path, capsys):
    checkpoint = tmp_path / "vit" / "classifier.pt"
    save_classifier(checkpoint, build_model(VIT, 8, image_size=32), VIT, bench["classes"],
                    {"image_size": 32, "method": "standard"})
    status, _, err = run_cli(*evaluate_args(bench, checkpoint, tmp_path / "gram", "--scorers", "msp,gram"), capsys=capsys)
    assert status == 2
    assert err == "fgood-bench: error: --scorers gram needs spatial feature maps; timm/test_vit.r160_in1k gives tokens\n"
    status, _, err = run_cli(*evaluate_args(bench, checkpoint, tmp_path / "maha", "--scorers", "msp,mahalanobis"),
                             capsys=capsys)
    assert status == 0, err  # Mahalanobis on the blocks' tokens, averaged
    status, _, err = run_cli("cam", "--checkpoint", checkpoint, "--manifest", bench["manifest"], "--root", bench["root"],
                             "--out", tmp_path / "cam", "--device", "cpu", capsys=capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "class activation maps need a CNN whose head is global average pooling then one linear layer" in err
    assert err.strip().endswith("timm/test_vit.r160_in1k gives tokens")
    # a ConvNeXt's head normalises between its pooling and its classifier: refused, naming it
    from fgood_bench.evaluation.cam import cam_layers

    with pytest.raises(FgoodError, match=r"more than an average pooling before its classifier \(NormMlpClassifierHead\)"):
        cam_layers(build_model("timm/test_convnext", 8))
    # the rotation head reads the input of timm's classifier
    status, out, err = run_cli("train", "--method", "rotation", "--manifest", bench["manifest"], "--root", bench["root"],
                               "--out", tmp_path / "rot", "--max-steps", "1", "--arch", VIT, "--weights", "none", *TINY,
                               capsys=capsys)
    assert status == 0, err
    assert hasattr(load_classifier(out.strip(), 8)[0], "rotation_head")


def test_weights_from_a_safetensors_file_or_a_state_dict(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    source = build_model(CNN, 1000)  # as timm publishes it: ImageNet's 1000 classes
    save_file(source.state_dict(), tmp_path / "model.safetensors")
    torch.save(source.state_dict(), tmp_path / "model.pt")
    torch.save({"state_dict": source.state_dict()}, tmp_path / "wrapped.pth")
    expected = {k: v for k, v in source.state_dict().items() if not k.startswith("fc.")}
    for name in ("model.safetensors", "model.pt", "wrapped.pth"):
        model = build_model(CNN, 8, str(tmp_path / name))
        state = model.state_dict()
        assert state["fc.weight"].shape == (8, source.fc.in_features), name  # a new head of K classes
        assert all(torch.equal(state[k], v) for k, v in expected.items()), name
    torch.save(build_model(VIT, 1000).state_dict(), tmp_path / "vit.pt")
    with pytest.raises(FgoodError, match=r"vit.pt: not a state dict of timm/test_resnet \(\d+ of its weights are missing"):
        build_model(CNN, 8, str(tmp_path / "vit.pt"))
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(FgoodError, match="junk.safetensors: not a readable safetensors file"):
        build_model(CNN, 8, str(tmp_path / "junk.safetensors"))
    with pytest.raises(FgoodError, match="'IMAGENET1K_V1': for timm/test_resnet give a .safetensors or state-dict file"):
        build_model(CNN, 8, "IMAGENET1K_V1")
    with pytest.raises(FgoodError, match="'no_such_net' is not a timm model"):
        build_model("timm/no_such_net", 8)
    with pytest.raises(FgoodError, match=r"Invalid pretrained tag \(bogus\)"):
        build_model("timm/test_resnet.bogus", 8)
    # a ViT's position embeddings are resampled to the size it is built for
    vit = build_model(VIT, 8, str(tmp_path / "vit.pt"), image_size=32)
    assert vit(torch.zeros(1, 3, 32, 32)).shape == (1, 8)


def test_pretrained_weights_without_network_fail_with_one_line(bench, tmp_path, capsys, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # as with no network: no download, an empty cache
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    status, _, err = run_cli("train", "--method", "standard", "--manifest", bench["manifest"], "--root", bench["root"],
                             "--out", tmp_path / "run", "--arch", CNN, "--weights", "pretrained", *TINY, capsys=capsys)
    assert status == 2
    assert err == ("fgood-bench: error: --weights pretrained: could not download timm/test_resnet's weights "
                   "(LocalEntryNotFoundError); with no network, pass --weights FILE (the model's .safetensors or "
                   "state-dict file)\n")


def test_results_record_the_models_pretrained_config(bench, tmp_path, capsys):
    """A model with no fgood-bench record is scored at its timm pretrained config (test_resnet: 160 px,
    crop_pct 0.95, mean = std = 0.5), and results.json says so."""
    torch.manual_seed(0)
    model = build_model(CNN, 8)
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    status, _, err = run_cli(*evaluate_args(bench, tmp_path / "bare.pt", tmp_path / "eval", "--arch", CNN, "--scorers", "msp"),
                             capsys=capsys)
    assert status == 0, err
    resolved = json.loads((tmp_path / "eval" / "results.json").read_text())["settings"]["resolved"]
    import fgood_bench

    from_python = fgood_bench.evaluate_model(model, bench["manifest"], root=bench["root"], scorers=["msp"], workers=0,
                                             device="cpu")["settings"]["resolved"]
    for record in (resolved, from_python):
        assert record["geometry"] == {"value": {"crop": 160, "resize": 168, "mode": "shorter"}, "source": MODEL_CONFIG}
        assert record["mean"] == record["std"] == {"value": [0.5, 0.5, 0.5], "source": MODEL_CONFIG}


def test_help_imports_neither_torch_nor_timm():
    code = ("import sys\nfrom fgood_bench.cli import main\n"
            "for argv in (['--help'], ['train', '--help'], ['build-splits', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in ('torch', 'timm') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "timm/NAME" in done.stdout and done.stdout.splitlines()[-1] == "[]"


@pytest.mark.slow
def test_the_documented_example_runs(bench, tmp_path, capsys, monkeypatch):
    """docs/python-api.md's "Any timm backbone" commands and Python code, as written, with timm's tiny
    ResNet in for ConvNeXt-T, a generated weights file and 32 px."""
    from safetensors.torch import save_file

    section = (ROOT / "docs" / "python-api.md").read_text().split("## Any timm backbone")[1].split("\n## ")[0]
    save_file(build_model(CNN, 1000).state_dict(), tmp_path / "weights.safetensors")
    swaps = (("timm/convnext_tiny.fb_in22k", CNN), ("convnext_tiny.safetensors", tmp_path / "weights.safetensors"),
             ("benchmarks/bird", bench["manifest"]), ("~/data/CUB_200_2011", bench["root"]))
    monkeypatch.chdir(tmp_path)
    commands = section.split("```bash\n")[1].split("```")[0].replace("\\\n", " ").strip().splitlines()
    assert [shlex.split(c)[:2] for c in commands] == [["fgood-bench", "train"], ["fgood-bench", "evaluate"]]
    extra = {"train": ["--epochs", "1", *TINY], "evaluate": ["--workers", "0", "--device", "cpu"]}
    for old, _ in swaps:  # the section names each thing swapped below
        assert old in section, old
    for command in commands:
        for old, new in swaps:
            command = command.replace(old, str(new))
        words = shlex.split(command)
        status, _, err = run_cli(*words[1:], *extra[words[1]], capsys=capsys)
        assert status == 0, f"`{command}`: {err}"
    assert load_classifier(tmp_path / "runs/bird/convnext/classifier.pt", 8)[1]["arch"] == CNN
    assert (tmp_path / "runs/bird/convnext/eval/results.json").is_file()

    code = section.split("```python\n")[1].split("```")[0]
    for old, new in (*swaps, ('runs/bird/convnext"', 'runs/py"'),
                     ("settings={", 'epochs=1, settings={"image_size": 32, "batch_size": 8, "workers": 0, '),
                     ('"mahalanobis"])', '"mahalanobis"], workers=0, device="cpu")')):
        assert old in code, old
        code = code.replace(old, str(new))
    namespace = {}
    exec(compile(code, "docs/python-api.md", "exec"), namespace)
    assert namespace["checkpoint"] == Path("runs/py/classifier.pt")
    assert set(namespace["results"]["metrics"]["holdout"]) == {"msp", "energy", "mahalanobis"}


def test_models_the_feature_scorers_and_cam_cannot_read_are_refused_in_one_line():
    """timm models whose features or head do not fit: a feature_info name that is no module (HRNet, Twins), a
    stage giving a tuple (PiT, TNT), stages without a list of blocks (RegNet, VGG) under --feature-layers
    blocks, and a convolution between the pooling and the classifier (MobileNetV3) for CAM."""
    from torch import nn

    from fgood_bench.evaluation.cam import cam_layers
    from fgood_bench.evaluation.forward import _captured_tensor, feature_layers

    class TimmLike(nn.Module):
        pretrained_cfg = {"architecture": "made_up"}

        def __init__(self, names):
            super().__init__()
            self.stem, self.stage1, self.stage2 = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3), nn.Conv2d(4, 4, 3)
            self.feature_info = [{"module": n, "reduction": r} for n, r in zip(names, (2, 4, 8))]

    with pytest.raises(FgoodError, match=r"^feature-based scorers: timm/made_up's feature_info names 'stage1\.block'"):
        feature_layers(TimmLike(["stem", "stage1.block", "stage2"]))
    with pytest.raises(FgoodError, match=r"^--feature-layers blocks: timm/made_up's stages hold no list of blocks"):
        feature_layers(TimmLike(["stem", "stage1", "stage2"]), "blocks")
    assert len(feature_layers(TimmLike(["stem", "stage1", "stage2"]), "stages")) == 2
    with pytest.raises(FgoodError, match=r"gives a tuple, not one tensor"):
        _captured_tensor((torch.zeros(1), torch.zeros(1)), TimmLike(["stem", "stage1", "stage2"]))
    with pytest.raises(FgoodError, match=r"has a convolution \(conv_head\) between its pooling and its classifier$"):
        cam_layers(build_model("timm/mobilenetv3_small_050", 4))


def test_a_fixed_size_model_built_at_another_size_records_that_size():
    model = build_model(VIT, 8, image_size=32)
    assert tuple(model.pretrained_cfg["input_size"]) == (3, 32, 32)  # what settings and checkpoints read
