"""A generic image folder, for the user's own OOD sets.

Either ``root/<class>/<image>`` (one sub-folder per class, searched recursively, as torchvision's
``ImageFolder``: class index = position in the sorted folder names) or a flat ``root/<image>`` folder, read as a
single class named after the folder. Files are matched by image extension; hidden files and
folders are skipped. Everything is one split, ``all``.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from fgood_bench.datasets.base import DatasetAdapter, SplitRecords, display_path, inside, list_images, list_subfolders


class ImageFolder(DatasetAdapter):
    name = "imagefolder"
    title = "image folder"
    splits = ("all",)
    markers = ("image files or class sub-folders",)

    def is_canonical_root(self, path: Path) -> bool:
        return True

    @cached_property
    def _layout(self) -> dict[str, list[str]]:
        """class name -> image files, relative to the root."""
        flat = list_images(self.root)
        folders = list_subfolders(self.root)
        if flat and folders:
            raise self.error(self.root, f"holds both images ({flat[0]}, ...) and sub-folders ({folders[0]}, ...): "
                             "use root/<class>/<image> or a flat folder of images, not both")
        if flat:
            return {self.root.resolve().name: flat}
        for folder in folders:
            if (self.root / folder).is_symlink():
                target = os.path.realpath(self.root / folder)
                where = "another folder of the root (its images would be in two classes)" if inside(
                    os.path.realpath(self.root), target) else "a folder outside the root"
                raise self.error(display_path(self.root / folder), f"a class folder that is a symbolic link to {where}: "
                                 f"{display_path(target)}; copy or move the images in")
        layout = {folder: self._images_under(folder) for folder in folders}
        empty = [folder for folder, images in layout.items() if not images]
        if not layout or empty:
            where = self.root / empty[0] if empty else self.root
            raise self.error(where, "no image files found (extensions .jpg, .jpeg, .png, ...)")
        return layout

    def _images_under(self, folder: str) -> list[str]:
        """Image files anywhere below ``root/folder``: a folder's own files (sorted), then its
        sub-folders depth first (torchvision's ImageFolder orders nested files differently; labels
        are the same).

        Symbolic links to folders are not followed: one inside the root (``loop -> ..``) would list
        its images twice or forever, they are listed at their own place; one leaving the root is refused.
        """
        root_real = os.path.realpath(self.root)
        images, pending = [], [folder]
        while pending:  # a stack, not recursion: any depth
            relative = pending.pop()
            current = self.root / relative
            images.extend(f"{relative}/{name}" for name in list_images(current))
            subfolders = list_subfolders(current)
            linked = [name for name in subfolders if (current / name).is_symlink()]
            for name in linked:
                target = os.path.realpath(current / name)
                if not inside(root_real, target):
                    raise self.error(display_path(current / name), f"a symbolic link to {display_path(target)}, outside the "
                                     "image folder: copy those images in (links that leave the root are not followed)")
            pending.extend(f"{relative}/{name}" for name in reversed(subfolders) if name not in linked)
        return images

    def read_classes(self) -> list[str]:
        return list(self._layout)

    def read_split(self, split: str, classes: list[str]) -> SplitRecords:
        paths, labels = [], []
        for label, images in enumerate(self._layout.values()):
            paths.extend(images)
            labels.extend([label] * len(images))
        return SplitRecords(paths=paths, labels=labels)
