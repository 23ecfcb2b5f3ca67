"""``build-splits``: rank a dataset's classes with a classifier and write the benchmark's manifest.

Predictions on the official test split (the val split for datasets without a test split, e.g.
Tsinghua Dogs; the train and val splits under Flower's paper protocol, which trains on the
test split, see paper.py) come from a predictions file, a trained checkpoint, or a classifier trained
here on the official training images of all classes. The classes are ranked as in Appendix A;
the top K are in-distribution (ID labels 0..K-1 in class-index order), the rest are the holdout
OOD classes (label -1). The official val split, where it exists and is not trained on, becomes
``id_val``. With several rankings (``seeds`` > 1, several archs, predictions files or checkpoints)
the classes are ranked by their mean S(c) and ``stability.json`` reports how much the rankings
agree (:mod:`fgood_bench.ranking.stability`).
"""

from __future__ import annotations

import csv
import io
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
import torchvision

from fgood_bench import __version__
from fgood_bench.datasets import DatasetIndex, get_adapter, load_index
from fgood_bench.datasets.base import missing_files
from fgood_bench.errors import FgoodError
from fgood_bench.manifests.files import (
    class_names_in_file, npz_bytes, sha256_bytes, sha256_file, sha256_files, split_file_bytes,
)
from fgood_bench.manifests.manifest import SCHEMA_VERSION, dataset_description
from fgood_bench.outputs import (
    StagedFolder, clear_outputs, is_inside, json_bytes, output_folder, output_name, preflight, refuse_inside_dataset,
    run_folder,
)
from fgood_bench.paper import get_benchmark
from fgood_bench.ranking.scores import ClassScores, class_scores
from fgood_bench.ranking.stability import (
    consensus_scores, stability_figures, stability_report, stability_summary,
)
from fgood_bench.tools.loop import LoopOptions, TrainConfig, TrainData, predict_logits, train_classifier
from fgood_bench.tools.runtime import PhaseTimes, Runtime, compile_unavailable, seed_everything, setup_runtime
from fgood_bench.tools.figures import FigureFormat
from fgood_bench.tools.models import build_model, load_checked_classifier, save_classifier

WORK_FILES = ("checkpoint.pt", "classifier.pt", "timings.json")  # what the training of build-splits writes
RANKING_SCORE = "accuracy - mean prediction entropy (nats), on the classifier's predictions for the evaluation split"


@dataclass
class BuildRequest:
    """What to build. Either ``benchmark`` (a preset) or ``dataset`` + ``num_id``."""

    root: Path
    out: Path
    benchmark: str | None = None
    dataset: str | None = None
    name: str | None = None
    num_id: int | None = None
    dataset_options: dict = field(default_factory=dict)
    predictions: Path | list[Path] | None = None  # several: one ranking each, ranked by the mean S(c)
    checkpoint: Path | list[Path] | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    seeds: int = 1  # rankings trained per architecture, seeds train.seed, train.seed + 1, ...
    archs: list[str] | None = None  # architectures to train rankings with (default: [train.arch])
    epochs: int | None = None  # None: the benchmark's epochs (Appendix D.1), else train.epochs
    resume: bool = False
    work_dir: Path | None = None
    hash_images: bool = False  # record every image's sha256 in the split files
    overwrite: bool = False  # replace an earlier OUT/NAME (and restart its training)
    progress: bool = True
    # Given instead of ranked (the INet-A/B benchmarks): files listing the ID classes and, optionally,
    # the only classes whose images form ood_test (a `wnid` column of a TSV, or one class name a line).
    id_classes: Path | None = None
    ood_classes: Path | None = None
    split_protocol: str | None = None  # a benchmark's split roles (flower: paper or official); None: its default
    figures: FigureFormat | None = None  # stability.png's formats and dpi (None: PNG at 120 dpi)


@dataclass(frozen=True)
class Plan:
    name: str
    dataset: str
    num_id: int
    train_splits: tuple[str, ...]
    train: TrainConfig
    eval_splits: tuple[str, ...] | None = None  # None: test, or val where the dataset has no test split
    protocol: dict | None = None  # the split roles' name and source, recorded in the manifest


def make_plan(request: BuildRequest) -> Plan:
    if request.predictions and request.checkpoint:
        raise FgoodError("give either --predictions or --checkpoint, not both")
    if (request.predictions or request.checkpoint) and (request.seeds > 1 or len(request.archs or []) > 1):
        raise FgoodError("--seeds and several --arch train the rankings; they cannot be combined with --predictions or --checkpoint")
    if request.name is not None:  # OUT/NAME: one plain folder name, never a path (docs/outputs.md)
        output_name(request.name, "--name")
    train = TrainConfig(**asdict(request.train))
    if request.benchmark:
        preset = get_benchmark(request.benchmark)
        if request.dataset and request.dataset != preset.dataset:
            raise FgoodError(f"benchmark {preset.name} is built from {preset.dataset}, not {request.dataset}")
        train.epochs = preset.epochs if request.epochs is None else request.epochs
        num_id = preset.num_id if request.num_id is None else request.num_id
        name, protocol = preset.protocol(request.split_protocol)
        return Plan(request.name or preset.name, preset.dataset, num_id, protocol.train_splits, train,
                    protocol.eval_splits, {"name": name, "source": protocol.source})
    if request.split_protocol is not None:
        raise FgoodError("--split-protocol belongs to a benchmark preset (flower); a custom benchmark uses the official splits")
    if request.id_classes is not None:
        if not request.dataset or request.benchmark:
            raise FgoodError("--id-classes needs --dataset ID (and no benchmark preset): the classes are given, not ranked")
        return Plan(request.name or request.dataset, request.dataset, 0, ("train",), train)
    if not request.dataset or request.num_id is None:
        raise FgoodError("name a benchmark (bird, dog, flower, car, aircraft) or give dataset and num_id (--dataset ID --num-id K)")
    get_adapter(request.dataset)
    train.epochs = train.epochs if request.epochs is None else request.epochs
    return Plan(request.name or request.dataset, request.dataset, request.num_id, ("train",), train)


def build_splits(request: BuildRequest) -> Path | None:
    """Build the benchmark; returns the manifest's path (None on non-zero ``torchrun`` ranks)."""
    plan = make_plan(request)
    target = Path(request.out) / plan.name
    preflight(target, "benchmark", request.overwrite)  # refused before the dataset is read
    times = PhaseTimes()  # wall time of each phase, written to the work folder's timings.json (never the manifest)
    with times.phase("dataset_index"):
        index = load_index(plan.dataset, request.root, **request.dataset_options)
    refuse_inside_dataset(request.out, index.root)
    _check_work_dir(request, target, index.root)  # before any training writes there
    # OUT/NAME is claimed and locked for the whole build, training included: a second build into it is
    # refused at once, not after hours
    with output_folder(target, "benchmark", request.overwrite) as staged:
        if request.id_classes is not None:
            return _build_given(request, plan, index, staged)
        return _build_ranked(request, plan, index, staged, times)


def _build_ranked(request: BuildRequest, plan: Plan, index: DatasetIndex, staged: StagedFolder,
                  times: PhaseTimes | None = None) -> Path | None:
    times = times or PhaseTimes()
    indexing = time.perf_counter()
    if not 1 <= plan.num_id < index.num_classes:
        raise FgoodError(f"num_id (--num-id) {plan.num_id}: must be 1..{index.num_classes - 1} ({plan.dataset} has {index.num_classes} classes)")
    eval_split = evaluation_splits(plan)
    for split in (*plan.train_splits, *eval_split):
        if split not in index.splits:
            why = index.absent.get(split, "not an official split of this dataset")
            raise FgoodError(f"{index.root}: the {split} split is needed and absent ({why})")
    # every image the manifest will list, whatever gives the predictions (docs/build-splits.md, Errors)
    _check_images(index, list(dict.fromkeys([*plan.train_splits, *eval_split, *(["val"] if "val" in index.splits else [])])))
    evaluation = pa.concat_tables([index.split(s) for s in eval_split])
    eval_paths = evaluation.column("path").to_pylist()
    eval_labels = np.asarray(evaluation.column("label").to_numpy(), np.int64)
    times.add("dataset_checks", time.perf_counter() - indexing)

    predictions = _as_list(request.predictions)
    if predictions:
        runs = [(read_predictions(Path(p), eval_paths, index.num_classes), {"kind": "file", "sha256": sha256_file(Path(p))})
                for p in predictions]
        if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 writes
            return None
    else:
        runtime = setup_runtime(plan.train.device)
        runs = [_predict(request, plan, index, eval_split, runtime, checkpoint, config, work_dir, times)
                for checkpoint, config, work_dir in _ranking_runs(request, plan)]
        if not runtime.is_main:
            return None

    ranking = time.perf_counter()
    rankings = []
    for logits, _ in runs:
        if not np.isfinite(logits).all():
            row = int(np.flatnonzero(~np.isfinite(logits).all(axis=1))[0])
            raise FgoodError(f"the classifier's logits for {eval_paths[row]!r} are not finite (NaN or inf): it diverged")
        rankings.append(class_scores(logits, eval_labels, index.num_classes))
    scores = rankings[0] if len(rankings) == 1 else consensus_scores(rankings)
    empty = np.flatnonzero(scores.num_test == 0)
    if empty.size:
        raise FgoodError(f"class {index.classes[empty[0]]!r} has no image in the {'+'.join(eval_split)} split: it cannot be ranked")
    id_classes = scores.top(plan.num_id)
    ood_classes = [c for c in range(index.num_classes) if c not in set(id_classes)]
    if len(runs) == 1:
        logits, provenance = runs[0][0], {"predictions_source": runs[0][1]}
        stability = None
    else:  # every ranking's logits, stacked (rankings x images x classes)
        logits = np.stack([r[0] for r in runs])
        sources = [r[1] for r in runs]
        provenance = {"predictions_source": {"kind": "consensus", "num_rankings": len(runs), "rankings": sources}}
        stability = stability_report(rankings, index.classes, plan.num_id, sources)
    times.add("ranking", time.perf_counter() - ranking)
    writing = time.perf_counter()
    files = _render(plan, index, eval_split, id_classes, ood_classes, request.hash_images,
                    ranked=(scores, logits, eval_paths, eval_labels, provenance), stability=stability,
                    figures=request.figures)
    manifest = staged.write(files) / "manifest.json"
    times.add("writing", time.perf_counter() - writing)
    # one training: its work folder is claimed (run_folder), so the file is ours to write; several rankings
    # train in sub-folders, and the folder above them is not claimed
    if not predictions and not _as_list(request.checkpoint) and len(runs) == 1:
        _write_timings(request, plan, index, eval_paths, times, runtime, len(runs))
    return manifest


def _write_timings(request: BuildRequest, plan: Plan, index: DatasetIndex, eval_paths: list[str], times: PhaseTimes,
                   runtime: Runtime, rankings: int) -> None:
    """``timings.json`` in the work folder of a build that trained: each phase's wall time in seconds (not in
    the manifest, which stays byte-identical from run to run). The phases, in the order they ran: dataset_index
    (reading the lists), dataset_checks (checking the images), model_setup, training_setup (loader, optimiser, compile wrapper),
    training_loader_start (each epoch's wait for the loader's first batch), training_data_wait (waits for decoded
    batches after it), training_first_step (the run's first step: compiling, cuDNN autotuning), training_compute,
    checkpointing, inference_setup, inference_loader_start, inference_data_wait, inference_first_batch,
    inference_compute, ranking, writing (rendering and writing the benchmark's files)."""
    from fgood_bench.outputs import atomic_write_bytes

    work = Path(request.work_dir or Path(request.out) / f"{plan.name}.work")
    train_images = sum(index.split(s).num_rows for s in plan.train_splits)
    record = {
        **times.record(),
        "rankings": rankings, "epochs": plan.train.epochs, "batch_size": plan.train.batch_size,
        "image_size": plan.train.image_size, "train_images": train_images, "eval_images": len(eval_paths),
        "processes": runtime.world, "device": str(runtime.device),
        "device_name": torch.cuda.get_device_name(runtime.device) if runtime.cuda else None,
        "compile": plan.train.compile,  # and why it ran eagerly instead, where it did
        "compile_unavailable": compile_unavailable(runtime.device) if plan.train.compile else None,
        "torch": torch.__version__,
    }
    try:
        atomic_write_bytes(work / "timings.json", json_bytes(record))
    except OSError as err:  # timings are a by-product: the benchmark is written
        print(f"warning: {work / 'timings.json'}: not written ({err.strerror or err})", file=sys.stderr)


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _check_work_dir(request: BuildRequest, target: Path, dataset_root: Path) -> None:
    """``--work-dir`` follows the rules of ``--out``: never inside the dataset being read, and never
    inside (or around) OUT/NAME, which is replaced whole when the build ends."""
    if request.work_dir is None:
        return
    refuse_inside_dataset(request.work_dir, dataset_root, "--work-dir")
    if is_inside(request.work_dir, target) or is_inside(target, request.work_dir):
        raise FgoodError(f"--work-dir {request.work_dir}: overlaps the benchmark's output {target}, which is replaced "
                         "whole when the build ends; choose a folder outside it (default OUT/NAME.work)")


def _ranking_runs(request: BuildRequest, plan: Plan) -> list[tuple[Path | None, TrainConfig, Path]]:
    """(checkpoint, settings, work folder) of every ranking classifier: the checkpoints given, or
    ``seeds`` trainings per architecture, each in its own work folder when there are several."""
    base = Path(request.work_dir or Path(request.out) / f"{plan.name}.work")
    checkpoints = _as_list(request.checkpoint)
    if checkpoints:
        return [(Path(c), TrainConfig(**asdict(plan.train)), base) for c in checkpoints]
    runs = []
    for arch in dict.fromkeys(request.archs or [plan.train.arch]):  # an arch named twice trains once
        for k in range(request.seeds):
            config = TrainConfig(**{**asdict(plan.train), "arch": arch, "seed": plan.train.seed + k})
            runs.append((None, config, base))
    if len(runs) > 1:
        # one folder per run; a timm architecture's '/' (timm/convnext_tiny) would nest folders
        runs = [(None, config, base / f"{config.arch.replace('/', '_')}-seed{config.seed}") for _, config, _ in runs]
    return runs
def evaluation_splits(plan: Plan) -> tuple[str, ...]:
    """The splits the ranking classifier is scored on: the plan's, else test (val where the
    adapter declares no test split)."""
    if plan.eval_splits:
        return plan.eval_splits
    return ("test",) if "test" in get_adapter(plan.dataset).splits else ("val",)  # declared, not merely present


def read_class_list(path: Path, classes: tuple[str, ...]) -> list[int]:
    """Class indices named in ``path`` (see :func:`class_names_in_file`), checked against ``classes``."""
    names = class_names_in_file(path)
    position = {name: i for i, name in enumerate(classes)}
    unknown = [n for n in names if n not in position]
    if unknown:
        raise FgoodError(f"{path}: {unknown[0]!r} is not a class of this dataset")
    if len(set(names)) != len(names) or not names:
        raise FgoodError(f"{path}: lists a class twice, or none")
    return sorted(position[n] for n in names)


def _build_given(request: BuildRequest, plan: Plan, index: DatasetIndex, staged: StagedFolder) -> Path:
    """A benchmark whose ID (and OOD) classes are given, like the paper's INet-A/B."""
    id_classes = read_class_list(Path(request.id_classes), index.classes)
    ood_classes = (read_class_list(Path(request.ood_classes), index.classes) if request.ood_classes
                   else [c for c in range(index.num_classes) if c not in set(id_classes)])
    overlap = set(id_classes) & set(ood_classes)
    if overlap:
        raise FgoodError(f"{request.ood_classes}: class {index.classes[min(overlap)]!r} is also an ID class")
    eval_split = evaluation_splits(plan)
    for split in ("train", *eval_split):
        if split not in index.splits:
            raise FgoodError(f"{index.root}: the {split} split is needed and absent ({index.absent.get(split, '')})")
    plan = Plan(plan.name, plan.dataset, len(id_classes), plan.train_splits, plan.train)
    _check_images(index, list(dict.fromkeys([*plan.train_splits, *eval_split, *(["val"] if "val" in index.splits else [])])))
    files = _render(plan, index, eval_split, id_classes, ood_classes, request.hash_images, ranked=None,
                    given={"id_classes_file_sha256": sha256_file(Path(request.id_classes)),
                           "ood_classes_file_sha256": sha256_file(Path(request.ood_classes)) if request.ood_classes else None})
    return staged.write(files) / "manifest.json"


MAX_PATH_CHARS = 4096  # PATH_MAX of Linux: no image path of a split is longer
KINDS = {"US": ("strings", 4 * MAX_PATH_CHARS), "fiu": ("real numbers", 8)}  # numpy dtype kinds -> (what, largest item)


def npz_arrays(path: Path, limits: dict[str, tuple[int, str]]) -> dict[str, np.ndarray]:
    """The arrays ``limits`` names (name -> (most elements, allowed numpy dtype kinds, a key of
    ``KINDS``)) of the ``.npz`` at ``path``, and no other. Each ``.npy`` header inside the zip is read
    first, and an array of another type or declared larger than allowed is refused before a byte of it
    is decompressed: a 2 MB file can declare (and inflate to) gigabytes."""
    from fgood_bench.inputs import open_npz

    arrays = {}
    # a regular file only (a FIFO never blocks), each member name once (a second logits.npy is refused)
    with open_npz(path, "predictions file") as archive:
        for name, (max_items, kinds) in limits.items():
            if f"{name}.npy" not in archive.namelist():
                raise FgoodError(f"{path}: no array {name!r} (expected {' and '.join(map(repr, limits))})")
            what, max_itemsize = KINDS[kinds]
            try:
                with archive.open(f"{name}.npy") as handle:
                    version = np.lib.format.read_magic(handle)
                    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                    shape, _, dtype = read_header(handle)
                    if dtype.hasobject:
                        raise FgoodError(f"{path}: array {name!r} holds Python objects (pickled data), which are not read")
                    if dtype.kind not in kinds:  # bool, complex, strings as logits
                        raise FgoodError(f"{path}: {name!r} must be {what}, got {dtype}")
                    if int(np.prod(shape, dtype=object)) > max_items or dtype.itemsize > max_itemsize:
                        raise FgoodError(f"{path}: array {name!r} is declared {shape} of {dtype}, more than the evaluation "
                                         f"split needs ({max_items:,} values of at most {max_itemsize} bytes): refused unread")
                with archive.open(f"{name}.npy") as handle:
                    arrays[name] = np.lib.format.read_array(handle, allow_pickle=False)
            except FgoodError:
                raise
            except Exception as err:  # a damaged zip member or .npy header: zipfile, numpy and zlib errors alike
                raise FgoodError(f"{path}: array {name!r} is not readable ({type(err).__name__}: {err})") from None
    return arrays


def read_predictions(path: Path, eval_paths: list[str], num_classes: int) -> np.ndarray:
    """Logits from ``path`` (arrays ``paths`` and ``logits``), reordered to ``eval_paths``."""
    rows = len(eval_paths)
    arrays = npz_arrays(path, {"paths": (rows, "US"), "logits": (rows * num_classes, "fiu")})
    paths, logits = arrays["paths"], arrays["logits"]
    if paths.ndim != 1:
        raise FgoodError(f"{path}: 'paths' must be one-dimensional, got shape {paths.shape}")
    paths = [str(p) for p in paths.tolist()]
    if logits.ndim != 2 or logits.shape[0] != len(paths):
        raise FgoodError(f"{path}: logits must be (number of paths, classes), got {logits.shape} for {len(paths)} paths")
    if logits.shape[1] != num_classes:
        raise FgoodError(f"{path}: logits have {logits.shape[1]} columns, the dataset has {num_classes} classes")
    if not np.isfinite(logits).all():
        row = int(np.flatnonzero(~np.isfinite(logits).all(axis=1))[0])
        raise FgoodError(f"{path}: logits of {paths[row]!r} are not finite (NaN or inf)")
    with np.errstate(over="ignore"):
        single = logits.astype(np.float32)
    if not np.isfinite(single).all():  # rankings are computed in float32
        row = int(np.flatnonzero(~np.isfinite(single).all(axis=1))[0])
        raise FgoodError(f"{path}: logits of {paths[row]!r} overflow float32 (beyond ±3.4e38): rescale them")
    position = {p: i for i, p in enumerate(paths)}
    if len(position) != len(paths):
        duplicate = next(p for i, p in enumerate(paths) if position[p] != i)
        raise FgoodError(f"{path}: image {duplicate!r} appears twice")
    expected = set(eval_paths)
    unknown = [p for p in paths if p not in expected]
    if unknown:
        raise FgoodError(f"{path}: {unknown[0]!r} is not an image of the evaluation split ({len(unknown)} such paths)")
    absent = [p for p in eval_paths if p not in position]
    if absent:
        raise FgoodError(f"{path}: no logits for {absent[0]!r} ({len(absent)} images of the evaluation split lack them)")
    return np.asarray(logits[[position[p] for p in eval_paths]], np.float32)


def _check_images(index: DatasetIndex, splits: list[str]) -> None:
    """Every image of ``splits`` is on disk, inside the dataset root."""
    for split in splits:
        paths = index.split(split).column("path").to_pylist()
        missing = missing_files(index.root, paths)
        if missing:
            raise FgoodError(
                f"{index.root / missing[0]}: image listed in the {split} split is missing ({len(missing)} in all; "
                f"see fgood-bench inspect {index.dataset})"
            )


def _predict(request: BuildRequest, plan: Plan, index: DatasetIndex, eval_split: tuple[str, ...], runtime: Runtime,
             checkpoint: Path | None, config: TrainConfig, work_dir: Path, times: PhaseTimes | None = None):
    times = times or PhaseTimes()
    setup = time.perf_counter()
    eval_paths = pa.concat_tables([index.split(s) for s in eval_split]).column("path").to_pylist()
    if checkpoint:
        model, payload, _ = load_checked_classifier(checkpoint, list(index.classes), f"{index.dataset}'s (class lists differ)",
                                                    config.arch, config.image_size, strict_arch=False)
        config.arch = payload.get("arch", config.arch)
        source = {"kind": "checkpoint", "sha256": sha256_file(Path(checkpoint)), "arch": config.arch,
                  "image_size": config.image_size}
    else:
        train = pa.concat_tables([index.split(s) for s in plan.train_splits])
        seed_everything(config.seed)  # the new head's initialisation
        model = build_model(config.arch, index.num_classes, config.weights, config.image_size)
        times.add("model_setup", time.perf_counter() - setup)
        with run_folder(work_dir, "build-splits training", reuse=request.resume or request.overwrite, owned=WORK_FILES,
                        hint="pass --resume to continue its training, or --restart to start over"):
            if request.overwrite and not request.resume and runtime.is_main:
                clear_outputs(work_dir, WORK_FILES)
            data = TrainData(index.root, train.column("path").to_pylist(), train.column("label").to_pylist())
            model = train_classifier(model, data, config, runtime, work_dir,
                                     options=LoopOptions(resume=request.resume, progress=request.progress, times=times))
            if runtime.is_main:
                save_classifier(work_dir / "classifier.pt", model, config.arch, list(index.classes),
                                {"image_size": config.image_size, "resize_mode": config.resize_mode})
        settings = config.record()
        source = {"kind": "trained", **settings, **weights_record(config.weights),
                  "precision": _precision(config.amp, runtime.cuda),
                  "torch": torch.__version__.split("+")[0], "torchvision": torchvision.__version__.split("+")[0]}
        if config.arch.startswith("timm/"):  # the model's code and its weights' adaptation come from timm
            import timm

            source["timm"] = timm.__version__
    logits = predict_logits(model, index.root, eval_paths, config, runtime, progress=request.progress, times=times)
    return logits, source


def weights_record(weights: str | None) -> dict:
    """``--weights`` as the manifest records it: a torchvision weights name (``IMAGENET1K_V1``) or none as
    given; a local file (which :func:`build_model` loads, as here) by its name and sha256, not its path,
    which would tie the manifest to one machine and say nothing of the file's content."""
    path = Path(weights).expanduser() if weights not in (None, "none") else None
    if path is not None and path.is_file():
        return {"weights": path.name, "weights_sha256": sha256_file(path)}
    return {"weights": weights}


def _render(plan: Plan, index: DatasetIndex, eval_split: tuple[str, ...], id_classes: list[int], ood_classes: list[int],
            hash_images: bool, ranked: tuple | None, given: dict | None = None,
            stability: dict | None = None, figures: FigureFormat | None = None) -> dict[str, bytes]:
    """The files of a benchmark: split files, and for a ranked one the ranking and predictions."""
    new_label = {c: i for i, c in enumerate(id_classes)}
    ood = set(ood_classes)
    val_for_id = "val" in index.splits and "val" not in plan.train_splits and "val" not in eval_split

    def rows(splits, keep_id: bool):
        for split in splits:
            table = index.split(split)
            for path, label in zip(table.column("path").to_pylist(), table.column("label").to_pylist()):
                if (label in new_label) if keep_id else (label in ood):
                    yield path, new_label.get(label, -1), index.classes[label]

    split_rows = {"id_train": rows(plan.train_splits, True)}
    if val_for_id:
        split_rows["id_val"] = rows(["val"], True)
    split_rows["id_test"] = rows(eval_split, True)
    split_rows["ood_test"] = rows(eval_split, False)

    files: dict[str, bytes] = {}
    splits = {}
    for name, generated in split_rows.items():
        generated = list(generated)
        hashes = sha256_files(index.root, [path for path, _, _ in generated]) if hash_images else None
        content = split_file_bytes(generated, hashes)
        files[f"splits/{name}.txt"] = content
        splits[name] = {"file": f"splits/{name}.txt", "count": content.count(b"\n") - 1, "sha256": sha256_bytes(content)}
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "kind": "benchmark",
        "benchmark": plan.name,
        "dataset": dataset_description(index),
        "num_id": plan.num_id,
        "id_classes": [{"label": new_label[c], "index": c, "name": index.classes[c]} for c in id_classes],
        "ood_classes": [{"index": c, "name": index.classes[c]} for c in ood_classes],
        "selection": "ranked" if ranked is not None else "given",
        "image_sha256": hash_images,
        "train_splits": list(plan.train_splits),
        "eval_split": "+".join(eval_split),  # one name, or several joined with '+' (eval_splits lists them)
        "eval_splits": list(eval_split),
        **({"split_protocol": plan.protocol} if plan.protocol else {}),
        "splits": splits,
        "provenance": {
            "toolkit": f"fgood-bench {__version__}",
            "arguments": {"benchmark": plan.name, "dataset": index.dataset, "dataset_options": index.options,
                          "num_id": plan.num_id},
        },
    }
    if ranked is not None:
        scores, logits, eval_paths, eval_labels, provenance = ranked
        files["ranking.csv"] = _ranking_csv(index, scores, set(id_classes))
        files["predictions.npz"] = npz_bytes(paths=np.array(eval_paths), logits=logits, labels=eval_labels)
        manifest["ranking"] = {
            "score": RANKING_SCORE,
            "file": "ranking.csv",
            "sha256": sha256_bytes(files["ranking.csv"]),
            "classes": [
                {"rank": int(scores.rank[c]), "index": c, "name": index.classes[c], "num_test": int(scores.num_test[c]),
                 "accuracy": float(scores.accuracy[c]), "mean_entropy": float(scores.mean_entropy[c]),
                 "score": float(scores.score[c])}
                for c in scores.order.tolist()
            ],
        }
        manifest["predictions"] = {"file": "predictions.npz", "sha256": sha256_bytes(files["predictions.npz"]),
                                   "source": provenance["predictions_source"]}
        if stability is not None:
            files["stability.json"] = json_bytes(stability)
            files.update(stability_figures(stability, title=plan.name, figures=figures or FigureFormat()))
            manifest["provenance"]["stability"] = stability_summary(stability, sha256_bytes(files["stability.json"]))
    else:
        manifest["given"] = given
    files["manifest.json"] = json_bytes(manifest)
    return files


def _precision(amp: bool, cuda: bool) -> str:
    """The manifest's record of the ranking classifier's precision (on the CPU: "fp32", as ever)."""
    if not cuda:
        return "fp32"
    return ("bf16-autocast" if amp else "fp32") + " training, strict fp32 prediction (TF32 off)"


def _ranking_csv(index: DatasetIndex, scores: ClassScores, id_classes: set[int]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["rank", "index", "name", "role", "num_test", "accuracy", "mean_entropy", "score"])
    for c in scores.order.tolist():
        writer.writerow([int(scores.rank[c]), c, index.classes[c], "id" if c in id_classes else "ood",
                         int(scores.num_test[c]), repr(float(scores.accuracy[c])),
                         repr(float(scores.mean_entropy[c])), repr(float(scores.score[c]))])
    return buffer.getvalue().encode("utf-8")
