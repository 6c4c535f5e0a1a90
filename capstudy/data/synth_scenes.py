"""Procedural scenes for the synthetic detection datasets.

Three styles, chosen so a study sees real domain shifts:

* ``street`` (synth_a, FLIR-like dash camera): low viewpoint with a horizon, sky, buildings and
  a road; perspective makes near objects large (people 34–150 px tall in a 256 px frame); mostly
  day; saturated colours; crisp "white-hot" thermal.
* ``plaza`` (synth_b, LLVIP-like surveillance camera): high viewpoint looking down on paving and
  lawns, no sky; pedestrians only, as LLVIP annotates only people (so the fair-class path of a
  synth_a ↔ synth_b shift is exercised), smaller and seen from above; mostly
  night under sodium light; warm pavement and lower-contrast, noisier, blurrier thermal with
  column fixed-pattern noise.
* ``generic`` (synth_coco): RGB only, random textured backgrounds, seven classes, no perspective.

RGB and thermal share one geometry per scene, so they are aligned pairs; their appearance
differs (colour and light vs. heat), which is the RGB → thermal shift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from capstudy.data.synth_draw import ASPECT, DRAWERS, RELATIVE_HEIGHT, Pen

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Style:
    """Everything that differs between the synthetic datasets' scenes."""

    name: str
    classes: tuple[tuple[str, float], ...]  # (class, probability)
    objects: tuple[int, int]  # min, max objects per image (inclusive)
    person_height: tuple[float, float]  # far, near person height as a fraction of the frame
    night: float  # probability of a night scene
    thermal: bool
    ir_gain: float = 1.0  # thermal contrast of objects over background
    ir_blur: float = 0.8
    ir_noise: float = 4.0
    ir_column_noise: float = 0.0
    ir_ground: int = 105
    tint_day: tuple[float, float, float] = (1.0, 1.0, 1.0)
    tint_night: tuple[float, float, float] = (0.7, 0.8, 1.2)


STYLES = {
    "street": Style(
        "street",
        (("car", 0.45), ("person", 0.4), ("bicycle", 0.15)),
        (1, 4),
        (0.14, 0.58),
        0.3,
        True,
    ),
    "plaza": Style(
        "plaza",
        (("person", 1.0),),
        (1, 5),
        (0.12, 0.26),
        0.6,
        True,
        ir_gain=0.7,
        ir_blur=1.4,
        ir_noise=7.0,
        ir_column_noise=5.0,
        ir_ground=135,
        tint_day=(0.85, 1.0, 0.85),
        tint_night=(1.25, 0.85, 0.45),
    ),
    "generic": Style(
        "generic",
        (
            ("person", 0.3),
            ("car", 0.2),
            ("bicycle", 0.12),
            ("bus", 0.08),
            ("dog", 0.1),
            ("traffic light", 0.1),
            ("stop sign", 0.1),
        ),
        (1, 5),
        (0.15, 0.6),
        0.1,
        False,
    ),
}


def render_scene(
    style: Style, rng: np.random.Generator, size: tuple[int, int]
) -> tuple[Image.Image, Image.Image | None, list[tuple[str, Box]]]:
    """Render one scene.

    Returns:
        (RGB image, thermal image (mode L) or None, [(class name, box xyxy)]).
    """
    w, h = size
    night = bool(rng.random() < style.night)
    horizon = int(h * rng.uniform(0.36, 0.48)) if style.name == "street" else 0
    rgb, temp = _background(style, rng, size, night, horizon)
    objects = _place(style, rng, size, horizon)
    pen = Pen(rgb, temp)
    topdown = style.name == "plaza"
    for name, box in objects:
        heat = rng.uniform(0.9, 1.05)
        DRAWERS[name](pen, box, rng, heat, topdown)
    rgb = _finish_rgb(rgb, style, rng, night)
    ir = _finish_thermal(temp, style, rng) if temp is not None else None
    return rgb, ir, objects


def _background(
    style: Style, rng: np.random.Generator, size: tuple[int, int], night: bool, horizon: int
) -> tuple[Image.Image, Image.Image | None]:
    w, h = size
    ys = np.linspace(0, 1, h)[:, None, None]
    if style.name == "street":
        sky = np.array([110, 160, 225]) * rng.uniform(0.7, 1.1)
        ground = np.array([95, 95, 100]) * rng.uniform(0.7, 1.2)
        arr = np.where(np.arange(h)[:, None, None] < horizon, sky * (0.8 + 0.4 * ys), ground)
        arr = np.broadcast_to(arr, (h, w, 3)).copy()
        t = np.where(np.arange(h)[:, None] < horizon, 35.0, style.ir_ground + 20 * ys[:, :, 0])
        t = np.broadcast_to(t, (h, w)).copy()
    elif style.name == "plaza":
        base = np.array([150, 140, 120]) * rng.uniform(0.7, 1.1)
        tiles = ((np.arange(h)[:, None] // 16 + np.arange(w)[None] // 16) % 2) * 12.0
        arr = base + tiles[:, :, None] + _noise(rng, (h, w, 1), 6)
        t = style.ir_ground + tiles * 0.5 + _noise(rng, (h, w), 3)
    else:
        arr = rng.uniform(40, 220, 3) + (rng.uniform(-80, 80, 3) * ys) + _noise(rng, (h, w, 1), 10)
        t = None
    rgb = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    temp = Image.fromarray(np.clip(t, 0, 255).astype(np.uint8), "L") if t is not None else None
    _clutter(Pen(rgb, temp), style, rng, size, horizon, night)
    return rgb, temp


def _clutter(
    pen: Pen,
    style: Style,
    rng: np.random.Generator,
    size: tuple[int, int],
    horizon: int,
    night: bool,
) -> None:
    """Distractors that are not objects: buildings, lane marks, lawns, trees, lamp posts."""
    w, h = size

    def col() -> tuple[int, ...]:
        return tuple(int(v) for v in rng.integers(40, 200, 3))

    if style.name == "street":
        x = 0.0
        while x < w:
            bw, bh = rng.uniform(30, 90), rng.uniform(20, horizon * 0.9 + 1)
            pen.rect((x, horizon - bh, x + bw, horizon), col(), int(rng.uniform(70, 110)))
            x += bw + rng.uniform(0, 15)
        for k in range(6):
            y = horizon + (h - horizon) * (k + 0.5) / 6
            pen.rect((w / 2 - 2 - k, y, w / 2 + 2 + k, y + 3 + k), (230, 230, 220), 115)
    elif style.name == "plaza":
        for _ in range(int(rng.integers(1, 4))):
            x, y = rng.uniform(0, w), rng.uniform(0, h)
            rx, ry = rng.uniform(20, 70), rng.uniform(15, 50)
            pen.ellipse((x - rx, y - ry, x + rx, y + ry), (60, 120, 50), 85)
        for _ in range(int(rng.integers(0, 3))):
            x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(8, 20)
            pen.ellipse((x - r, y - r, x + r, y + r), (30, 80, 30), 75)
    else:
        for _ in range(int(rng.integers(2, 7))):
            x, y = rng.uniform(0, w), rng.uniform(0, h)
            pen.rect((x, y, x + rng.uniform(10, 80), y + rng.uniform(10, 80)), col(), 0)
    if night and style.thermal:  # warm lamp posts: bright in thermal, a false-positive lure
        for _ in range(int(rng.integers(1, 3))):
            x = rng.uniform(0, w)
            pen.rect((x, h * 0.1, x + 3, h * 0.6), (80, 80, 80), 170)


def _place(
    style: Style, rng: np.random.Generator, size: tuple[int, int], horizon: int
) -> list[tuple[str, Box]]:
    """Choose classes and non-overlapping boxes, far objects first (drawn behind)."""
    w, h = size
    names = [c for c, _ in style.classes]
    probs = np.array([p for _, p in style.classes])
    n = int(rng.integers(style.objects[0], style.objects[1] + 1))
    placed: list[tuple[float, str, Box]] = []
    for _ in range(n * 15):
        if len(placed) == n:
            break
        name = names[int(rng.choice(len(names), p=probs / probs.sum()))]
        near = rng.uniform(0, 1)
        far_h, near_h = style.person_height
        ph = h * (far_h + (near_h - far_h) * near)
        bh = ph * RELATIVE_HEIGHT[name]
        bw = bh * ASPECT[name][1 if style.name == "plaza" else 0] * rng.uniform(0.9, 1.1)
        if style.name == "street":  # stand on the ground: nearer means lower in the frame
            bottom = horizon + 4 + (h - horizon - 4) * near
        else:
            bottom = rng.uniform(bh, h)
        x1 = rng.uniform(0, max(1.0, w - bw))
        box = (x1, bottom - bh, x1 + bw, bottom)
        if box[1] < 0 or box[2] > w or box[3] > h:
            continue
        if any(_iou(box, b) > 0.15 for _, _, b in placed):
            continue
        placed.append((bottom, name, tuple(round(v, 1) for v in box)))  # type: ignore[misc]
    placed.sort(key=lambda t: t[0])
    return [(name, box) for _, name, box in placed]


def _iou(a: Box, b: Box) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    # float32 draws: half the cost of float64 and the noise is quantised to uint8 anyway.
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)


def _finish_rgb(
    im: Image.Image, style: Style, rng: np.random.Generator, night: bool
) -> Image.Image:
    arr = np.asarray(im, dtype=np.float32)
    if night:
        # Low light: dark, colour-cast, with sensor noise that swamps detail.
        arr = arr * (rng.uniform(0.22, 0.4) * np.array(style.tint_night, np.float32))
        arr += _noise(rng, arr.shape[:2] + (1,), 9) + _noise(rng, arr.shape, 4)
    else:
        arr = arr * (rng.uniform(0.85, 1.15) * np.array(style.tint_day, np.float32))
        arr += _noise(rng, arr.shape, 3)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _finish_thermal(temp: Image.Image, style: Style, rng: np.random.Generator) -> Image.Image:
    temp = temp.filter(ImageFilter.GaussianBlur(style.ir_blur))
    t = np.asarray(temp, dtype=np.float32)
    mean = float(t.mean())
    t = mean + (t - mean) * style.ir_gain  # weaker heat contrast in the plaza camera
    t += _noise(rng, t.shape, style.ir_noise)
    if style.ir_column_noise:
        t += rng.normal(0, style.ir_column_noise, (1, t.shape[1]))
    return Image.fromarray(np.clip(t, 0, 255).astype(np.uint8), "L")
