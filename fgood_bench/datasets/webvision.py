"""WebVision 1.0, resized version: 1,000 ImageNet-1k concepts, ~2.4 M noisy web images, val 50,000.

Layout of ``google_resized_256.tar``, ``flickr_resized_256.tar``, ``val_images_256.tar`` and
``info.tar`` unpacked side by side::

    WebVision/
      info/synsets.txt                 <wnid> <names>, 1,000 lines in sorted-wnid order (the ImageNet-1k
                                       wnids, checked: WebVision 2.0's 5,000-concept list is refused)
      info/queries_synsets_map.txt     <query number> <synset number, 1-based>
      info/train_filelist_google.txt   google/q0001/<image>.jpg <label 0..999>
      info/train_filelist_flickr.txt   flickr/q0001/<image>.jpg <label>
      info/val_filelist.txt            <image>.jpg <label>
      google/q0001/...  flickr/q0001/...  val_images_256/...

Labels in the file lists are 0-based line numbers of ``synsets.txt`` (as DivideMix and MixOE
read them). Class index = position of the wnid in sorted order, the ImageNet convention; the
class name is the wnid. Extra columns: ``wnid``, ``source`` (google, flickr, val) and ``query``
(the number of the ``qNNNN`` folder; none for val). Either source, or the val images, may be
absent: what is missing is reported.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from fgood_bench.datasets.base import DatasetAdapter, SplitAbsent, SplitRecords, read_lines
from fgood_bench.datasets.imagenet import imagenet_synsets
from fgood_bench.datasets.integrity import both_entries, first_repeat

SOURCES = ("google", "flickr")


class WebVision(DatasetAdapter):
    name = "webvision"
    title = "WebVision 1.0"
    splits = ("train", "val")
    root_candidates = ("", "WebVision", "webvision")
    markers = ("info/synsets.txt",)
    extra_columns = {"wnid": pa.string(), "source": pa.string(), "query": pa.int32()}

    @cached_property
    def synset_wnids(self) -> list[str]:
        """wnids in ``synsets.txt`` line order (the order of the file-list labels)."""
        path = self.root / "info" / "synsets.txt"
        wnids, linenos = [], []
        for lineno, line in self.lines("info/synsets.txt"):
            wnid = line.split(maxsplit=1)[0]
            if len(wnid) != 9 or wnid[0] != "n" or not wnid[1:].isdigit():
                raise self.error(path, f"line {lineno}: expected '<wnid> <names>' with a wnid like n01440764, got {line!r}")
            wnids.append(wnid)
            linenos.append(lineno)
        repeat = first_repeat(wnids)
        if repeat is not None:
            (a, b), entry = repeat, lambda i: ("info/synsets.txt", f"line {linenos[i]}")
            raise self.error(path, f"{both_entries(entry(a), entry(b))} both list {wnids[a]}: a wnid is listed twice")
        imagenet = imagenet_synsets()
        set_of_wnids = set(wnids)
        if set_of_wnids != set(imagenet):  # outlier filtering (WordNet exclusions) knows ImageNet-1k's concepts only
            outside = [wnid for wnid in wnids if wnid not in imagenet]
            missing = [wnid for wnid in imagenet if wnid not in set_of_wnids]
            problem = (f"{len(outside):,} of its {len(wnids):,} concepts are not ImageNet-1k (first: {outside[0]})" if outside
                       else f"{len(missing):,} ImageNet-1k concepts are missing (first: {missing[0]})")
            raise self.error(path, f"{problem}; WebVision 1.0 lists exactly the 1,000 ImageNet-1k wnids "
                             "(WebVision 2.0's 5,000 concepts are not supported)")
        return wnids

    def read_classes(self) -> list[str]:
        return sorted(self.synset_wnids)

    def read_split(self, split: str, classes: list[str]) -> SplitRecords:
        position = {wnid: i for i, wnid in enumerate(classes)}
        to_class = {i: position[wnid] for i, wnid in enumerate(self.synset_wnids)}
        if split == "val":
            if not (self.root / "val_images_256").is_dir():
                raise SplitAbsent(f"image folder {self.root / 'val_images_256'} not found")
            return self._read_list("info/val_filelist.txt", to_class, classes, source="val")
        present = [s for s in SOURCES if (self.root / s).is_dir()]
        if not present:
            raise SplitAbsent(f"neither google/ nor flickr/ is in {self.root}")
        parts = [self._read_list(f"info/train_filelist_{s}.txt", to_class, classes, source=s) for s in present]
        starts = np.cumsum([0] + [len(part.paths) for part in parts])

        def origin(i: int) -> tuple[str, str]:
            k = int(np.searchsorted(starts, i, side="right")) - 1
            return parts[k].origin(i - int(starts[k]))

        return SplitRecords(
            paths=[p for part in parts for p in part.paths],
            labels=np.concatenate([part.labels for part in parts]),
            extras={key: [v for part in parts for v in part.extras[key]] for key in self.extra_columns},
            origin=origin,
        )

    def _read_list(self, relpath: str, to_class: dict[int, int], classes: list[str], source: str) -> SplitRecords:
        """Parse a file list: vectorised with Arrow (2.4 M lines in about a second), rows checked
        as a whole; the first bad line is then found and reported by number."""
        path = self.root / relpath
        if not self.file_present(relpath):
            raise self.error(path, "file is missing")
        self.files_read.add(relpath)
        try:
            table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(column_names=["image", "label"]),
                                   parse_options=pacsv.ParseOptions(delimiter=" ", quote_char=False),
                                   convert_options=pacsv.ConvertOptions(column_types={"image": pa.string(), "label": pa.int64()}))
        except (pa.ArrowInvalid, UnicodeDecodeError):
            self._first_bad_line(path, source, len(to_class))  # raises with the line number
            table = self._table_of_lines(path)  # every line is good once stripped: only spacing tripped Arrow
        images, labels = table.column("image").combine_chunks(), table.column("label").to_numpy(zero_copy_only=False)
        if source == "val":
            paths = pc.binary_join_element_wise("val_images_256", images, "/")
            queries = pa.nulls(len(images), pa.int32())
        else:
            prefixed = pc.starts_with(images, f"{source}/")
            images = pc.if_else(prefixed, images, pc.binary_join_element_wise(source, images, "/"))
            if not pc.all(pc.match_substring_regex(images, rf"^{source}/q\d{{4}}/[^/]+$")).as_py():
                self._first_bad_line(path, source, len(to_class))
            paths = images
            queries = pc.cast(pc.utf8_slice_codeunits(images, len(source) + 2, len(source) + 6), pa.int32())
        if labels.size and (labels.min() < 0 or labels.max() >= len(to_class)):
            self._first_bad_line(path, source, len(to_class))
        mapped = np.array([to_class[i] for i in range(len(to_class))], np.int32)[labels]
        wnids = pa.array(classes, pa.string()).take(pa.array(mapped))
        linenos: list[int] = []

        def origin(i: int) -> tuple[str, str]:  # Arrow skips blank lines as read_lines does: row i is the i-th line kept
            if not linenos:
                linenos.extend(lineno for lineno, _ in read_lines(path, self.doc))
            return relpath, f"line {linenos[i]}"

        return SplitRecords(paths.to_pylist(), mapped, {
            "wnid": wnids.to_pylist(), "source": [source] * len(mapped), "query": queries.to_pylist()}, origin)

    def _table_of_lines(self, path) -> pa.Table:
        """The list parsed line by line with ``split()`` (the official lists are single-spaced; a
        copy with trailing spaces, tabs or doubled spaces is read as the format says: fields
        separated by whitespace)."""
        rows = [line.split() for _, line in read_lines(path, self.doc)]
        return pa.table({"image": pa.array([image for image, _ in rows], pa.string()),
                         "label": pa.array([int(label) for _, label in rows], pa.int64())})

    def _first_bad_line(self, path, source: str, num_labels: int) -> None:
        """Check ``path`` line by line and raise the error of its first bad line."""
        for lineno, line in read_lines(path, self.doc):
            image, label = self.fields(path, lineno, line, 2, "<image path> <label>")
            label = self.integer(path, lineno, label, "label")
            self.check_range(path, f"line {lineno}", label, 0, num_labels - 1, "label")
            if " " in image:
                raise self.error(path, f"line {lineno}: expected '<image path> <label>', got {line!r}")
            if source != "val":
                image = image if image.startswith(f"{source}/") else f"{source}/{image}"
                parts = image.split("/")
                if len(parts) != 3 or len(parts[1]) != 5 or parts[1][0] != "q" or not parts[1][1:].isdigit():
                    raise self.error(path, f"line {lineno}: expected {source}/qNNNN/<image>, got {image!r}")
