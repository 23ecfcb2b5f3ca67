"""``fgood-bench demo``: the whole pipeline, end to end, on data it generates, in minutes on a CPU.

1. A small fine-grained dataset in CUB-200-2011's native layout: 12 "species" of textured images
   that differ in subtle ways (some pairs differ less than others, so some classes are harder).
2. An outlier set in WebVision's native layout whose concepts are real ImageNet wnids, birds among
   them, and a coarse OOD set (an image folder of unrelated textures).
3. ``build-splits`` (a small classifier trained on all 12 classes ranks them; 8 become ID),
   ``build-ood-set``, ``filter-outliers`` (WordNet removes the bird concepts), ``train`` with
   ``standard`` and ``mixupoe``, ``evaluate`` against the holdout and coarse sets, ``report``.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from fgood_bench.datasets import synthetic
from fgood_bench.evaluation.evaluate import EvaluateRequest, evaluate
from fgood_bench.errors import FgoodError
from fgood_bench.evaluation.report import markdown_table
from fgood_bench.inputs import read_json
from fgood_bench.interrupt import forget, keep
from fgood_bench.manifests.ood_set import build_ood_set
from fgood_bench.outliers.filter import filter_outliers
from fgood_bench.outputs import atomic_write_bytes
from fgood_bench.ranking.build import BuildRequest, build_splits
from fgood_bench.tools.loop import TrainConfig
from fgood_bench.training.train import TrainRequest, train

DEMO_STATE = "demo-stages.json"  # the finished stages and what each returned: --resume skips them
DEMO_FOLDERS = ("data", "benchmarks", "outliers", "runs", "report.md", DEMO_STATE)  # what the demo writes in its workdir
DEMO_STAGES = 8
NUM_CLASSES, TRAIN_PER_CLASS, TEST_PER_CLASS, SIZE = 12, 24, 12, 48
DISCLAIMER = ("These numbers come from generated images and tiny models trained for a few epochs: they show that "
              "the pipeline runs, and mean nothing about the methods (an AUROC below 50% is no surprise here).")
# Outlier concepts: three birds (removed by the bird benchmark's WordNet filter) and five others.
OUTLIER_WNIDS = ["n01530575", "n01531178", "n01532829", "n01440764", "n02690373", "n03000684", "n04254680", "n07753592"]


def _jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def species_image(label: int, rng: np.random.Generator) -> np.ndarray:
    """A bird-like blob on a background; species differ in hue and stripe frequency, and pairs of
    neighbouring species differ only slightly (fine-grained)."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    hue = (label // 2) / (NUM_CLASSES // 2)  # pairs share a hue...
    stripes = 6 + 3 * (label % 2) + label * 0.15  # ...and differ in their stripes
    centre = rng.uniform(0.35, 0.65, 2)
    body = np.exp(-(((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / 0.05))
    pattern = 0.5 + 0.5 * np.sin(2 * np.pi * stripes * (x + y) + rng.uniform(0, 2 * np.pi))
    colour = np.array([np.cos(2 * np.pi * hue), np.cos(2 * np.pi * (hue + 1 / 3)), np.cos(2 * np.pi * (hue + 2 / 3))]) * 0.5 + 0.5
    background = rng.uniform(60, 140) + rng.normal(0, 12, (SIZE, SIZE, 1))
    image = background * (1 - body[..., None]) + 255 * body[..., None] * colour * (0.6 + 0.4 * pattern[..., None])
    return image + rng.normal(0, 18, image.shape)


def texture_image(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    waves = sum(np.sin(2 * np.pi * (rng.uniform(1, 9) * x + rng.uniform(1, 9) * y) + rng.uniform(0, 6)) for _ in range(3))
    return (128 + 40 * waves)[..., None] * rng.uniform(0.5, 1.2, 3) + rng.normal(0, 10, (SIZE, SIZE, 3))


def write_demo_data(workdir: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    folders = [f"{c:03d}.Demo_Species_{c}" for c in range(1, NUM_CLASSES + 1)]
    birds = workdir / "data" / "birds"
    rows = []
    for c, folder in enumerate(folders, 1):
        for k in range(TRAIN_PER_CLASS + TEST_PER_CLASS):
            relpath = f"{folder}/Demo_Species_{c}_{k:04d}.jpg"
            rows.append((relpath, c, int(k < TRAIN_PER_CLASS)))
            path = birds / "CUB_200_2011" / "images" / relpath
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_jpeg(species_image(c - 1, rng)))
    synthetic.write_text(birds / "CUB_200_2011" / "classes.txt", (f"{i} {f}" for i, f in enumerate(folders, 1)))
    synthetic.write_text(birds / "CUB_200_2011" / "images.txt", (f"{i} {p}" for i, (p, _, _) in enumerate(rows, 1)))
    synthetic.write_text(birds / "CUB_200_2011" / "image_class_labels.txt", (f"{i} {c}" for i, (_, c, _) in enumerate(rows, 1)))
    synthetic.write_text(birds / "CUB_200_2011" / "train_test_split.txt", (f"{i} {t}" for i, (_, _, t) in enumerate(rows, 1)))

    from fgood_bench.datasets.imagenet import imagenet_synsets

    synsets = list(imagenet_synsets().items())
    index = {wnid: i for i, (wnid, _) in enumerate(synsets)}
    webvision = workdir / "data" / "WebVision"
    train = {"google": [], "flickr": []}
    for q, wnid in enumerate(OUTLIER_WNIDS, 1):
        for k in range(12):
            source = "google" if k % 2 == 0 else "flickr"
            relpath = f"{source}/q{q:04d}/{wnid}_{k}.jpg"
            train[source].append((relpath, index[wnid]))
            path = webvision / relpath
            path.parent.mkdir(parents=True, exist_ok=True)
            pixels = species_image(q % NUM_CLASSES, rng) if wnid in OUTLIER_WNIDS[:3] else texture_image(1000 + q * 100 + k)
            path.write_bytes(_jpeg(pixels))
    synthetic.write_text(webvision / "info" / "synsets.txt", (f"{w} {n}" for w, n in synsets))
    synthetic.write_text(webvision / "info" / "queries_synsets_map.txt", (f"{q} {index[w] + 1}" for q, w in enumerate(OUTLIER_WNIDS, 1)))
    for source, lines in train.items():
        synthetic.write_text(webvision / "info" / f"train_filelist_{source}.txt", (f"{p} {label}" for p, label in lines))

    textures = workdir / "data" / "textures"
    for k in range(60):
        path = textures / f"texture_{k:03d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_jpeg(texture_image(k)))
    return {"birds": birds, "webvision": webvision, "textures": textures}


class _Stages:
    """The demo's stages, recorded in ``workdir/demo-stages.json`` as each one finishes: a demo run again
    with ``resume`` skips the finished ones (and an interrupted training continues from its checkpoint)."""

    def __init__(self, workdir: Path, epochs: int, resume: bool, log):
        self.workdir, self.path, self.log, self.started = workdir, workdir / DEMO_STATE, log, time.perf_counter()
        self.resume = resume
        self.state = {"epochs": epochs, "done": {}}
        if resume and self.path.is_file():
            state = read_json(self.path)
            if state.get("epochs") != epochs:
                raise FgoodError(f"{self.path}: the stopped demo ran with --epochs {state.get('epochs')}: resume it with "
                                 f"the same --epochs, or pass --overwrite to start over")
            self.state = state
        if self.state["done"]:
            self._keep()

    def _keep(self) -> None:
        forget()  # a finished stage's checkpoints are part of it
        done = list(self.state["done"])
        keep(self.workdir, f"the finished demo stages ({len(done)} of {DEMO_STAGES}: {', '.join(done)}) are kept in {self.workdir}")

    def run(self, name: str, text: str, work, record: bool = True):
        """``work()``'s result, or the recorded one of a finished stage (paths come back as paths; a stage
        run with ``record`` False is recorded as finished, and gives None when skipped)."""
        if name in self.state["done"]:
            self.log(f"[{time.perf_counter() - self.started:5.1f} s] {name}: finished in the stopped demo, kept")
            value = self.state["done"][name]
            return Path(value) if isinstance(value, str) else value
        self.log(f"[{time.perf_counter() - self.started:5.1f} s] {text}")
        value = work()
        self.state["done"][name] = (str(value) if isinstance(value, Path) else value) if record else None
        atomic_write_bytes(self.path, json.dumps(self.state, indent=1).encode())
        self._keep()
        return value


def run_demo(workdir: str | Path, progress: bool = True, epochs: int = 4, log=print, device: str = "cpu",
             resume: bool = False) -> dict:
    """Run every stage; returns where each artefact is. ``device`` 'cuda' runs the same pipeline on a GPU.
    ``resume``: continue a demo stopped in ``workdir`` (its finished stages are kept, see :class:`_Stages`)."""
    workdir = Path(workdir)
    started = time.perf_counter()
    tiny = dict(arch="resnet18", weights=None, image_size=32, batch_size=16, workers=0, device=device, seed=0)
    stages = _Stages(workdir, epochs, resume, log)

    def stage(text: str) -> None:
        log(f"[{time.perf_counter() - started:5.1f} s] {text}")

    stages.run("data", "writing a synthetic fine-grained dataset (CUB layout), a WebVision-layout outlier set, textures",
               lambda: write_demo_data(workdir), record=False)
    data = {"birds": workdir / "data" / "birds", "webvision": workdir / "data" / "WebVision", "textures": workdir / "data" / "textures"}
    benchmarks, runs = workdir / "benchmarks", workdir / "runs"
    manifest = stages.run("build-splits", "build-splits: training a classifier on all 12 classes, ranking them, keeping 8 as ID",
                          lambda: build_splits(BuildRequest(root=data["birds"], out=benchmarks, benchmark="bird", num_id=8,
                                                            train=TrainConfig(**tiny), epochs=epochs, progress=progress,
                                                            resume=resume, overwrite=resume)))
    textures = stages.run("build-ood-set", "build-ood-set: the coarse OOD set",
                          lambda: build_ood_set("imagefolder", data["textures"], benchmarks, name="textures", overwrite=resume))
    outliers = stages.run("filter-outliers", "filter-outliers: WordNet removes the bird concepts from the WebVision outliers",
                          lambda: filter_outliers("bird", "webvision", data["webvision"], workdir / "outliers",
                                                  progress=progress, overwrite=resume))
    standard = stages.run("train standard", "train standard", lambda: train(TrainRequest(
        "standard", manifest, data["birds"], runs / "standard", config=TrainConfig(**tiny), epochs=epochs, progress=progress,
        resume=resume)))
    mixupoe = stages.run("train mixupoe", "train mixupoe (fine-tuning the standard model with outliers)", lambda: train(TrainRequest(
        "mixupoe", manifest, data["birds"], runs / "mixupoe", outliers=outliers, outlier_root=data["webvision"],
        config=TrainConfig(**tiny), epochs=max(1, epochs // 2), init=standard, outlier_batch=16, progress=progress,
        resume=resume)))
    results = {}
    for name, checkpoint in (("standard", standard), ("mixupoe", mixupoe)):
        results[name] = stages.run(
            f"evaluate {name}", f"evaluate {name}: holdout and textures, MSP / Energy / MaxLogit / Mahalanobis",
            lambda: evaluate(EvaluateRequest(
                       checkpoint=checkpoint, manifest=manifest, root=data["birds"], out=runs / name / "evaluation",
                       ood=["holdout", f"textures={textures}"], ood_roots={"textures": data["textures"]},
                       scorers=["msp", "energy", "maxlogit", "mahalanobis"], batch_size=tiny["batch_size"],
                       device=tiny["device"], workers=tiny["workers"], plots=True, progress=progress, overwrite=resume)),
            record=False) or read_json(runs / name / "evaluation" / "results.json")
    report = workdir / "report.md"
    text = f"# fgood-bench demo\n\n**{DISCLAIMER}**\n\n" + "\n".join(f"## {name}\n\n{markdown_table(r)}" for name, r in results.items())
    atomic_write_bytes(report, text.encode())
    excluded = json.loads(outliers.read_text(encoding="utf-8"))["exclusion"]
    stage("done")
    artefacts = {
        "benchmark manifest": manifest, "class ranking": manifest.parent / "ranking.csv", "coarse OOD set": textures,
        "outlier set": outliers, "outlier report": outliers.parent / "report.md",
        "standard model": standard, "MixupOE model": mixupoe,
        "results (standard)": runs / "standard" / "evaluation" / "results.md",
        "results (MixupOE)": runs / "mixupoe" / "evaluation" / "results.md",
        "confidence plot": runs / "mixupoe" / "evaluation" / "confidence.png",
        "interpolation plot": runs / "mixupoe" / "evaluation" / "interpolation.png",
        "report": report,
    }
    log("")
    log(text)
    log(f"NOTE: {DISCLAIMER}")
    log(f"outliers: {excluded['images_removed']} bird images removed by WordNet, {excluded['images_kept']} kept")
    log("artefacts:")
    for name, path in artefacts.items():
        log(f"  {name:<20} {path}")
    return {"artefacts": artefacts, "results": results, "seconds": time.perf_counter() - started}
