"""``filter-outliers``: an outlier-exposure training set without the benchmark's own domain.

WebVision (the paper's outlier set), ImageNet-1k or MINC-2500 images, minus every image of an
excluded concept (:mod:`fgood_bench.outliers.exclusions`), written as an ``outliers`` manifest
(split ``train``, label -1, class name = concept) with a report of what was removed. WebVision
images are assigned to concepts through their query (``info/queries_synsets_map.txt``), read from
the ``info/`` file lists, never by walking the 2.4 M files.

The manifest's ``exclusion`` report keeps apart the images removed with an excluded concept
(``images_removed``, per concept in ``excluded``) and the audited copies of test images
(``duplicates.images_removed``), and records every ``--exclude-list`` file by name and sha256.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fgood_bench import __version__
from fgood_bench.datasets import get_adapter, load_index
from fgood_bench.errors import FgoodError, article
from fgood_bench.manifests.files import SPLIT_HEADER, class_names_in_file, sha256_bytes, sha256_file
from fgood_bench.manifests.manifest import SCHEMA_VERSION, dataset_description
from fgood_bench.outliers.exclusions import Excluded, benchmark_roots, exclusion_set
from fgood_bench.outputs import json_bytes, output_folder, output_name, preflight, refuse_inside_dataset

SOURCES = ("webvision", "imagenet", "minc2500")
QUERY_MAP = "info/queries_synsets_map.txt"  # WebVision: query folder -> concept


def filter_outliers(
    benchmark: str | None, source: str, root: str | Path, out: str | Path, *, exclude_roots: list[str] = (),
    exclude_wnids: list[str] = (), exclude_lists: list[str | Path] = (), all_benchmarks: bool = False, name: str | None = None,
    dataset_options: dict | None = None, progress: bool = True, overwrite: bool = False,
    exclude_duplicates_of: str | Path | None = None,
) -> Path:
    """Write ``out/<name>/`` (manifest, split file, report); returns the manifest's path.

    ``exclude_lists``: files of wnids (``--exclude-list``, e.g. manifests/inet/inet_a.tsv), recorded
    by name and sha256. ``exclude_duplicates_of``: an ``audit-leakage`` audit.json; the outlier
    images it found to be copies of benchmark test images are removed too."""
    if source not in SOURCES:
        raise FgoodError(f"source (--source) {source!r}: choose from {', '.join(SOURCES)}")
    if name is not None:  # OUT/NAME: one plain folder name
        output_name(name, "--name")
    benchmark = None if benchmark in (None, "none") else benchmark
    roots = benchmark_roots(benchmark, list(exclude_roots), all_benchmarks)
    if source == "minc2500" and (roots or exclude_wnids or exclude_lists):
        raise FgoodError("MINC-2500's categories are materials, not WordNet concepts: nothing can be excluded by synset")
    lists = _exclude_lists(exclude_lists)
    listed = {entry["file"]: entry["wnids"] for entry in lists}
    excluded = exclusion_set(roots, list(exclude_wnids), listed) if source != "minc2500" else []
    default_name = f"{source}-{benchmark or ('all' if all_benchmarks else 'unfiltered')}"
    preflight(Path(out) / (name or default_name), "outliers", overwrite)
    duplicates = None
    if exclude_duplicates_of is not None:
        duplicates = duplicate_outliers(Path(exclude_duplicates_of), source)
    index = load_index(source, root, **(dataset_options or {}))
    refuse_inside_dataset(out, index.root)
    with output_folder(Path(out) / (name or default_name), "outliers", overwrite) as staged:  # locked for the whole command
        if source == "webvision":
            table = index.split("train")
            concepts = _webvision_concepts(index, table)
        elif source == "imagenet":
            table = index.split("train")
            concepts = table.column("wnid").combine_chunks()
        else:  # every image of MINC-2500 (the splits of a partition cover all 57,500)
            table = index.samples
            concepts = table.column("class_name").combine_chunks().cast(pa.string())
        if table.num_rows == 0:
            raise FgoodError(f"{index.root}: no training images to draw outliers from")

        removed_mask = pc.is_in(concepts, value_set=pa.array([e.wnid for e in excluded], pa.string()))
        kept = pc.invert(removed_mask)
        if duplicates is not None:  # audited copies of test images, unless a concept already removed them
            copies = pc.and_(kept, pc.is_in(table.column("path"), value_set=pa.array(duplicates[0], pa.string())))
            kept = pc.and_(kept, pc.invert(copies))
        paths, names = table.column("path").combine_chunks().filter(kept), concepts.filter(kept)
        content = _split_file(paths, names)
        removed_counts = _count(concepts.filter(removed_mask))
        name = name or default_name
        report = {
            "source": source,
            "benchmark": benchmark,
            "roots": roots,
            "wnids_given": list(exclude_wnids),
            "exclude_lists": [{"file": entry["file"], "sha256": entry["sha256"], "wnids": len(entry["wnids"])} for entry in lists],
            "excluded": [{"wnid": e.wnid, "names": e.names, "matched": e.matched, "images_removed": removed_counts.get(e.wnid, 0)}
                         for e in excluded],
            "images_kept": len(paths),
            "images_removed": sum(removed_counts.values()),  # of excluded concepts; audited copies: duplicates below
            "concepts_kept": len(_count(names)),
        }
        if duplicates is not None:
            removed = table.column("path").filter(copies).to_pylist()
            report["duplicates"] = {"audit_sha256": duplicates[1], "pairs_listed": len(duplicates[0]),
                                    "images_removed": len(removed), "paths": removed}
        dataset = dataset_description(index)
        if source == "webvision":  # read through a second adapter (_webvision_concepts), so pinned here
            pinned = {**dataset["metadata_sha256"], QUERY_MAP: sha256_file(index.root / QUERY_MAP)}
            dataset["metadata_sha256"] = dict(sorted(pinned.items()))
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "kind": "outliers",
            "benchmark": name,
            "dataset": dataset,
            "image_sha256": False,
            "exclusion": report,
            "splits": {"train": {"file": "splits/train.txt", "count": len(paths), "sha256": sha256_bytes(content)}},
            "provenance": {"toolkit": f"fgood-bench {__version__}", "wordnet": "WordNet 3.0 (shipped ImageNet-1k ancestor table)"},
        }
        return staged.write({
            "manifest.json": json_bytes(manifest),
            "splits/train.txt": content,
            "report.md": report_markdown(name, report).encode("utf-8"),
        }) / "manifest.json"


def _webvision_concepts(index, table: pa.Table) -> pa.Array:
    """Each image's concept (wnid) through its query, checked against the file list's label."""
    adapter = get_adapter("webvision")(index.root)
    relpath = QUERY_MAP
    path = index.root / relpath
    synset_wnids = adapter.synset_wnids
    query_concept = {}
    for lineno, line in adapter.lines(relpath):
        query, synset = adapter.fields(path, lineno, line, 2, "<query number> <synset number>")
        synset = adapter.integer(path, lineno, synset, "synset number")
        adapter.check_range(path, f"line {lineno}", synset, 1, len(synset_wnids), "synset number")
        query_concept[adapter.integer(path, lineno, query, "query number")] = synset_wnids[synset - 1]
    queries = table.column("query").to_numpy(zero_copy_only=False)
    known = np.array(sorted(query_concept))
    unknown = ~np.isin(queries, known)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise FgoodError(f"{path}: query q{queries[row]:04d} (of {table.column('path')[row].as_py()}) is not mapped to a synset")
    lookup = np.empty(known.max() + 1, dtype=object)
    for query, wnid in query_concept.items():
        lookup[query] = wnid
    concepts = pa.array(lookup[queries].tolist(), pa.string())
    disagree = pc.not_equal(concepts, table.column("wnid").combine_chunks())
    if pc.any(disagree).as_py():
        row = int(np.flatnonzero(disagree.to_numpy(zero_copy_only=False))[0])
        raise FgoodError(
            f"{index.root / 'info'}: the file lists label {table.column('path')[row].as_py()} as "
            f"{table.column('wnid')[row].as_py()}, but its query folder maps to {concepts[row].as_py()} in {relpath}"
        )
    return concepts


def _exclude_lists(files: list[str | Path]) -> list[dict]:
    """Each ``--exclude-list`` file's name, sha256 and wnids; names must differ (the manifest
    records a file by name, as build-splits records --weights, so that it does not depend on where
    the file lay)."""
    lists = []
    for path in files:
        path = Path(path)
        wnids = class_names_in_file(path)
        if not wnids:
            raise FgoodError(f"--exclude-list {path}: no wnids in it (it would exclude nothing)")
        if path.name in {entry["file"] for entry in lists}:
            raise FgoodError(f"--exclude-list {path}: another list is also named {path.name!r}; rename one "
                             "(the manifest records each list by file name)")
        lists.append({"file": path.name, "sha256": sha256_file(path), "wnids": list(dict.fromkeys(wnids))})
    return lists


def _split_file(paths: pa.Array, names: pa.Array) -> bytes:
    """The split file of an outlier set (every label -1), built column-wise for millions of rows."""
    for column in (paths, names):
        bad = pc.match_substring_regex(column, "[\t\n\r]")
        if pc.any(bad).as_py():
            raise FgoodError(f"{column.filter(bad)[0].as_py()!r}: tabs and line breaks cannot appear in a split file")
    lines = pc.binary_join_element_wise(paths, pa.scalar("-1"), names, "\t").to_pylist()
    return ("\n".join([SPLIT_HEADER, *lines]) + "\n").encode("utf-8")


def _count(values: pa.Array) -> dict[str, int]:
    return {row["values"]: row["counts"] for row in values.value_counts().to_pylist()}


def report_markdown(name: str, report: dict) -> str:
    lists = [f"{entry['file']} ({entry['wnids']} wnids, sha256 {entry['sha256']})" for entry in report.get("exclude_lists", [])]
    lines = [
        f"# Outlier set `{name}`",
        "",
        f"Source: {report['source']}; benchmark: {report['benchmark'] or '-'}; WordNet roots: "
        f"{', '.join(report['roots']) or '-'}; wnids given: {', '.join(report['wnids_given']) or '-'}; "
        f"wnid lists: {', '.join(lists) or '-'}.",
        "",
        f"Kept {report['images_kept']:,} images of {report['concepts_kept']:,} concepts; removed "
        f"{report['images_removed']:,} images of {len(report['excluded'])} excluded concepts"
        + (f" and {report['duplicates']['images_removed']:,} audited copies of test images (listed below)."
           if "duplicates" in report else "."),
        "",
        "| wnid | names | matched root | images removed |",
        "|---|---|---|---|",
    ]
    lines += [f"| {e['wnid']} | {e['names']} | {e['matched']} | {e['images_removed']:,} |" for e in report["excluded"]]
    if "duplicates" in report:
        found = report["duplicates"]
        lines += ["", f"Also removed {found['images_removed']:,} images that audit-leakage found to be copies of the "
                  f"benchmark's test images (audit sha256 {found['audit_sha256']}; {found['pairs_listed']:,} outlier "
                  "images listed, the others already removed by concept):", ""]
        lines += [f"- `{path}`" for path in found["paths"]]
    return "\n".join(lines) + "\n"


def exclusions_json(benchmark: str | None, excluded: list[Excluded], roots: list[str]) -> dict:
    return {
        "benchmark": benchmark,
        "roots": roots,
        "excluded_wnids": [e.wnid for e in excluded],
        "excluded": [{"wnid": e.wnid, "names": e.names, "matched": e.matched} for e in excluded],
    }


def duplicate_outliers(audit_path: Path, source: str) -> tuple[list[str], str]:
    """The outlier-set paths of an ``audit-leakage`` audit.json's pairs, and the audit's sha256: the copies of
    benchmark images ``filter-outliers --exclude-duplicates-of`` removes (the audit's file format, docs/audit.md)."""
    from fgood_bench.inputs import cut, loads_json, read_regular

    content = read_regular(audit_path, "audit file")  # a regular file only; hashed as read
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FgoodError(f"{audit_path}: audit file is not UTF-8 text ({err.reason} at byte {err.start})") from None
    audit = loads_json(text, audit_path, "audit file")  # no key twice, no NaN

    def wrong(where: str, expected: str, value) -> FgoodError:
        return FgoodError(f"{audit_path}: {where}: expected {expected}, got {cut(value, 60)}; "
                          "not an audit-leakage audit.json (docs/audit.md)")

    if not isinstance(audit, dict):
        raise wrong("(top level)", "an object", audit)
    for key in ("sets", "pairs"):
        if key not in audit:
            raise FgoodError(f"{audit_path}: no {key!r}; not an audit-leakage audit.json (docs/audit.md)")
    sets, pairs = audit["sets"], audit["pairs"]
    if not isinstance(sets, dict):
        raise wrong("sets", "an object of the audited sets", sets)
    if not isinstance(pairs, list):
        raise wrong("pairs", "a list of pairs", pairs)
    if "outliers" not in sets:
        raise FgoodError(f"{audit_path}: the audit did not check an outlier set (run audit-leakage with --outliers)")
    outliers = sets["outliers"]
    if not isinstance(outliers, dict) or not isinstance(outliers.get("dataset"), str):
        raise wrong("sets.outliers.dataset", "a dataset name", outliers.get("dataset") if isinstance(outliers, dict) else outliers)
    if outliers["dataset"] != source:
        raise FgoodError(f"{audit_path}: audits {article(cut(outliers['dataset']))} outlier set, not {source}")
    for number, pair in enumerate(pairs):
        if not isinstance(pair, dict):
            raise wrong(f"pairs[{number}]", "an object with a, a_path, b, b_path", pair)
        for key in ("a", "a_path", "b", "b_path"):
            if not isinstance(pair.get(key), str) or not pair[key]:
                raise wrong(f"pairs[{number}].{key}", "a set name" if key in ("a", "b") else "an image path", pair.get(key))
    paths = sorted({p["a_path"] for p in pairs if p["a"] == "outliers"})
    return paths, sha256_bytes(content)
