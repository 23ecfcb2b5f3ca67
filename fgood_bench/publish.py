"""``fgood-bench publish``: rebuild every benchmark of a release, ready to copy into ``manifests/``.

An orchestration of the existing commands, never a second implementation: ``build-splits``
(:func:`~fgood_bench.ranking.build.build_splits`), ``filter-outliers``, ``build-ood-set``,
``verify`` and ``export``. The work is a list of stages, each a small named function run in
order; ``OUT/.publish-state.json`` records each one's start and completion, with the sha256 of
every file it wrote and of every release file it read, so that a killed release continues with
``--resume``: a finished stage is skipped only while those files are still what it recorded (a
stage whose outputs or inputs were deleted or changed is redone, and said so on stderr), an
interrupted one is redone (every stage writes its folders atomically, so redoing one is safe).

Layout of OUT (that of ``manifests/``)::

    <benchmark>/                  build-splits: manifest.json, splits/, ranking.csv, predictions.npz
    ood/<set>/                    build-ood-set: places365, textures
    outliers/webvision-<benchmark>/, outliers/minc2500/     filter-outliers
    exports/openood/<benchmark>/, exports/hf/<benchmark>/   export (not for committing: hf embeds images)
    RELEASE.md, release.json      versions, hardware, wall time per stage, summaries, every file's sha256
    .publish-state.json, .work/   resume state, training checkpoints (not part of the release)

Everything but RELEASE.md and release.json is byte-identical when rebuilt from the same inputs
and predictions: the timings and the machine are recorded only there.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from fgood_bench import __version__
from fgood_bench.errors import FgoodError
from fgood_bench.inputs import read_json
from fgood_bench.interrupt import forget, keep
from fgood_bench.manifests.export import export_hf, export_openood, openood_export_gaps
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.manifests.ood_set import build_ood_set
from fgood_bench.manifests.verify import verify_manifest
from fgood_bench.outliers.filter import filter_outliers
from fgood_bench.outputs import atomic_write_bytes, json_bytes, run_folder, sha256_file
from fgood_bench.progress import Stages
from fgood_bench.publish_config import INET_LISTS, OOD_SETS, BenchmarkSpec, ReleaseConfig, load_config
from fgood_bench.ranking.build import BuildRequest, build_splits
from fgood_bench.ranking.scores import border_gap

STATE_FILE = ".publish-state.json"
WORK_FOLDER = ".work"
NOTES = ("RELEASE.md", "release.json")  # the only files that differ between two builds (timings, machine)


@dataclass
class Release:
    """What every stage needs: the config, the output folder, and whether to draw progress bars."""

    config: ReleaseConfig
    out: Path
    progress: bool = False

    def benchmark_folder(self, spec: BenchmarkSpec) -> Path:
        return self.out / spec.name

    def outlier_folder(self, name: str) -> Path:
        return self.out / "outliers" / name

    def manifests(self) -> list[tuple[Path, Path]]:
        """(manifest folder, dataset root) of everything the release built so far, in stage order."""
        found = []
        for spec in self.config.benchmarks:
            found.append((self.benchmark_folder(spec), self.config.roots[spec.dataset]))
        for name in self.config.ood_sets:
            found.append((self.out / "ood" / name, self.config.roots[OOD_SETS[name]]))
        for name, source in outlier_sets(self.config):
            found.append((self.outlier_folder(name), self.config.roots[source]))
        return found


def _nothing(release: Release) -> list[Path]:
    return []


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Release], str | None]  # returns a note for RELEASE.md, or None
    outputs: Callable[[Release], list[Path]] = _nothing  # the folders it writes
    reads: Callable[[Release], list[Path]] = _nothing  # the folders of earlier stages it reads


def outlier_sets(config: ReleaseConfig) -> list[tuple[str, str]]:
    """(set name, source dataset): WebVision filtered per benchmark, MINC-2500 once (materials:
    WordNet excludes nothing from it)."""
    sets = []
    if "webvision" in config.outliers:
        sets += [(f"webvision-{spec.name}", "webvision") for spec in config.benchmarks]
    if "minc2500" in config.outliers:
        sets.append(("minc2500", "minc2500"))
    return sets


# -- the stages ------------------------------------------------------------------------------


REDO = True  # a stage redone after an interruption replaces what it had written (publish owns OUT)


def splits_stage(spec: BenchmarkSpec) -> Stage:
    def run(release: Release) -> None:
        config = release.config
        request = BuildRequest(
            root=config.roots[spec.dataset], out=release.out, name=spec.name, dataset_options=config.options(spec.dataset),
            train=config.train, epochs=config.epochs, hash_images=config.hash_images, progress=release.progress,
            predictions=spec.predictions, checkpoint=spec.checkpoint, num_id=spec.num_id,
            # training checkpoints survive a kill; a redone stage continues from the last epoch
            work_dir=release.out / WORK_FOLDER / spec.name, resume=True, overwrite=REDO,
            # several ranking classifiers (trained here): consensus ranking and stability.json (docs/audit.md)
            seeds=config.seeds if spec.predictions is None and spec.checkpoint is None else 1,
        )
        if spec.id_classes is not None:  # INet-A / INet-B: ID classes given (Appendix H.1)
            request.dataset, request.id_classes, request.ood_classes = spec.dataset, spec.id_classes, spec.ood_classes
        else:
            request.benchmark = spec.name
        build_splits(request)

    return Stage(f"splits:{spec.name}", run, outputs=lambda release: [release.benchmark_folder(spec)])


def webvision_stage(spec: BenchmarkSpec) -> Stage:
    def run(release: Release) -> None:
        if spec.name in INET_LISTS:  # both INet splits' classes, as docs/build-splits.md filters for INet-A/B
            from fgood_bench.manifests.files import class_names_in_file

            wnids = list(dict.fromkeys(class_names_in_file(spec.id_classes) + class_names_in_file(spec.ood_classes)))
            benchmark, extra = None, {"exclude_wnids": wnids}
        else:  # the benchmark's WordNet roots (fgood_bench.outliers.exclusions.BENCHMARK_ROOTS)
            benchmark, extra = spec.name, {}
        filter_outliers(benchmark, "webvision", release.config.roots["webvision"], release.out / "outliers",
                        name=f"webvision-{spec.name}", dataset_options=release.config.options("webvision"),
                        progress=release.progress, overwrite=REDO, **extra)

    return Stage(f"outliers:webvision-{spec.name}", run,
                 outputs=lambda release: [release.outlier_folder(f"webvision-{spec.name}")])


def minc_stage() -> Stage:
    def run(release: Release) -> None:
        filter_outliers(None, "minc2500", release.config.roots["minc2500"], release.out / "outliers", name="minc2500",
                        dataset_options=release.config.options("minc2500"), progress=release.progress, overwrite=REDO)

    return Stage("outliers:minc2500", run, outputs=lambda release: [release.outlier_folder("minc2500")])


def ood_set_stage(name: str) -> Stage:
    def run(release: Release) -> None:
        dataset, sample = OOD_SETS[name], release.config.ood_sets[name]
        build_ood_set(dataset, release.config.roots[dataset], release.out / "ood", name=name, size=sample["size"],
                      seed=sample["seed"], dataset_options=release.config.options(dataset),
                      hash_images=release.config.hash_images, overwrite=REDO)

    return Stage(f"ood:{name}", run, outputs=lambda release: [release.out / "ood" / name])


def audit_stage(spec: BenchmarkSpec) -> Stage:
    """audit-leakage of the benchmark against its WebVision outliers and the coarse OOD sets, into
    ``audit/<benchmark>/``; image hashes are cached across benchmarks in the work folder."""
    def run(release: Release) -> str:
        from fgood_bench.audit.leakage import AuditRequest, audit_leakage

        config = release.config
        webvision = "webvision" in config.outliers
        audit = audit_leakage(AuditRequest(
            benchmark=release.benchmark_folder(spec), root=config.roots[spec.dataset],
            outliers=release.outlier_folder(f"webvision-{spec.name}") if webvision else None,
            outlier_root=config.roots["webvision"] if webvision else None,
            ood=[f"{name}={release.out / 'ood' / name}" for name in config.ood_sets],
            ood_roots={name: config.roots[OOD_SETS[name]] for name in config.ood_sets},
            out=release.out / "audit" / spec.name, hash_cache=release.out / WORK_FOLDER / "hash-cache",
            progress=release.progress, overwrite=REDO,
        ))
        found = sum(count["exact"] + count["near"] for count in audit["counts"])
        return f"{found} exact or near-duplicate pairs (audit/{spec.name}/audit.md)"

    def reads(release: Release) -> list[Path]:
        folders = [release.benchmark_folder(spec), *(release.out / "ood" / name for name in release.config.ood_sets)]
        if "webvision" in release.config.outliers:
            folders.append(release.outlier_folder(f"webvision-{spec.name}"))
        return folders

    return Stage(f"audit:{spec.name}", run, outputs=lambda release: [release.out / "audit" / spec.name], reads=reads)


def verify_stage(release: Release) -> str:
    """Every manifest of the release against the dataset it was built from."""
    images = release.config.verify_images
    for folder, root in release.manifests():
        report = verify_manifest(folder, root, images=images, progress=release.progress)
        if not report.ok:
            raise FgoodError(f"{folder}: does not verify against {root}: {report.summary()[1]}")
    return f"{len(release.manifests())} manifests verified ({'images decoded' if images else 'images present'})"


def export_stage(spec: BenchmarkSpec, form: str) -> Stage:
    def run(release: Release) -> str | None:
        folder = release.benchmark_folder(spec)
        if form == "hf":
            export_hf(folder, release.config.roots[spec.dataset], release.out / "exports" / "hf", overwrite=REDO)
            return None
        manifest = Manifest.load(folder)
        spaced = next((p for s in manifest.split_names for p in manifest.split(s).paths if " " in p), None)
        if spaced is not None:  # OpenOOD splits its list lines at the first space (see export_openood)
            return f"not exported to OpenOOD: path {spaced!r} has a space"
        # with the dataset's folder (its OOD validation list: the synthetic outliers) and the release's OOD sets
        # as far-OOD, so that every OpenOOD pipeline runs on it; what it still lacks is the stage's note
        config = release.config
        target = export_openood(manifest, release.out / "exports" / "openood", root=config.roots[spec.dataset],
                                far_ood={name: release.out / "ood" / name for name in config.ood_sets},
                                ood_roots={name: config.roots[OOD_SETS[name]] for name in config.ood_sets}, overwrite=REDO)
        return "; ".join(openood_export_gaps(target)) or None

    return Stage(f"export:{form}:{spec.name}", run, outputs=lambda release: [release.out / "exports" / form / spec.name],
                 reads=lambda release: [release.benchmark_folder(spec), *(release.out / "ood" / n for n in release.config.ood_sets)])


def plan_stages(config: ReleaseConfig) -> list[Stage]:
    """The release's stages in the order they run: each one reads only what earlier ones wrote."""
    stages = []
    for spec in config.benchmarks:
        stages.append(splits_stage(spec))  # with ranking.seeds > 1 it also writes stability.json
    stages += [ood_set_stage(name) for name in config.ood_sets]
    by_name = {spec.name: spec for spec in config.benchmarks}
    for name, source in outlier_sets(config):
        stages.append(webvision_stage(by_name[name.removeprefix("webvision-")]) if source == "webvision" else minc_stage())
    if config.audit:  # after every set it compares, before verify
        stages += [audit_stage(spec) for spec in config.benchmarks]
    stages.append(Stage("verify", verify_stage, reads=lambda release: [folder for folder, _ in release.manifests()]))
    for form in config.exports:
        stages += [export_stage(spec, form) for spec in config.benchmarks]
    return stages


# -- running them, resumably ------------------------------------------------------------------


class PublishState:
    """``OUT/.publish-state.json``: the config's fingerprint and each stage's status and time,
    rewritten atomically after every change."""

    def __init__(self, path: Path, data: dict):
        self.path = path
        self.data = data

    @classmethod
    def open(cls, out: Path, fingerprint: str, resume: bool) -> "PublishState":
        """``out`` is already claimed for publish (:func:`fgood_bench.outputs.run_folder`)."""
        path = out / STATE_FILE
        if not resume:
            if path.exists():
                raise FgoodError(f"{out}: holds a release; continue it with --resume, or choose a new --out")
            state = cls(path, {"fingerprint": fingerprint, "stages": {}})
            state.save()
            return state
        if not path.exists():
            raise FgoodError(f"{out}: no release to resume here ({STATE_FILE} not found); run without --resume")
        data = _read_json(path, "release state file", "start the release again in a new --out")
        if data.get("fingerprint") != fingerprint:
            raise FgoodError(f"{out}: the config or its predictions/checkpoints changed since this release started; "
                             "resume with the same ones, or start again in a new --out")
        return cls(path, data)

    def done(self, stage: str) -> bool:
        return self.data["stages"].get(stage, {}).get("status") == "done"

    def changed(self, stage: Stage, release: Release) -> str | None:
        """Why the finished ``stage`` cannot be trusted any more (a file it wrote or read is missing,
        changed or new since it finished), or None when every file is as it recorded."""
        entry = self.data["stages"][stage.name]
        recorded = {"outputs": entry.get("outputs"), "inputs": entry.get("inputs")}
        if not all(isinstance(files, dict) for files in recorded.values()):
            return "its files were not recorded when it finished"
        now = stage_files(release, stage)
        for role, before in recorded.items():
            after = now[role]
            problems = ([f"{path} was deleted" for path in sorted(set(before) - set(after))]
                        + [f"{path} was changed" for path in sorted(before) if path in after and after[path] != before[path]]
                        + [f"{path} was added" for path in sorted(set(after) - set(before))])
            if problems:
                what = "its output " if role == "outputs" else "its input "
                more = f" (and {len(problems) - 1} other files)" if len(problems) > 1 else ""
                return f"{what}{problems[0]}{more} since it finished"
        return None

    def start(self, stage: str) -> None:
        self.data["stages"][stage] = {"status": "running"}
        self.save()

    def finish(self, stage: str, seconds: float, note: str | None, files: dict | None = None) -> None:
        self.data["stages"][stage] = {"status": "done", "seconds": round(seconds, 3), "note": note, **(files or {})}
        self.save()

    def save(self) -> None:
        atomic_write_bytes(self.path, json_bytes(self.data))


def publish(config_path: str | Path, out: str | Path, *, resume: bool = False, progress: bool = False,
            log: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> Path:
    """Run (or continue) the release described by ``config_path`` in ``out``; returns RELEASE.md's path."""
    config = load_config(config_path)
    out = Path(out).expanduser()
    with run_folder(out, "publish", reuse=resume, hint="continue the interrupted release with --resume, or choose a new --out"):
        state = PublishState.open(out, config.fingerprint(), resume)
        release = Release(config, out, progress)
        stages = plan_stages(config)
        positions = Stages("release stage", len(stages), enabled=False)  # names the stage in inner progress lines
        for number, stage in enumerate(stages, 1):
            if state.done(stage.name):
                why = state.changed(stage, release)
                if why is None:
                    log(f"[{number}/{len(stages)}] {stage.name}: done earlier, skipped")
                    continue
                log(f"[{number}/{len(stages)}] {stage.name}: done earlier, but {why}; redoing it")
            else:
                log(f"[{number}/{len(stages)}] {stage.name}")
            state.start(stage.name)
            started = time.monotonic()
            with positions.stage(number - 1):
                note = stage.run(release)
            state.finish(stage.name, time.monotonic() - started, note, stage_files(release, stage))
            forget()  # the finished stage's checkpoints are part of it
            keep(out, f"the finished release stages ({number} of {len(stages)}) are kept in {out}")
        write_release_notes(release, stages, state)
    return out / "RELEASE.md"


def _release_file(out: Path, path: Path) -> bool:
    """Whether ``path`` is a file of the release (hidden state excluded; the notes are excluded by the callers)."""
    relative = path.relative_to(out)
    return path.is_file() and not any(part.startswith(".") for part in relative.parts)


def folder_hashes(out: Path, folders: list[Path]) -> dict[str, str]:
    """sha256 of every release file under ``folders`` (paths relative to ``out``); a missing folder has none."""
    files = {}
    for folder in folders:
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if _release_file(out, path):
                    files[path.relative_to(out).as_posix()] = sha256_file(path)
    return files


def stage_files(release: Release, stage: Stage) -> dict[str, dict[str, str]]:
    """What ``.publish-state.json`` records of a finished stage: the sha256 of the files it wrote
    (``outputs``, listed again in release.json) and of the earlier stages' files it read (``inputs``)."""
    return {"outputs": folder_hashes(release.out, stage.outputs(release)),
            "inputs": folder_hashes(release.out, stage.reads(release))}


# -- RELEASE.md and release.json -----------------------------------------------------------


def _read_json(path: Path, what: str, advice: str):
    """A JSON file of the release, read strictly (fgood_bench.inputs); a bad one is one line with ``advice``."""
    try:
        return read_json(path, what)
    except FgoodError as err:
        raise FgoodError(f"{err}; {advice}") from None


def read_manifest_document(folder: Path) -> dict:
    """A release manifest's JSON; a missing or unreadable one is one line, not a traceback."""
    path = folder / "manifest.json"
    if not path.exists():
        raise FgoodError(f"{path}: missing; the release is incomplete (run publish --resume to rebuild it)")
    document = _read_json(path, "manifest file", "run publish --resume to rebuild it")
    if not isinstance(document, dict):
        raise FgoodError(f"{path}: not a manifest; run publish --resume to rebuild it")
    return document


def benchmark_summary(folder: Path, outliers: Path | None) -> dict:
    """ID / holdout classes, split sizes, the boundary margin and the outlier exclusions."""
    manifest = read_manifest_document(folder)
    summary = {
        "dataset": manifest["dataset"]["id"],
        "selection": manifest.get("selection", "ranked"),
        "id_classes": len(manifest["id_classes"]),
        "holdout_classes": len(manifest["ood_classes"]),
        "splits": {name: entry["count"] for name, entry in manifest["splits"].items()},
        "boundary_margin": border_gap(manifest.get("ranking", {}).get("classes", []), manifest["num_id"]),
        "manifest_sha256": sha256_file(folder / "manifest.json"),
    }
    if outliers is not None and (outliers / "manifest.json").is_file():
        exclusion = read_manifest_document(outliers)["exclusion"]
        summary["outliers"] = {"set": outliers.name, "excluded_concepts": len(exclusion["excluded"]),
                               "excluded_images": exclusion["images_removed"], "kept_images": exclusion["images_kept"]}
    return summary


def versions() -> dict:
    import datasets
    import torch
    import torchvision

    return {"fgood-bench": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "datasets": datasets.__version__, "python": platform.python_version()}


def hardware() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "gpus": gpus, "platform": platform.platform()}


def release_files(out: Path) -> dict[str, str]:
    """sha256 of every file of the release (hidden state and the notes themselves excluded)."""
    return {path: digest for path, digest in folder_hashes(out, [out]).items() if path not in NOTES}


def write_release_notes(release: Release, stages: list[Stage], state: PublishState) -> None:
    config, out = release.config, release.out
    by_name = {spec.name: spec for spec in config.benchmarks}
    summaries = {name: benchmark_summary(release.benchmark_folder(spec),
                                         release.outlier_folder(f"webvision-{name}") if "webvision" in config.outliers else None)
                 for name, spec in by_name.items()}
    sets = {}
    for folder, _ in release.manifests()[len(config.benchmarks):]:
        manifest = read_manifest_document(folder)
        sets[folder.relative_to(out).as_posix()] = {"kind": manifest["kind"], "dataset": manifest["dataset"]["id"],
                                                   "images": sum(s["count"] for s in manifest["splits"].values()),
                                                   "manifest_sha256": sha256_file(folder / "manifest.json")}
    files = release_files(out)
    timings = []
    for stage in stages:  # every stage with the files it wrote, each one checked against the release's files
        entry = state.data["stages"][stage.name]
        outputs = entry.get("outputs", {})
        wrong = next((path for path, digest in outputs.items() if files.get(path) != digest), None)
        if wrong is not None:
            raise FgoodError(f"{out / wrong}: written by stage {stage.name} and {'changed' if wrong in files else 'missing'} "
                             "since; run publish --resume to redo that stage")
        timings.append({"stage": stage.name, **{k: v for k, v in entry.items() if k not in ("status", "inputs")}})
    document = {
        "versions": versions(),
        "hardware": hardware(),
        "settings": {"benchmarks": list(by_name), "ranking": {k: v for k, v in vars(config.train).items()},
                     "epochs": config.epochs or "benchmark presets (Appendix D.1)", "ood_sets": config.ood_sets,
                     "outliers": config.outliers, "exports": config.exports, "hash_images": config.hash_images},
        "stages": timings,
        "benchmarks": summaries,
        "sets": sets,
        "byte_identical_on_rebuild": f"every file listed in 'files' (all but {' and '.join(NOTES)})",
        "files": files,
    }
    notes = {"release.json": json_bytes(document), "RELEASE.md": release_markdown(document).encode("utf-8")}
    for name, content in notes.items():
        atomic_write_bytes(out / name, content)


def release_markdown(document: dict) -> str:
    v, hw = document["versions"], document["hardware"]
    lines = [
        "# fgood-bench release",
        "",
        f"Built with fgood-bench {v['fgood-bench']}, torch {v['torch']}, torchvision {v['torchvision']}, "
        f"datasets {v['datasets']} (Python {v['python']}) on {hw['cpu']} ({hw['cpu_count']} CPUs), "
        f"GPU: {', '.join(hw['gpus']) or 'none'}.",
        "",
        "## Benchmarks",
        "",
        "Boundary margin: S(c) = accuracy - mean entropy of the K-th ranked class minus that of the (K+1)-th "
        "(docs/build-splits.md); `-` where the ID classes are given (INet-A/B).",
        "",
        "| benchmark | dataset | ID / holdout classes | id_train | id_val | id_test | ood_test | boundary margin "
        "| outlier concepts / images excluded | manifest sha256 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in document["benchmarks"].items():
        counts = [f"{s['splits'][split]:,}" if split in s["splits"] else "-" for split in ("id_train", "id_val", "id_test", "ood_test")]
        margin = f"{s['boundary_margin']:.4f}" if s["boundary_margin"] is not None else "-"
        excluded = (f"{s['outliers']['excluded_concepts']} / {s['outliers']['excluded_images']:,}" if "outliers" in s else "-")
        lines.append(f"| {name} | {s['dataset']} | {s['id_classes']} / {s['holdout_classes']} | {' | '.join(counts)} "
                     f"| {margin} | {excluded} | `{s['manifest_sha256']}` |")
    lines += ["", "## OOD test sets and outlier sets", "", "| folder | kind | dataset | images | manifest sha256 |",
              "|---|---|---|---|---|"]
    lines += [f"| {folder} | {s['kind']} | {s['dataset']} | {s['images']:,} | `{s['manifest_sha256']}` |"
              for folder, s in document["sets"].items()]
    lines += ["", "## Stages (wall time)", "", "| stage | seconds | note |", "|---|---|---|"]
    lines += [f"| {t['stage']} | {t['seconds']:.1f} | {t.get('note') or ''} |" for t in document["stages"]]
    lines += ["", "## Files", "",
              f"release.json lists the sha256 of all {len(document['files'])} files. Rebuilt from the same datasets, "
              "config and predictions, every one of them is byte-identical; only RELEASE.md and release.json "
              "(timings, machine) differ. Check a copy with `fgood-bench verify FOLDER --root DATASET`.", ""]
    return "\n".join(lines)
