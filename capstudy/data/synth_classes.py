"""The classification pretraining proxy: 120 classes of shape × appearance at 64x64.

A class is one of 12 shapes drawn with one of 10 appearances (seven hues and three textures:
stripes, checks, outline). Position, size, rotation, hue and background vary within a class, so
a tiny CNN must learn shape and colour/texture features, the kind ImageNet pretraining gives.
"""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw

SHAPES = (
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "ring",
    "diamond",
    "hexagon",
    "crescent",
    "arrow",
    "bars",
    "heart",
)
HUES = {
    "red": 0.0,
    "orange": 0.08,
    "yellow": 0.16,
    "green": 0.33,
    "cyan": 0.5,
    "blue": 0.63,
    "purple": 0.8,
}
TEXTURES = ("striped", "checked", "outline")
APPEARANCES = (*HUES, *TEXTURES)


def class_names() -> tuple[str, ...]:
    """Folder names of the 120 classes, e.g. ``s007_star_green`` (sorted = index order)."""
    return tuple(
        f"s{i * len(APPEARANCES) + j:03d}_{shape}_{look}"
        for i, shape in enumerate(SHAPES)
        for j, look in enumerate(APPEARANCES)
    )


def _polygon(shape: str, cx: float, cy: float, r: float, rot: float) -> list[tuple[float, float]]:
    if shape == "star":
        radii, n = [r if k % 2 == 0 else r * 0.45 for k in range(10)], 10
    elif shape == "arrow":
        pts = [(-1, -0.25), (0.2, -0.25), (0.2, -0.6), (1, 0), (0.2, 0.6), (0.2, 0.25), (-1, 0.25)]
        return _rotate([(x * r, y * r) for x, y in pts], cx, cy, rot)
    elif shape == "cross":
        a = 0.33
        pts = [
            (-a, -1),
            (a, -1),
            (a, -a),
            (1, -a),
            (1, a),
            (a, a),
            (a, 1),
            (-a, 1),
            (-a, a),
            (-1, a),
            (-1, -a),
            (-a, -a),
        ]
        return _rotate([(x * r, y * r) for x, y in pts], cx, cy, rot)
    else:
        n = {"triangle": 3, "square": 4, "diamond": 4, "hexagon": 6}[shape]
        radii = [r * (1.0 if shape != "diamond" or k % 2 else 0.6) for k in range(n)]
    return [
        (cx + rr * np.cos(rot + 2 * np.pi * k / n), cy + rr * np.sin(rot + 2 * np.pi * k / n))
        for k, rr in enumerate(radii)
    ]


def _rotate(pts: list[tuple[float, float]], cx: float, cy: float, rot: float):
    c, s = np.cos(rot), np.sin(rot)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts]


def _mask(shape: str, size: int, rng: np.random.Generator, outline: bool) -> Image.Image:
    m = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(m)
    r = size * rng.uniform(0.22, 0.4)
    cx, cy = rng.uniform(r, size - r, 2)
    rot = rng.uniform(0, 2 * np.pi)
    box = (cx - r, cy - r, cx + r, cy + r)
    width = max(2, int(r / 4)) if outline else 0
    if shape in ("circle", "ring", "crescent"):
        d.ellipse(box, fill=None if outline else 255, outline=255, width=width or 1)
        if shape == "ring" and not outline:
            d.ellipse((cx - r * 0.55, cy - r * 0.55, cx + r * 0.55, cy + r * 0.55), fill=0)
        if shape == "crescent":
            dx, dy = r * 0.5 * np.cos(rot), r * 0.5 * np.sin(rot)
            d.ellipse((cx - r + dx, cy - r + dy, cx + r + dx, cy + r + dy), fill=0)
    elif shape == "bars":
        for k in (-1, 0, 1):
            pts = [
                (-r, k * r * 0.6 - r * 0.15),
                (r, k * r * 0.6 - r * 0.15),
                (r, k * r * 0.6 + r * 0.15),
                (-r, k * r * 0.6 + r * 0.15),
            ]
            d.polygon(_rotate(pts, cx, cy, rot), fill=255)
    elif shape == "heart":
        d.ellipse((cx - r, cy - r, cx, cy), fill=255)
        d.ellipse((cx, cy - r, cx + r, cy), fill=255)
        d.polygon([(cx - r, cy - r / 2), (cx + r, cy - r / 2), (cx, cy + r)], fill=255)
    else:
        pts = _polygon(shape, cx, cy, r, rot)
        if outline:
            d.line([*pts, pts[0]], fill=255, width=width)
        else:
            d.polygon(pts, fill=255)
    return m


def _rgb(hue: float, rng: np.random.Generator) -> tuple[int, int, int]:
    h = (hue + rng.uniform(-0.025, 0.025)) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


def render_class_image(index: int, rng: np.random.Generator, size: int = 64) -> Image.Image:
    """Render one image of class ``index`` (0..119)."""
    shape = SHAPES[index // len(APPEARANCES)]
    look = APPEARANCES[index % len(APPEARANCES)]
    # Low-saturation noisy background so colour belongs to the object, not the scene.
    base = rng.uniform(60, 190) + rng.uniform(-25, 25, 3)
    bg = base + rng.standard_normal((size, size, 1), dtype=np.float32) * 12
    im = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8), "RGB")
    mask = _mask(shape, size, rng, outline=look == "outline")
    if look in HUES:
        fill = Image.new("RGB", (size, size), _rgb(HUES[look], rng))
    else:
        a, b = _rgb(rng.uniform(0, 1), rng), _rgb(rng.uniform(0, 1), rng)
        yy, xx = np.mgrid[0:size, 0:size]
        period = int(rng.integers(4, 8))
        if look == "striped":
            pat = ((xx + yy) // period) % 2
        elif look == "checked":
            pat = (xx // period + yy // period) % 2
        else:
            pat = np.zeros_like(xx)
            b = (250, 250, 250) if rng.random() < 0.5 else (15, 15, 15)
            a = b
        fill = Image.fromarray(np.where(pat[..., None] == 1, a, b).astype(np.uint8), "RGB")
    im.paste(fill, (0, 0), mask)
    return im
