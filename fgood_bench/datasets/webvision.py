"""WebVision 1.0, resized version: 1,000 ImageNet-1k concepts, ~2.4 M noisy web images, val 50,000.

Layout of ``google_resized_256.tar``, ``flickr_resized_256.tar``, ``val_images_256.tar`` and
``info.tar`` unpacked side by side::

    WebVision/
      info/synsets.txt                 <wnid> <names>, 1,000 lines in sorted-wnid order
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

import pyarrow as pa

from fgood_bench.datasets.base import DatasetAdapter, SplitAbsent, SplitRecords

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
        wnids = []
        for lineno, line in self.lines("info/synsets.txt"):
            wnid = line.split(maxsplit=1)[0]
            if len(wnid) != 9 or wnid[0] != "n" or not wnid[1:].isdigit():
                raise self.error(path, f"line {lineno}: expected '<wnid> <names>' with a wnid like n01440764, got {line!r}")
            wnids.append(wnid)
        if len(set(wnids)) != len(wnids):
            raise self.error(path, "a wnid is listed twice")
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
        return SplitRecords(
            paths=[p for part in parts for p in part.paths],
            labels=[label for part in parts for label in part.labels],
            extras={key: [v for part in parts for v in part.extras[key]] for key in self.extra_columns},
        )

    def _read_list(self, relpath: str, to_class: dict[int, int], classes: list[str], source: str) -> SplitRecords:
        path = self.root / relpath
        paths, labels, queries = [], [], []
        for lineno, line in self.lines(relpath):
            image, label = self.fields(path, lineno, line, 2, "<image path> <label>")
            label = self.integer(path, lineno, label, "label")
            self.check_range(path, f"line {lineno}", label, 0, len(to_class) - 1, "label")
            if source == "val":
                paths.append(f"val_images_256/{image}")
                queries.append(None)
            else:
                if not image.startswith(f"{source}/"):
                    image = f"{source}/{image}"
                folder = image.split("/")[1]
                if len(folder) != 5 or folder[0] != "q" or not folder[1:].isdigit():
                    raise self.error(path, f"line {lineno}: expected {source}/qNNNN/<image>, got {image!r}")
                paths.append(image)
                queries.append(int(folder[1:]))
            labels.append(to_class[label])
        wnids = [classes[label] for label in labels]
        return SplitRecords(paths, labels, {"wnid": wnids, "source": [source] * len(paths), "query": queries})
