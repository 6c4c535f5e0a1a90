"""Dispatch from a dataset format to its reader; a split's file list and its fingerprint."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from capstudy.data.cocofmt import read_coco, read_flir_v2
from capstudy.data.domains import check_split
from capstudy.data.folders import read_domainnet, read_imagefolder
from capstudy.data.index import RawIndex, fingerprint_files
from capstudy.data.voc import read_flir_aligned, read_llvip

Reader = Callable[..., RawIndex]

READERS: Mapping[str, Reader] = {
    "flir_aligned": read_flir_aligned,
    "flir_v2": read_flir_v2,
    "llvip": read_llvip,
    "coco": read_coco,
    "imagefolder": read_imagefolder,
    "domainnet": read_domainnet,
}

# Files whose bytes define the labels; everything else is an image hashed by name and size.
CONTENT_SUFFIXES = frozenset({".xml", ".json", ".txt"})


def read_raw(fmt: str, root: Path, split: str, modality: str, parse: bool = True) -> RawIndex:
    """Run the reader of ``fmt`` on one split of the folder ``root``."""
    return READERS[fmt](root, check_split(split), modality, parse=parse)


def list_sources(fmt: str, root: Path, split: str, modality: str) -> list[Path]:
    """Every file one split depends on (the reader's listing, no parsing or decoding)."""
    raw = read_raw(fmt, root, split, modality, parse=False)
    return raw.sources or [Path(p.path) for p in raw.problems]


def source_fingerprint_of(files: list[Path]) -> str:
    """Fingerprint of a listed split: names and sizes of images, bytes of label files."""
    return fingerprint_files(files, lambda f: f.suffix.lower() in CONTENT_SUFFIXES)
