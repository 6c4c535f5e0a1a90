"""Readers for the VOC-XML layouts: FLIR ADAS aligned pairs and LLVIP.

FLIR ADAS aligned (the RGB–thermal aligned release used by multispectral detection papers)::

    <root>/JPEGImages/FLIR_08865_PreviewData.jpeg   thermal (8-bit grey JPEG)
    <root>/JPEGImages/FLIR_08865_RGB.jpg            RGB, aligned to the thermal frame
    <root>/Annotations/FLIR_08865_PreviewData.xml   VOC XML (``FLIR_08865.xml`` also accepted)
    <root>/align_train.txt, align_validation.txt    one stem per line (``FLIR_08865`` or
                                                    ``FLIR_08865_PreviewData``); also looked
                                                    for in ``ImageSets/Main/``. A nested
                                                    ``<root>/align/`` is accepted too.

LLVIP::

    <root>/visible/{train,test}/010001.jpg
    <root>/infrared/{train,test}/010001.jpg         same name as its visible pair
    <root>/Annotations/010001.xml                   one VOC XML for both modalities
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from capstudy.data.domains import SPLIT_ALIASES
from capstudy.data.index import Problem, RawIndex, RawSample

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
_FLIR_SUFFIXES = ("_PreviewData", "_RGB")


def parse_voc(path: Path) -> tuple[RawSample, list[Problem]]:
    """Parse one VOC XML file into a sample (image path left empty) and its problems.

    VOC corners are 1-based and inclusive, so ``xmin - 1`` / ``xmax`` give the 0-based box
    with exclusive right/bottom edges used everywhere else in the program. Objects marked
    ``<difficult>1</difficult>`` become ignore regions, as in the VOC protocol: a detection
    on one is neither a hit nor a false positive.
    """
    sample = RawSample(image=Path(), source=path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        return sample, [Problem(str(path), f"cannot parse VOC XML ({exc})")]
    problems: list[Problem] = []
    size = root.find("size")
    if size is not None:
        try:
            w, h = int(float(size.findtext("width", "0"))), int(float(size.findtext("height", "0")))
            sample.ann_size = (w, h) if w > 0 and h > 0 else None
        except ValueError:
            problems.append(Problem(str(path), "non-numeric <size>"))
    for i, obj in enumerate(root.iter("object")):
        name = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        if not name or box is None:
            problems.append(Problem(str(path), f"object {i} lacks <name> or <bndbox>"))
            continue
        try:
            xmin, ymin, xmax, ymax = (float(box.findtext(k, "")) for k in _CORNERS)
        except ValueError:
            problems.append(Problem(str(path), f"object {i} ({name}) has a non-numeric corner"))
            continue
        sample.objects.append((name, xmin - 1, ymin - 1, xmax, ymax))
        sample.ignore.append((obj.findtext("difficult") or "0").strip() in ("1", "true"))
    return sample, problems


_CORNERS = ("xmin", "ymin", "xmax", "ymax")


def _flir_base(root: Path) -> Path:
    nested = root / "align"
    if not (root / "JPEGImages").is_dir() and (nested / "JPEGImages").is_dir():
        return nested
    return root


def _flir_stem(line: str) -> str:
    name = Path(line.strip().split()[0]).name
    for ext in (".jpeg", ".jpg", ".xml", ".png"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
    for suffix in _FLIR_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def flir_split_list(root: Path, split: str) -> Path | None:
    """The split list file of a FLIR aligned folder, or None when it is missing."""
    base = _flir_base(root)
    for name in SPLIT_ALIASES["flir_aligned"][split]:
        for folder in (base, base / "ImageSets" / "Main", root):
            if (folder / f"{name}.txt").is_file():
                return folder / f"{name}.txt"
    return None


def read_flir_aligned(root: Path, split: str, modality: str, parse: bool = True) -> RawIndex:
    """Index one split of a FLIR-aligned folder (see the module docstring for the layout)."""
    base = _flir_base(root)
    listing = flir_split_list(root, split)
    if listing is None:
        want = " or ".join(f"{n}.txt" for n in SPLIT_ALIASES["flir_aligned"][split])
        return RawIndex("detection", [], [Problem(str(base), f"missing split list {want}")])
    stems = [_flir_stem(line) for line in listing.read_text().splitlines() if line.strip()]
    samples, problems, sources = [], [], [listing]
    for stem in stems:
        ir = base / "JPEGImages" / f"{stem}_PreviewData.jpeg"
        rgb = base / "JPEGImages" / f"{stem}_RGB.jpg"
        image, pair = (rgb, ir) if modality == "rgb" else (ir, rgb)
        xml = base / "Annotations" / f"{stem}_PreviewData.xml"
        if not xml.is_file() and (base / "Annotations" / f"{stem}.xml").is_file():
            xml = base / "Annotations" / f"{stem}.xml"
        sources += [image, xml]
        if not parse:
            continue
        sample, found = _paired_sample(image, pair, xml, f"listed in {listing.name}", modality)
        problems += found
        if sample is not None:
            samples.append(sample)
    return RawIndex("detection", samples, problems, sources=sources)


def _paired_sample(
    image: Path, pair: Path, xml: Path, why: str, modality: str
) -> tuple[RawSample | None, list[Problem]]:
    problems = []
    kind, other = ("RGB", "thermal") if modality == "rgb" else ("thermal", "RGB")
    if not image.is_file():
        problems.append(Problem(str(image), f"missing {kind} image ({why})"))
    elif not pair.is_file():
        problems.append(Problem(str(image), f"{kind} image without its {other} pair {pair}"))
    if not xml.is_file():
        problems.append(Problem(str(xml), "missing annotation"))
        return None, problems
    sample, found = parse_voc(xml)
    sample.image, sample.pair = image, pair
    problems += found
    if problems:
        return None, problems
    return sample, problems


def read_llvip(root: Path, split: str, modality: str, parse: bool = True) -> RawIndex:
    """Index one split of an LLVIP folder (see the module docstring for the layout)."""
    (folder,) = SPLIT_ALIASES["llvip"][split]
    dirs = {"rgb": root / "visible" / folder, "ir": root / "infrared" / folder}
    missing = [str(d) for d in dirs.values() if not d.is_dir()]
    if missing:
        return RawIndex("detection", [], [Problem(m, "missing image folder") for m in missing])
    names = {m: _images_in(d) for m, d in dirs.items()}
    other = "ir" if modality == "rgb" else "rgb"
    samples, problems, sources = [], [], []
    # Pairs missing in the requested modality are reported too: a paired dataset with
    # one-sided images would silently give the two modalities different sample sets.
    for stem in sorted(names["rgb"].keys() | names["ir"].keys()):
        image = names[modality].get(stem, dirs[modality] / f"{stem}.jpg")
        pair = names[other].get(stem, dirs[other] / f"{stem}.jpg")
        xml = root / "Annotations" / f"{stem}.xml"
        sources += [image, xml]
        if not parse:
            continue
        sample, found = _paired_sample(image, pair, xml, "its pair exists", modality)
        problems += found
        if sample is not None:
            samples.append(sample)
    return RawIndex("detection", samples, problems, sources=sources)


def _images_in(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
