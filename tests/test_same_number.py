"""One source of truth: the CLI, the Python API and a model in memory resolve the same settings and
give the same numbers (issue 22)."""

import json

import pytest
import torch

import fgood_bench
import fgood_bench.errors
from conftest import run_cli
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.tools.models import build_model, save_classifier
from fgood_bench.tools.settings import Requested, resolve_settings

SCORERS = ["msp", "odin", "energy", "maxlogit", "mahalanobis", "gram"]


@pytest.fixture(scope="module")
def trained_at_32(bird_benchmark, dozen_birds, tmp_path_factory):
    """A checkpoint recorded as trained at 32 px (as `train --image-size 32` writes it), and the CLI's
    evaluation of it without any size option."""
    base, places = bird_benchmark["base"], bird_benchmark["places"]
    runs = tmp_path_factory.mktemp("same-number")
    torch.manual_seed(2)
    names = Manifest.load(base / "out" / "bird").id_class_names
    save_classifier(runs / "ck.pt", build_model("resnet18", 8), "resnet18", names,
                    {"image_size": 32, "resize_mode": "square", "geometry": {"crop": 32, "resize": 37, "mode": "square"},
                     "method": "standard"})
    common = {"ood": ["holdout", f"places={base / 'out' / 'places365'}"], "ood_roots": {"places": places}}
    argv = ["evaluate", "--checkpoint", runs / "ck.pt", "--manifest", base / "out" / "bird", "--root", dozen_birds,
            "--ood", common["ood"][0], "--ood", common["ood"][1], "--ood-root", f"places={places}", "--workers", "0",
            "--scorers", ",".join(SCORERS), "--gram-orders", "2"]
    return {"runs": runs, "benchmark": base / "out" / "bird", "root": dozen_birds, "argv": argv, **common}


def cli_results(trained_at_32, out, *extra, capsys):
    status, _, err = run_cli(*trained_at_32["argv"], "--out", out, *extra, capsys=capsys)
    assert status == 0, err
    return json.loads((out / "results.json").read_text())


def test_evaluate_model_on_a_checkpoint_equals_the_cli_at_its_trained_size(trained_at_32, tmp_path, capsys):
    """No size argument anywhere: the checkpoint's 32 px geometry on every path, and every metric of
    every scorer exactly equal (the API used to score such a model at 448 px)."""
    cli = cli_results(trained_at_32, tmp_path / "cli", capsys=capsys)
    assert cli["settings"]["model"]["geometry"] == {"crop": 32, "resize": 37, "mode": "square", "source": "checkpoint"}
    kwargs = dict(scorers=SCORERS, ood=trained_at_32["ood"], ood_roots=trained_at_32["ood_roots"], workers=0, gram_orders=2)
    checkpoint = trained_at_32["runs"] / "ck.pt"
    by_path = fgood_bench.evaluate_model(checkpoint, trained_at_32["benchmark"], trained_at_32["root"], **kwargs)
    loaded = fgood_bench.evaluate_model(fgood_bench.load_model(checkpoint), trained_at_32["benchmark"],
                                        trained_at_32["root"], **kwargs)
    for results in (by_path, loaded):
        assert results["metrics"] == cli["metrics"]
        assert results["id_accuracy"] == cli["id_accuracy"]
        assert results["settings"]["model"] == cli["settings"]["model"]
        assert results["settings"]["resolved"] == cli["settings"]["resolved"]
        assert results["checkpoint_sha256"] == cli["checkpoint_sha256"]


def test_a_bare_module_takes_the_benchmark_recipe_geometry_and_says_so(trained_at_32):
    torch.manual_seed(2)
    results = fgood_bench.evaluate_model(build_model("resnet18", 8), trained_at_32["benchmark"], trained_at_32["root"],
                                         scorers=["msp"], workers=0)
    geometry = results["settings"]["model"]["geometry"]
    assert geometry == {"crop": 448, "resize": 512, "mode": "square",
                        "source": "the benchmark's recipe (fine-grained, Appendix D.1)"}

    class TimmLike(torch.nn.Module):  # a model carrying timm's pretrained_cfg
        pretrained_cfg = {"input_size": (3, 24, 24), "crop_pct": 0.75, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}

    settings = resolve_settings(model=TimmLike(), benchmark=("bird", "cub"))
    assert (settings.geometry.crop, settings.geometry.resize, settings.geometry.mode) == (24, 32, "shorter")
    assert settings.mean == (0.5, 0.5, 0.5) and settings.source("geometry") == "the model's pretrained config (timm)"
    inet = resolve_settings(benchmark=("inet-a", "imagenet"))
    assert (inet.geometry.crop, inet.geometry.resize, inet.geometry.mode) == (224, 256, "shorter")


@pytest.mark.parametrize("cli_extra, api_kwargs", [
    (["--metrics", "openood"], {"convention": "openood"}),
    (["--protocol", "paper"], {"protocol": "paper"}),
    (["--base-rate", "2", "--repeats", "3", "--metrics", "pytorch-ood"], {"base_rate": 2.0, "repeats": 3, "convention": "pytorch-ood"}),
])
def test_evaluate_scores_takes_the_cli_convention_and_protocol(trained_at_32, tmp_path, capsys, cli_extra, api_kwargs):
    cli = cli_results(trained_at_32, tmp_path / "cli", "--scorers", "maxlogit", *cli_extra, capsys=capsys)
    model = fgood_bench.load_model(trained_at_32["runs"] / "ck.pt").eval()
    results = fgood_bench.evaluate_scores(lambda x: model(x).max(dim=1).values, trained_at_32["benchmark"],
                                          trained_at_32["root"], name="maxlogit", ood=trained_at_32["ood"],
                                          ood_roots=trained_at_32["ood_roots"], image_size=32, workers=0, **api_kwargs)
    assert results["metric_convention"] == cli["metric_convention"] and results["base_rate"] == cli["base_rate"]
    assert results["protocol"] == cli["protocol"]
    assert results["metrics"] == cli["metrics"]


def test_every_source_is_recorded(trained_at_32, tmp_path, capsys):
    cli = cli_results(trained_at_32, tmp_path / "cli", "--scorers", "msp", "--protocol", "paper", capsys=capsys)
    resolved = cli["settings"]["resolved"]
    assert resolved["geometry"]["source"] == "checkpoint"
    assert resolved["base_rate"] == {"value": 5.0, "source": "protocol paper (Appendix C)"}
    assert resolved["odin_temperature"]["value"] == 1000.0 and "Appendix D.3" in resolved["odin_temperature"]["source"]
    assert resolved["decode"] == {"value": "full", "source": "default"}
    assert resolve_settings(Requested(decode="reduced")).record()["decode"] == {"value": "reduced", "source": "argument"}


def test_paper_protocol_reads_every_residual_block_and_lee_reads_five(trained_at_32, tmp_path, capsys):
    """Appendix D.2: Mahalanobis and Gram read each residual block's feature maps (8 in a ResNet-18) under
    --protocol paper; Lee et al.'s feature_list (stem + four stages) is a named choice."""
    from fgood_bench.evaluation.forward import feature_layers

    assert resolve_settings(Requested(protocol="paper")).feature_layers == "blocks"
    assert resolve_settings(Requested()).feature_layers == "stages"
    model = build_model("resnet18", 8)
    assert [len(feature_layers(model, which)) for which in ("stages", "blocks", "lee")] == [4, 8, 5]
    with pytest.raises(fgood_bench.errors.FgoodError, match="contradicts"):
        resolve_settings(Requested(protocol="paper", feature_layers="stages"))
    cli = cli_results(trained_at_32, tmp_path / "cli", "--scorers", "mahalanobis", "--protocol", "paper", capsys=capsys)
    assert cli["settings"]["scorers"]["mahalanobis"]["feature_layers"] == "blocks"
    assert cli["settings"]["resolved"]["feature_layers"]["source"].startswith("protocol paper")
    lee = cli_results(trained_at_32, tmp_path / "lee", "--scorers", "mahalanobis", "--feature-layers", "lee", capsys=capsys)
    assert lee["settings"]["scorers"]["mahalanobis"]["feature_layers"] == "lee"
