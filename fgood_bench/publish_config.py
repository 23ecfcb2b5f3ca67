"""The release configuration of ``fgood-bench publish`` (a YAML file), validated key by key.

Every problem is one :class:`FgoodError` line naming the file and the key. Relative paths are
read relative to the config file's folder; ``~`` is expanded.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fgood_bench.errors import FgoodError
from fgood_bench.inputs import cut, expand_user, read_yaml
from fgood_bench.paper import BENCHMARKS
from fgood_bench.tools.loop import TrainConfig

# The paper's seven benchmarks: five ranked fine-grained ones (Table 3) and INet-A / INet-B
# (Appendix H.1), whose ID classes are given by the lists in the repository's manifests/inet/.
DEFAULT_BENCHMARKS = ("bird", "dog", "flower", "car", "aircraft", "inet-a", "inet-b")
INET_LISTS = {"inet-a": ("inet_a.tsv", "inet_b.tsv"), "inet-b": ("inet_b.tsv", "inet_a.tsv")}
REPOSITORY_INET = Path(__file__).resolve().parents[1] / "manifests" / "inet"
DATASET_ROOTS = ("cub", "thudogs", "flowers102", "stanford_cars", "fgvc_aircraft", "places365", "dtd", "webvision",
                 "minc2500", "imagenet")
# Coarse OOD test sets (paper, section 3.2 and Appendix E): set name -> dataset adapter.
OOD_SETS = {"places365": "places365", "textures": "dtd"}
OUTLIER_SOURCES = ("webvision", "minc2500")  # WebVision: the paper's D_out^OE; MINC-2500: section 5.4
EXPORT_FORMATS = ("openood", "hf")
# build-splits' model options that a release may set (TrainConfig fields; the paper's recipe,
# Appendix D.1, where absent) and their YAML types
RANKING_TYPES = {"arch": str, "weights": str, "epochs": int, "lr": float, "batch_size": int, "image_size": int,
                 "seed": int, "device": str, "workers": int, "amp": bool,
                 "seeds": int}  # seeds: build-splits --seeds, several ranking classifiers and stability.json
TOP_KEYS = ("roots", "benchmarks", "ranking", "ood_sets", "outliers", "exports", "dataset_options", "hash_images",
            "verify_images", "audit")


@dataclass
class BenchmarkSpec:
    name: str
    dataset: str
    predictions: Path | None = None
    checkpoint: Path | None = None
    num_id: int | None = None
    id_classes: Path | None = None  # INet-A / INet-B
    ood_classes: Path | None = None


@dataclass
class ReleaseConfig:
    path: Path
    roots: dict[str, Path]
    benchmarks: list[BenchmarkSpec]
    train: TrainConfig
    epochs: int | None  # None: each benchmark's preset (Appendix D.1)
    ood_sets: dict[str, dict]  # name -> {"size": int | None, "seed": int}
    outliers: list[str]
    exports: list[str]
    dataset_options: dict[str, dict] = field(default_factory=dict)
    hash_images: bool = False
    verify_images: bool = False
    audit: bool = True  # the leakage audit of each benchmark (audit-leakage) before verify
    seeds: int = 1  # ranking classifiers trained per benchmark: > 1 writes stability.json (build-splits --seeds)

    def options(self, dataset: str) -> dict:
        return dict(self.dataset_options.get(dataset, {}))

    def fingerprint(self) -> str:
        """What a resumed release must share with the interrupted one: every setting, and the
        content of the predictions and checkpoints it was given."""
        from fgood_bench.manifests.files import sha256_file

        given = {str(p): sha256_file(p) for b in self.benchmarks for p in (b.predictions, b.checkpoint) if p}
        settings = {k: v for k, v in asdict(self).items() if k != "path"}
        return hashlib.sha256(json.dumps([settings, given], sort_keys=True, default=str).encode()).hexdigest()


def load_config(path: str | Path) -> ReleaseConfig:
    path = expand_user(path)
    # a regular file only (a FIFO never blocks); strict YAML: no key twice, at most 100 levels deep,
    # aliases expanding to at most 100,000 values; every error one line quoting at most ~80 characters
    document = read_yaml(path, "config file")
    return _Reader(path).read(document if document is not None else {})


class _Reader:
    """Turns the YAML document into a :class:`ReleaseConfig`, one error line per bad key."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, key: str, problem: str) -> FgoodError:
        return FgoodError(f"{self.path}: {key if len(key) <= 160 else cut(key, 160)}: {problem}")

    def mapping(self, value, key: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {type(value).__name__}")
        return value

    def known(self, mapping: dict, key: str, allowed) -> None:
        unknown = [k for k in mapping if k not in allowed]
        if unknown:
            name = unknown[0] if isinstance(unknown[0], str) and len(unknown[0]) <= 80 else cut(unknown[0])
            where = f"{key}.{name}" if key else str(name)
            raise self.fail(where, f"unknown key (expected one of {', '.join(allowed)})")

    def file(self, value, key: str, must_exist: bool = True) -> Path:
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"expected a path, got {cut(value)}")
        if len(value) > 4096 or "\x00" in value:
            raise self.fail(key, f"not a usable path ({cut(value)})")
        try:
            resolved = self.path.parent / expand_user(value)
        except FgoodError as err:  # ~nosuchuser/...
            raise self.fail(key, str(err)) from None
        if must_exist and not resolved.exists():
            raise self.fail(key, f"{resolved} does not exist")
        return resolved

    def names(self, value, key: str, allowed, default) -> list[str]:
        if value is None:
            return list(default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "expected a list of names")
        for name in value:
            if name not in allowed:
                raise self.fail(key, f"unknown {cut(name)} (choose from {', '.join(allowed)})")
        if len(set(value)) != len(value):
            raise self.fail(key, "lists a name twice")
        return list(value)

    def finite(self, value, key: str) -> None:
        """No NaN or infinity anywhere (``.nan``, ``.inf``): named by its key here, not at the release's
        last JSON write."""
        stack = [(value, key)]
        while stack:
            value, key = stack.pop()
            if isinstance(value, float) and not math.isfinite(value):
                raise self.fail(key or "(top level)", f"expected a finite number, got {cut(value)}")
            if isinstance(value, dict):
                stack.extend((v, f"{key}.{k}" if key else str(k)) for k, v in value.items())
            elif isinstance(value, list):
                stack.extend((v, f"{key}[{i}]") for i, v in enumerate(value))

    def read(self, document) -> ReleaseConfig:
        document = self.mapping(document, "(top level)")
        self.finite(document, "")
        self.known(document, "", TOP_KEYS)
        roots_given = self.mapping(document.get("roots"), "roots")
        self.known(roots_given, "roots", DATASET_ROOTS)
        roots = {name: self.file(value, f"roots.{name}", must_exist=False) for name, value in roots_given.items()}
        options = self.dataset_options(document.get("dataset_options"))
        benchmarks = self.benchmarks(document.get("benchmarks"))
        train, epochs, seeds = self.ranking(document.get("ranking"))
        ood_sets = self.ood_sets(document.get("ood_sets"))
        outliers = self.names(document.get("outliers"), "outliers", OUTLIER_SOURCES, OUTLIER_SOURCES)
        exports = self.names(document.get("exports"), "exports", EXPORT_FORMATS, EXPORT_FORMATS)
        flags = {}
        for key in ("hash_images", "verify_images", "audit"):
            flags[key] = document.get(key, key == "audit")  # the audit runs unless turned off
            if not isinstance(flags[key], bool):
                raise self.fail(key, "expected true or false")
        config = ReleaseConfig(self.path, roots, benchmarks, train, epochs, ood_sets, outliers, exports, options, **flags,
                               seeds=seeds)
        self.check_roots(config)
        return config

    def dataset_options(self, value) -> dict[str, dict]:
        from fgood_bench.datasets import get_adapter

        options = self.mapping(value, "dataset_options")
        self.known(options, "dataset_options", DATASET_ROOTS)
        for dataset, given in options.items():
            given = self.mapping(given, f"dataset_options.{dataset}")
            self.known(given, f"dataset_options.{dataset}", get_adapter(dataset).option_names or ("(none)",))
        return {dataset: dict(given or {}) for dataset, given in options.items()}

    def benchmarks(self, value) -> list[BenchmarkSpec]:
        if value is None or isinstance(value, list):
            value = {name: {} for name in self.names(value, "benchmarks", DEFAULT_BENCHMARKS, DEFAULT_BENCHMARKS)}
        value = self.mapping(value, "benchmarks")
        if not value:
            raise self.fail("benchmarks", "names no benchmark")
        specs = []
        for name, given in value.items():
            if name not in DEFAULT_BENCHMARKS:
                raise self.fail("benchmarks", f"unknown {cut(name)} (choose from {', '.join(DEFAULT_BENCHMARKS)})")
            key = f"benchmarks.{name}"
            given = self.mapping(given, key)
            if name in INET_LISTS:
                self.known(given, key, ("id_classes", "ood_classes"))
                id_default, ood_default = (str(REPOSITORY_INET / f) for f in INET_LISTS[name])
                spec = BenchmarkSpec(name, "imagenet",
                                     id_classes=self.file(given.get("id_classes", id_default), f"{key}.id_classes"),
                                     ood_classes=self.file(given.get("ood_classes", ood_default), f"{key}.ood_classes"))
            else:
                self.known(given, key, ("predictions", "checkpoint", "num_id"))
                if "predictions" in given and "checkpoint" in given:
                    raise self.fail(key, "give predictions or checkpoint, not both")
                num_id = given.get("num_id")
                if num_id is not None and (not isinstance(num_id, int) or isinstance(num_id, bool) or num_id < 1):
                    raise self.fail(f"{key}.num_id", "expected a positive integer")
                spec = BenchmarkSpec(
                    name, BENCHMARKS[name].dataset, num_id=num_id,
                    predictions=self.file(given["predictions"], f"{key}.predictions") if "predictions" in given else None,
                    checkpoint=self.file(given["checkpoint"], f"{key}.checkpoint") if "checkpoint" in given else None,
                )
            specs.append(spec)
        return specs

    def ranking(self, value) -> tuple[TrainConfig, int | None, int]:
        given = self.mapping(value, "ranking")
        self.known(given, "ranking", tuple(RANKING_TYPES))
        settings = {}
        for key, item in given.items():
            expected = RANKING_TYPES[key]
            if expected is float and type(item) is int:
                item = float(item)
            if key == "weights" and item is None:  # YAML null: no pretrained weights
                item = "none"
            if type(item) is not expected:
                raise self.fail(f"ranking.{key}", f"expected {expected.__name__}, got {cut(item)}")
            if expected is float and not math.isfinite(item):  # .nan, .inf: the release would fail at its last JSON write
                raise self.fail(f"ranking.{key}", f"expected a finite number, got {cut(item)}")
            if expected in (int, float) and key not in ("seed", "workers") and item <= 0:
                raise self.fail(f"ranking.{key}", f"must be positive, got {cut(item)}")
            if key == "workers" and item < 0:
                raise self.fail(f"ranking.{key}", f"must be 0 or more, got {cut(item)}")
            settings[key] = item
        epochs, seeds = settings.pop("epochs", None), settings.pop("seeds", 1)
        return TrainConfig(**settings), epochs, seeds

    def ood_sets(self, value) -> dict[str, dict]:
        if value is None:
            return {name: {"size": None, "seed": 0} for name in OOD_SETS}
        if isinstance(value, list):
            value = {name: {} for name in self.names(value, "ood_sets", tuple(OOD_SETS), ())}
        value = self.mapping(value, "ood_sets")
        sets = {}
        for name, given in value.items():
            if name not in OOD_SETS:
                raise self.fail("ood_sets", f"unknown {cut(name)} (choose from {', '.join(OOD_SETS)})")
            given = self.mapping(given, f"ood_sets.{name}")
            self.known(given, f"ood_sets.{name}", ("size", "seed"))
            size, seed = given.get("size"), given.get("seed", 0)
            if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
                raise self.fail(f"ood_sets.{name}.size", "expected a positive integer (or leave it out: all images)")
            if not isinstance(seed, int) or isinstance(seed, bool):
                raise self.fail(f"ood_sets.{name}.seed", "expected an integer")
            sets[name] = {"size": size, "seed": seed}
        return sets

    def check_roots(self, config: ReleaseConfig) -> None:
        """Every dataset the release reads has a root that its adapter recognises (checked now,
        before hours of work, not when its stage comes)."""
        from fgood_bench.datasets import get_adapter

        needs = {}
        for spec in config.benchmarks:
            needs.setdefault(spec.dataset, f"benchmark {spec.name}")
        for name in config.ood_sets:
            needs.setdefault(OOD_SETS[name], f"OOD set {name} (ood_sets)")
        for source in config.outliers:
            needs.setdefault(source, f"outlier set {source} (outliers)")
        for dataset, user in needs.items():
            if dataset not in config.roots:
                raise self.fail(f"roots.{dataset}", f"missing, needed by {user} (give its folder, or leave {user.split(' (')[0]} out)")
            try:
                get_adapter(dataset)(config.roots[dataset], **config.options(dataset))
            except FgoodError as err:
                raise self.fail(f"roots.{dataset}", str(err)) from None
