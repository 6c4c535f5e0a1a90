"""The decoded, resized image cache shared by every trial and process on a node.

One cache entry per (dataset, modality, split, size, label map, carve, source fingerprint) in
``<cache_root>/<dataset>/<modality>-<split>-<W>x<H>-<key>/``:

* ``images.npy``  uint8 (N, H, W, 3), opened with ``mmap_mode='r'`` so every process shares the
  page cache instead of holding its own copy;
* ``boxes.npy`` float32 (M, 4) xyxy in resized pixels, ``labels.npy`` int64 (M,), and
  ``offsets.npy`` int64 (N + 1,) slicing them per image (detection), or ``targets.npy`` int64
  (N,) (classification);
* ``ignore_boxes.npy``, ``ignore_labels.npy``, ``ignore_offsets.npy``: the ignore regions
  (VOC difficult, COCO crowd) laid out the same way, kept apart from the training targets;
* ``ids.txt`` one modality-independent sample id per line (``capstudy.data.carve``);
* ``meta.json`` class names, task, fingerprint, and the warnings met while building;
* ``COMPLETE`` written last.

A build writes into a temporary folder next to the entry and renames it into place, so a reader
sees either nothing or a complete entry; an interrupted build leaves only a temporary folder
that the next builder removes. Builders of the same entry serialise on an ``fcntl.flock`` lock
file, so concurrent trials on a node build once and the rest wait and reuse it. The builder
decodes with a pool of threads (:func:`decode_workers`: this process's CPUs, or
``$CAPSTUDY_DECODE_WORKERS``), each writing its image straight into the memmap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from capstudy import paths
from capstudy.data.carve import sample_id
from capstudy.data.imageio import decode_resized
from capstudy.data.index import SplitIndex
from capstudy.errors import CapstudyError
from capstudy.util import atomic_path, remove_stale_temporaries

log = logging.getLogger("capstudy.data")

# Bump when the layout or the resize rule changes, so old entries are not reused.
CACHE_VERSION = 2  # 2: ignore regions, sample ids, carved validation subsets
RESIZE_RULE = "pil-bilinear-plain-resize"
COMPLETE = "COMPLETE"
DECODE_WORKERS_ENV = "CAPSTUDY_DECODE_WORKERS"
# A cap, not a measured optimum: a build shares its node with running trials, and with many
# threads reading the disk and writing the memmap bound it before decoding does.
MAX_DECODE_WORKERS = 16


@dataclass
class CachedSplit:
    """A decoded, resized split backed by read-only memory-mapped arrays.

    Attributes:
        domain: ``dataset/modality``.
        split: ``train``, ``val`` (held out of the training split) or ``eval`` (published).
        size: (width, height) of every image.
        task: ``detection`` or ``classification``.
        images: uint8 (N, H, W, 3) read-only memmap.
        class_names: detection label ``i`` is ``class_names[i - 1]``; classification target
            ``i`` is ``class_names[i]``.
        boxes: per image float32 (k, 4) xyxy in resized pixels (detection).
        labels: per image int64 (k,) in 1..K (detection).
        ignore_boxes: per image float32 (j, 4) ignore regions (evaluation only).
        ignore_labels: per image int64 (j,) their labels.
        targets: int64 (N,) in 0..K-1 (classification).
        fingerprint: hash of the source files, resize settings and label map.
        notes: warnings met while building (unmapped classes, clipped boxes), already logged.
        path: the cache folder.
    """

    domain: str
    split: str
    size: tuple[int, int]
    task: str
    images: np.ndarray
    class_names: tuple[str, ...]
    fingerprint: str
    path: Path
    boxes: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    targets: np.ndarray | None = None
    notes: tuple[str, ...] = ()
    ignore_boxes: list[np.ndarray] = field(default_factory=list)
    ignore_labels: list[np.ndarray] = field(default_factory=list)
    # Positions of these images in the cache entry (None: all, in order); a subset view
    # keeps them so its sample ids stay right.
    rows: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def sample_ids(self) -> list[str]:
        """Modality-independent id of each image, in order (read from the entry on demand)."""
        ids = (self.path / "ids.txt").read_text().splitlines()
        return ids if self.rows is None else [ids[i] for i in self.rows]

    def ignore_regions(self) -> list[dict[str, np.ndarray]]:
        """Per image ``{"boxes", "labels"}`` of its ignore regions (empty arrays if none)."""
        if not self.ignore_boxes:
            empty = {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64)}
            return [empty] * len(self)
        return [
            {"boxes": b, "labels": lab}
            for b, lab in zip(self.ignore_boxes, self.ignore_labels, strict=True)
        ]


def cache_key(source_fp: str, size: tuple[int, int], label_key: str) -> str:
    """The cache key: source fingerprint + resize settings + label map + cache version."""
    text = f"{CACHE_VERSION}|{RESIZE_RULE}|{size[0]}x{size[1]}|{label_key}|{source_fp}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def entry_dir(dataset: str, modality: str, split: str, size: tuple[int, int], key: str) -> Path:
    """Folder of a cache entry."""
    return paths.cache_root() / dataset / f"{modality}-{split}-{size[0]}x{size[1]}-{key[:12]}"


def open_entry(folder: Path, domain: str, split: str) -> CachedSplit:
    """Open a complete cache entry (read-only memmaps)."""
    meta = json.loads((folder / "meta.json").read_text())
    images = np.load(folder / "images.npy", mmap_mode="r")
    split_ = CachedSplit(
        domain=domain,
        split=split,
        size=tuple(meta["size"]),  # type: ignore[arg-type]
        task=meta["task"],
        images=images,
        class_names=tuple(meta["class_names"]),
        fingerprint=meta["fingerprint"],
        path=folder,
        notes=tuple(meta["notes"]),
    )
    if split_.task == "detection":
        split_.boxes, split_.labels = _load_boxes(folder, "")
        split_.ignore_boxes, split_.ignore_labels = _load_boxes(folder, "ignore_")
    else:
        split_.targets = np.load(folder / "targets.npy")
    return split_


def _load_boxes(folder: Path, prefix: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    offsets = np.load(folder / f"{prefix}offsets.npy")
    boxes = np.load(folder / f"{prefix}boxes.npy")
    labels = np.load(folder / f"{prefix}labels.npy")
    spans = list(zip(offsets[:-1], offsets[1:], strict=True))
    return [boxes[a:b] for a, b in spans], [labels[a:b] for a, b in spans]


def build_entry(
    folder: Path,
    index: SplitIndex,
    size: tuple[int, int],
    fingerprint: str,
    workers: int | None = None,
) -> None:
    """Decode and resize every sample into a new entry at ``folder``, atomically.

    Args:
        folder: The entry's folder (written through a temporary folder, then renamed).
        index: The split's samples.
        size: (width, height) of every image.
        fingerprint: Recorded in ``meta.json``.
        workers: Decoding threads (default :func:`decode_workers`).

    Raises:
        CapstudyError: an image could not be decoded (every failing file is named).
    """
    remove_stale_temporaries(folder)  # left by a build that was killed (we hold the lock)
    # replace_dir: an entry without its marker (copied in half) is replaced.
    with atomic_path(folder, replace_dir=True) as tmp:
        tmp.mkdir()
        _write_arrays(tmp, index, size, workers)
        (tmp / "ids.txt").write_text("".join(f"{sample_id(s.image)}\n" for s in index.samples))
        notes = [str(p) for p in index.problems if p.severity == "warning"]
        meta = {
            "size": list(size),
            "task": index.task,
            "class_names": list(index.class_names),
            "fingerprint": fingerprint,
            "count": len(index.samples),
            "notes": notes,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        (tmp / COMPLETE).write_text("ok\n")


def _write_arrays(tmp: Path, index: SplitIndex, size: tuple[int, int], workers: int | None) -> None:
    w, h = size
    n = len(index.samples)
    images = np.lib.format.open_memmap(tmp / "images.npy", "w+", np.uint8, (max(n, 0), h, w, 3))
    sources = _decode_all(images, [s.image for s in index.samples], size, workers)
    images.flush()
    del images
    if index.task == "classification":
        targets = np.array([s.target for s in index.samples], dtype=np.int64)
        np.save(tmp / "targets.npy", targets)
        return
    kept, ignored = [], []
    for s, src in zip(index.samples, sources, strict=True):
        # Boxes are scaled with the annotation's own image size when it gives one: in aligned
        # pairs both modalities share the thermal frame's annotation even if sizes differ.
        ref_w, ref_h = s.ann_size or src
        scale = np.array([w / ref_w, h / ref_h] * 2)
        b = np.asarray(s.boxes, dtype=np.float64).reshape(-1, 4) * scale
        b = np.clip(b, 0, [w, h, w, h]).astype(np.float32)
        lab = np.asarray(s.labels, dtype=np.int64)
        flag = np.asarray(s.ignore or [False] * len(lab), dtype=bool)
        kept.append((b[~flag], lab[~flag]))
        ignored.append((b[flag], lab[flag]))
    _save_boxes(tmp, "", kept)
    _save_boxes(tmp, "ignore_", ignored)


def _save_boxes(tmp: Path, prefix: str, per_image: list[tuple[np.ndarray, np.ndarray]]) -> None:
    offsets = np.cumsum([0] + [len(lab) for _, lab in per_image]).astype(np.int64)
    boxes = [b for b, _ in per_image] or [np.zeros((0, 4), np.float32)]
    labels = [lab for _, lab in per_image] or [np.zeros(0, np.int64)]
    np.save(tmp / f"{prefix}boxes.npy", np.concatenate(boxes).astype(np.float32).reshape(-1, 4))
    np.save(tmp / f"{prefix}labels.npy", np.concatenate(labels).astype(np.int64))
    np.save(tmp / f"{prefix}offsets.npy", offsets)


def decode_workers() -> int:
    """Threads that decode a cache build: ``$CAPSTUDY_DECODE_WORKERS``, else this process's CPUs.

    The CPUs are those this process may run on (``os.sched_getaffinity``: a SLURM step or a
    container pinned to a few cores gets that many, not the machine's count; Ray does not
    pin tasks), capped at :data:`MAX_DECODE_WORKERS`. A build runs once per entry and node,
    so it may take the node's cores for that while.

    Raises:
        CapstudyError: the variable is set but is not an integer >= 1.
    """
    env = os.environ.get(DECODE_WORKERS_ENV, "").strip()
    if env:
        try:
            value = int(env)
        except ValueError:
            value = 0
        if value < 1:
            raise CapstudyError(
                f"{DECODE_WORKERS_ENV}={env!r}: must be an integer >= 1 (threads that decode "
                "a cache build); unset it to use this process's CPUs"
            )
        return value
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no affinity call
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DECODE_WORKERS))


def _decode_into(images: np.ndarray, i: int, f: Path, size: tuple[int, int]) -> tuple:
    """Decode file ``i`` into its row; (source size, None) or (None, the error message)."""
    try:
        images[i], src = decode_resized(f, size)
    except CapstudyError as exc:
        return None, str(exc)
    return src, None


def _decoded(images: np.ndarray, files: list[Path], size: tuple[int, int], workers: int):
    """``_decode_into`` over every file, results in file order.

    Each thread writes its image straight into its memmap row (distinct rows: no lock), so
    only (source size, error) comes back; at most ``4 * workers`` files are in flight, so
    neither decoded images nor futures pile up for a million-image split.
    """
    if workers == 1:
        yield from (_decode_into(images, i, f, size) for i, f in enumerate(files))
        return
    window: deque[Future] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="capstudy-decode") as pool:
        for i, f in enumerate(files):
            window.append(pool.submit(_decode_into, images, i, f, size))
            if len(window) >= 4 * workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def _decode_all(
    images: np.ndarray, files: list[Path], size: tuple[int, int], workers: int | None = None
) -> list:
    """Decode every file into ``images``; collect all failures before raising.

    Pillow releases the GIL while it decodes, converts and resizes, so threads decode in
    parallel (``benchmarks/cache_build.py`` measures the speed-up); the result is the same,
    byte for byte, whatever the number of threads.

    Args:
        images: (N, H, W, 3) uint8 array (the entry's memmap) to fill.
        files: The N image files, in row order.
        size: (width, height) of every row.
        workers: Decoding threads (default :func:`decode_workers`).
    """
    workers = workers or decode_workers()
    sources: list[tuple[int, int]] = []
    failures: list[str] = []
    for i, (src, error) in enumerate(_decoded(images, files, size, workers)):
        if error is not None:
            failures.append(error)
            src = size
        sources.append(src)
        if i and i % 2000 == 0:
            log.info("cached %d/%d images", i, len(files))
    if failures:
        shown = "\n  ".join(failures[:10])
        more = f"\n  … and {len(failures) - 10} more" if len(failures) > 10 else ""
        raise CapstudyError(f"{len(failures)} image(s) could not be decoded:\n  {shown}{more}")
    return sources
