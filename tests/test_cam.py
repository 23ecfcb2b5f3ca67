"""Class activation maps (``fgood-bench cam``): the maps against a hand computation, the figure's
grid, the seeded choice of images, the command end to end and its errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_cli
from fgood_bench.errors import FgoodError
from fgood_bench.evaluation import cam
from fgood_bench.evaluation.forward import forward_outputs
from fgood_bench.manifests.files import sha256_file
from fgood_bench.manifests.manifest import Manifest

from fgood_bench.tools.settings import Requested, resolve_settings
from fgood_bench.tools.runtime import Runtime
from fgood_bench.tools.models import build_model, save_classifier


def last_feature_maps(model, inputs) -> np.ndarray:
    """The ResNet's layers called one by one (no hooks, no forward())."""
    with torch.no_grad():
        x = model.maxpool(model.relu(model.bn1(model.conv1(inputs))))
        return model.layer4(model.layer3(model.layer2(model.layer1(x)))).double().numpy()


def by_hand(model, inputs):
    """The logits from the last feature maps' mean, and M_c = sum_k w[c, k] f_k for the predicted
    class c, summed channel by channel in float64."""
    features = last_feature_maps(model, inputs)
    weights, bias = model.fc.weight.detach().double().numpy(), model.fc.bias.detach().double().numpy()
    logits = features.mean(axis=(2, 3)) @ weights.T + bias
    predicted = logits.argmax(axis=1)
    maps = np.zeros((len(inputs), *features.shape[2:]))
    for b, c in enumerate(predicted):
        for k in range(features.shape[1]):
            maps[b] += weights[c, k] * features[b, k]
    return maps, logits, predicted


def test_cam_is_the_head_weighted_sum_of_the_last_feature_maps():
    torch.manual_seed(0)
    model = build_model("resnet18", 5).eval()
    inputs = torch.randn(3, 3, 96, 96)  # a 3 x 3 layer4 map
    maps, logits, predicted = by_hand(model, inputs)
    cams, model_logits = cam.class_activation_maps(model, inputs)
    assert cams.shape == (3, 3, 3)
    np.testing.assert_allclose(model_logits.numpy(), logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cams.numpy(), maps, rtol=1e-5, atol=1e-4)
    # Zhou et al.: the map's spatial mean plus the bias is the class's logit
    bias = model.fc.bias.detach().numpy()[predicted]
    np.testing.assert_allclose(cams.numpy().mean(axis=(1, 2)) + bias, logits[np.arange(3), predicted], rtol=1e-5, atol=1e-5)
    other = torch.tensor([(int(c) + 1) % 5 for c in predicted])  # another class than the predicted one
    other_cams, _ = cam.class_activation_maps(model, inputs, other)
    expected = np.einsum("bk,bkhw->bhw", model.fc.weight.detach().double().numpy()[other.numpy()],
                         last_feature_maps(model, inputs))
    np.testing.assert_allclose(other_cams.numpy(), expected, rtol=1e-5, atol=1e-4)


def test_saliency_is_normalised_then_upsampled_bilinearly():
    maps = cam.saliency(torch.tensor([[[5.0, 7.0], [9.0, 11.0]], [[2.0, 2.0], [2.0, 2.0]]]), (4, 4)).numpy()
    normalised = np.array([[0.0, 1 / 3], [2 / 3, 1.0]])
    # bilinear 2 -> 4 with half-pixel centres (align_corners=False): rows/columns v0, 3/4 v0 + 1/4 v1, 1/4 v0 + 3/4 v1, v1
    lift = np.array([[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
    np.testing.assert_allclose(maps[0], lift @ normalised @ lift.T, atol=1e-6)
    assert maps[0].min() == 0.0 and maps[0].max() == 1.0
    assert not maps[1].any()  # a constant map (a 1 x 1 feature map) shows nothing


def test_the_images_are_a_seeded_choice():
    first = cam.choose_images(100, 8, seed=3)
    assert first == cam.choose_images(100, 8, seed=3) and first == sorted(set(first)) and len(first) == 8
    assert first != cam.choose_images(100, 8, seed=4)
    assert cam.choose_images(8, 8, seed=0) == list(range(8))
    with pytest.raises(FgoodError, match="--num 9: the split has only 8 images"):
        cam.choose_images(8, 9, seed=0)


@pytest.fixture(scope="module")
def setting(dozen_birds, bird_benchmark, tmp_path_factory):
    """The bird benchmark (K=8; 32 id_test, 16 ood_test images) and two ResNet-18 checkpoints at
    image size 64 (2 x 2 feature maps), one 'standard' and one 'mixupoe'."""
    folder = tmp_path_factory.mktemp("cam")
    names = Manifest.load(bird_benchmark["base"] / "out" / "bird").id_class_names
    checkpoints = []
    for seed, method in ((0, "standard"), (1, "mixupoe")):
        torch.manual_seed(seed)
        path = folder / method / "classifier.pt"
        save_classifier(path, build_model("resnet18", 8), "resnet18", names, {"image_size": 64, "method": method})
        checkpoints.append(path)
    return {"manifest": bird_benchmark["base"] / "out" / "bird", "root": dozen_birds, "checkpoints": checkpoints,
            "names": names, "folder": folder}


def cam_args(setting, out, *extra):
    first, second = setting["checkpoints"]
    return ["cam", "--checkpoint", first, "--checkpoint", second, "--manifest", setting["manifest"], "--root", setting["root"],
            "--out", out, "--device", "cpu", *extra]


def test_figure_grid_and_record(setting):
    request = cam.CamRequest(checkpoints=setting["checkpoints"], manifest=setting["manifest"], root=setting["root"], out=None,
                             split="ood_test", num=3, seed=1)
    record, fig = cam.render_cams(request)
    assert len(fig.axes) == 3 * (1 + 2)
    grid = np.array(fig.axes).reshape(3, 3)
    assert [ax.get_title() for ax in grid[0]] == ["image (holdout)", "Standard", "MixupOE"]
    assert all(len(ax.get_images()) == 1 for row in grid for ax in row)  # an image, or the blended overlay (one image)
    overlay = grid[0, 1].get_images()[0].get_array()
    assert overlay.shape == (64, 64, 3) and not np.array_equal(overlay, grid[0, 0].get_images()[0].get_array())
    assert record["figure"] == {"rows": 3, "columns": 3, "files": ["cam.png", "cam.json"]}
    rows = Manifest.load(setting["manifest"]).split("ood_test")
    assert [image["path"] for image in record["images"]] == [rows.paths[i] for i in cam.choose_images(16, 3, 1)]
    for ax, model in zip(grid[1, 1:], record["models"]):
        prediction = model["predictions"][1]
        assert ax.get_xlabel() == f"{prediction['class']}\n{prediction['confidence']:.2f}"
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_cam_command_end_to_end(setting, tmp_path, capsys):
    status, out, err = run_cli(*cam_args(setting, tmp_path / "fig", "--split", "holdout", "--num", "4", "--seed", "2", "--pdf"),
                               capsys=capsys)
    assert status == 0, err
    folder = tmp_path / "fig"
    assert out.split() == [str(folder / name) for name in ("cam.png", "cam.pdf", "cam.json")]
    assert sorted(p.name for p in folder.iterdir()) == [".fgood-bench.json", "cam.json", "cam.pdf", "cam.png"]
    record = json.loads((folder / "cam.json").read_text())
    assert record["split"] == "ood_test" and record["seed"] == 2 and record["figure"]["rows"] == 4
    assert [m["label"] for m in record["models"]] == ["Standard", "MixupOE"]
    assert [m["checkpoint_sha256"] for m in record["models"]] == [sha256_file(c) for c in setting["checkpoints"]]
    assert record["models"][0]["geometry"] == {"crop": 64, "resize": 73, "mode": "square"}  # the checkpoint's
    # the predictions are those of evaluate's forward pass over the same images (same transform)
    paths = [image["path"] for image in record["images"]]
    root = Manifest.load(setting["manifest"]).dataset_root(setting["root"])
    for model_record, checkpoint in zip(record["models"], setting["checkpoints"]):
        model = build_model("resnet18", 8)
        model.load_state_dict(torch.load(checkpoint, weights_only=True)["state_dict"])
        logits = forward_outputs(model, root, paths, Runtime(0, 1, torch.device("cpu")), set(),
                                 resolve_settings(Requested(image_size=64)), batch_size=8, workers=0, progress=False)["logits"]
        probabilities = torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()
        assert [p["label"] for p in model_record["predictions"]] == probabilities.argmax(axis=1).tolist()
        np.testing.assert_allclose([p["confidence"] for p in model_record["predictions"]], probabilities.max(axis=1), atol=1e-6)
        assert [p["class"] for p in model_record["predictions"]] == [setting["names"][i] for i in probabilities.argmax(axis=1)]
    with Image.open(folder / "cam.png") as png:  # 4 rows of (panel + caption), 3 columns of panels
        assert png.size == (round(3 * cam.PANEL_INCHES * cam.DPI),
                            round((4 * (cam.PANEL_INCHES + cam.CAPTION_INCHES) + 0.3) * cam.DPI))
    assert (folder / "cam.pdf").read_bytes()[:5] == b"%PDF-"

    # deterministic: the same command gives the same bytes
    assert run_cli(*cam_args(setting, tmp_path / "again", "--split", "holdout", "--num", "4", "--seed", "2", "--pdf"),
                   capsys=capsys)[0] == 0
    for name in ("cam.png", "cam.pdf", "cam.json"):
        assert (tmp_path / "again" / name).read_bytes() == (folder / name).read_bytes(), name

    # an earlier figure is replaced only with --overwrite; a PDF of it does not stay
    status, _, err = run_cli(*cam_args(setting, folder, "--num", "2"), capsys=capsys)
    assert status == 2 and "holds an earlier cam output; pass --overwrite" in err
    status, _, err = run_cli(*cam_args(setting, folder, "--num", "2", "--label", "A", "--label", "B", "--overwrite"),
                             capsys=capsys)
    assert status == 0, err
    assert sorted(p.name for p in folder.iterdir()) == [".fgood-bench.json", "cam.json", "cam.png"]
    record = json.loads((folder / "cam.json").read_text())
    assert record["split"] == "id_test" and [m["label"] for m in record["models"]] == ["A", "B"]


def test_default_labels_tell_apart_checkpoints_of_one_method(tmp_path):
    checkpoints = [tmp_path / "standard-seed0" / "classifier.pt", tmp_path / "standard-seed1" / "classifier.pt",
                   tmp_path / "mine" / "classifier.pt"]
    payloads = [{"method": "standard"}, {"method": "standard"}, {}]
    assert cam.model_labels(checkpoints, payloads, []) == ["Standard, standard-seed0", "Standard, standard-seed1", "mine"]


def test_bad_inputs(setting, tmp_path, capsys):
    def error(*extra, args=None):
        status, _, err = run_cli(*(args or cam_args(setting, tmp_path / "out", *extra)), capsys=capsys)
        assert status == 2 and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "out").exists()  # nothing written
        return err

    assert "--split 'test': " in error("--split", "test") and "has the splits id_train, id_test, ood_test" in error("--split", "test")
    assert "--num 17: bird ood_test has only 16 images" in error("--split", "ood_test", "--num", "17")
    assert "--label given 1 times for 2 --checkpoint" in error("--label", "A")
    folder = setting["folder"]
    save_classifier(folder / "twelve.pt", build_model("resnet18", 12), "resnet18", [str(i) for i in range(12)])
    save_classifier(folder / "renamed.pt", build_model("resnet18", 8), "resnet18", [f"other {i}" for i in range(8)])
    save_classifier(folder / "mobile.pt", build_model("mobilenet_v3_small", 8), "mobilenet_v3_small", setting["names"])
    base = ["cam", "--manifest", setting["manifest"], "--root", setting["root"], "--out", tmp_path / "out"]
    assert "classifier has 12 outputs, the dataset has 8 classes" in error(args=[*base, "--checkpoint", folder / "twelve.pt"])
    assert "trained on other classes than the benchmark's ID classes" in error(args=[*base, "--checkpoint", folder / "renamed.pt"])
    err = error(args=[*base, "--checkpoint", folder / "mobile.pt"])
    assert "class activation maps need a torchvision ResNet or a timm CNN" in err and "not MobileNetV3" in err
    places = setting["manifest"].parent / "places365"
    args = cam_args(setting, tmp_path / "out")
    args[args.index(setting["manifest"])] = places
    assert "an ood_set manifest; cam needs a benchmark" in error(args=args)


def test_overlay_blends_as_zhou_et_al():
    """The CAM panels blend the jet-coloured map over the image as Zhou et al.'s code: heat * 0.3 + image * 0.5."""
    from matplotlib import colormaps

    image = np.full((2, 2, 3), 200, np.uint8)
    heat = np.array([[0.0, 1.0], [0.5, 0.25]])
    overlay = cam.cam_overlay(image, heat)
    expected = np.clip(0.3 * colormaps["jet"](heat)[..., :3] * 255 + 0.5 * 200, 0, 255).round()
    assert overlay.dtype == np.uint8 and np.array_equal(overlay, expected.astype(np.uint8))
