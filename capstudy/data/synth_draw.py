"""Drawing primitives for the synthetic benchmark: one geometry, two renderings.

Each object is drawn with the same shapes into an RGB image (colours, textures) and, when
present, into a thermal "temperature" image (8-bit values: people and engines warm, glass and
sky cold), so the RGB and thermal renderings of a scene are pixel-aligned pairs whose appearance
differs the way real ones do. Every drawer fills its box (x1, y1, x2, y2) edge to edge, so the
box is the object's exact extent.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

Box = tuple[float, float, float, float]
RGB = tuple[int, int, int]


class Pen:
    """Draws each shape on the RGB canvas and, with its own value, on the thermal canvas."""

    def __init__(self, rgb: Image.Image, ir: Image.Image | None) -> None:
        self.r = ImageDraw.Draw(rgb)
        self.t = ImageDraw.Draw(ir) if ir is not None else None

    def ellipse(self, xy: Box, rgb: RGB, ir: int, width: int = 0) -> None:
        if width:
            self.r.ellipse(xy, outline=rgb, width=width)
            if self.t:
                self.t.ellipse(xy, outline=ir, width=width)
            return
        self.r.ellipse(xy, fill=rgb)
        if self.t:
            self.t.ellipse(xy, fill=ir)

    def rect(self, xy: Box, rgb: RGB, ir: int, radius: float = 0) -> None:
        self.r.rounded_rectangle(xy, radius=radius, fill=rgb)
        if self.t:
            self.t.rounded_rectangle(xy, radius=radius, fill=ir)

    def polygon(self, pts: list[tuple[float, float]], rgb: RGB, ir: int) -> None:
        self.r.polygon(pts, fill=rgb)
        if self.t:
            self.t.polygon(pts, fill=ir)

    def line(self, pts: list[tuple[float, float]], rgb: RGB, ir: int, width: int) -> None:
        self.r.line(pts, fill=rgb, width=width)
        if self.t:
            self.t.line(pts, fill=ir, width=width)


def _colour(rng: np.random.Generator, lo: int = 20, hi: int = 235) -> RGB:
    return tuple(int(v) for v in rng.integers(lo, hi, 3))  # type: ignore[return-value]


def _shade(c: RGB, f: float) -> RGB:
    return tuple(int(min(255, max(0, v * f))) for v in c)  # type: ignore[return-value]


def draw_person(pen: Pen, box: Box, rng: np.random.Generator, heat: float, topdown: bool) -> None:
    """A person: head, torso, legs and arms; clothes coloured, skin hottest in thermal."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    skin = _shade((200, 160, 130), rng.uniform(0.5, 1.1))
    shirt, trousers = _colour(rng), _colour(rng, 10, 160)
    head_h = h * (0.28 if topdown else 0.18)  # seen from above the head looks bigger
    waist = y1 + h * (0.62 if topdown else 0.55)
    cx = (x1 + x2) / 2
    hw = min(w * 0.5, head_h * 0.45)
    pen.ellipse((cx - hw, y1, cx + hw, y1 + head_h), skin, int(235 * heat))
    pen.rect(
        (x1 + w * 0.18, y1 + head_h * 0.95, x2 - w * 0.18, waist), shirt, int(205 * heat), w * 0.12
    )
    arm = max(2, int(w * 0.16))
    pen.line(
        [(x1 + arm / 2, y1 + head_h * 1.2), (x1 + arm / 2, waist)], shirt, int(195 * heat), arm
    )
    pen.line(
        [(x2 - arm / 2, y1 + head_h * 1.2), (x2 - arm / 2, waist)], shirt, int(195 * heat), arm
    )
    leg = w * 0.26
    pen.rect((cx - leg - 1, waist, cx - 1, y2), trousers, int(185 * heat))
    pen.rect((cx + 1, waist, cx + leg + 1, y2), trousers, int(185 * heat))


def draw_car(pen: Pen, box: Box, rng: np.random.Generator, heat: float, topdown: bool) -> None:
    """A car: body, cabin with cold glass, warm tyres and a hot engine end."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    body = _colour(rng)
    glass = (40, 60, 90)
    amb = int(120 * heat)
    if topdown:  # roof view: body, windscreen and rear window, wheels just showing
        pen.rect((x1, y1, x2, y2), body, amb + 20, min(w, h) * 0.25)
        pen.rect((x1 + w * 0.2, y1 + h * 0.15, x1 + w * 0.35, y2 - h * 0.15), glass, 60)
        pen.rect(
            (x1 + w * 0.38, y1 + h * 0.15, x2 - w * 0.25, y2 - h * 0.15), _shade(body, 0.8), amb
        )
        pen.rect(
            (x2 - w * 0.2, y1 + h * 0.1, x2 - w * 0.02, y2 - h * 0.1),
            _shade(body, 1.1),
            int(215 * heat),
        )
        return
    cabin_top = y1
    body_top = y1 + h * 0.38
    pen.polygon(
        [
            (x1 + w * 0.2, body_top),
            (x1 + w * 0.3, cabin_top),
            (x2 - w * 0.28, cabin_top),
            (x2 - w * 0.12, body_top),
        ],
        _shade(body, 0.9),
        amb,
    )
    pen.polygon(
        [
            (x1 + w * 0.26, body_top - 1),
            (x1 + w * 0.33, cabin_top + h * 0.07),
            (x2 - w * 0.31, cabin_top + h * 0.07),
            (x2 - w * 0.18, body_top - 1),
        ],
        glass,
        55,
    )
    wheel = h * 0.32
    pen.rect((x1, body_top, x2, y2 - wheel * 0.45), body, amb + 25, h * 0.08)
    pen.rect(
        (x2 - w * 0.18, body_top + h * 0.08, x2, y2 - wheel * 0.5),
        _shade(body, 1.1),
        int(220 * heat),
    )
    for cx in (x1 + w * 0.22, x2 - w * 0.22):
        pen.ellipse((cx - wheel / 2, y2 - wheel, cx + wheel / 2, y2), (20, 20, 20), int(175 * heat))


def draw_bicycle(pen: Pen, box: Box, rng: np.random.Generator, heat: float, topdown: bool) -> None:
    """A bicycle: two wheels and a frame; tyres and hubs slightly warm from use."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    frame = _colour(rng)
    lw = max(2, int(min(w, h) / 9))
    r = min(h * 0.5, w * 0.3)
    wy = y2 - r
    left, right = (x1 + r, wy), (x2 - r, wy)
    for cx, cy in (left, right):
        pen.ellipse((cx - r, cy - r, cx + r, cy + r), (25, 25, 25), int(165 * heat), width=lw)
    seat = (x1 + w * 0.42, y1 + lw / 2)
    bar = (x2 - w * 0.3, y1 + h * 0.08)
    crank = (x1 + w * 0.5, wy)
    pen.line([left, seat, crank, left], frame, int(150 * heat), lw)
    pen.line([seat, bar, right, crank], frame, int(150 * heat), lw)
    pen.line(
        [(bar[0] - w * 0.05, y1 + lw / 2), (bar[0] + w * 0.08, y1 + lw / 2)],
        frame,
        int(150 * heat),
        lw,
    )


def draw_bus(pen: Pen, box: Box, rng: np.random.Generator, heat: float, topdown: bool) -> None:
    """A bus: long box with a row of windows."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    body = _colour(rng, 60, 240)
    pen.rect((x1, y1, x2, y2 - h * 0.12), body, int(130 * heat), h * 0.08)
    n = max(3, int(w / h * 2.5))
    for i in range(n):
        a = x1 + w * (0.05 + 0.9 * i / n)
        pen.rect((a, y1 + h * 0.15, a + w * 0.9 / n * 0.75, y1 + h * 0.45), (50, 70, 100), 60)
    for cx in (x1 + w * 0.15, x2 - w * 0.15):
        pen.ellipse(
            (cx - h * 0.12, y2 - h * 0.24, cx + h * 0.12, y2), (20, 20, 20), int(170 * heat)
        )


def draw_traffic_light(
    pen: Pen, box: Box, rng: np.random.Generator, heat: float, topdown: bool
) -> None:
    """A traffic light: dark housing with three lamps, one lit."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    pen.rect((x1, y1, x2, y2), (30, 30, 30), 90, w * 0.2)
    lit = int(rng.integers(3))
    for i, c in enumerate(((230, 40, 30), (240, 200, 40), (40, 220, 90))):
        cy = y1 + h * (i + 0.5) / 3
        r = min(w * 0.35, h / 7)
        pen.ellipse(
            (x1 + w / 2 - r, cy - r, x1 + w / 2 + r, cy + r), c if i == lit else _shade(c, 0.3), 120
        )


def draw_stop_sign(
    pen: Pen, box: Box, rng: np.random.Generator, heat: float, topdown: bool
) -> None:
    """A stop sign: red octagon with a white band."""
    x1, y1, x2, y2 = box
    cx, cy, r = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2
    pts = [
        (cx + r * np.cos(np.pi / 8 + k * np.pi / 4), cy + r * np.sin(np.pi / 8 + k * np.pi / 4))
        for k in range(8)
    ]
    pen.polygon(pts, (200, 20, 30), 100)
    pen.rect((cx - r * 0.6, cy - r * 0.15, cx + r * 0.6, cy + r * 0.15), (240, 240, 240), 100)


def draw_dog(pen: Pen, box: Box, rng: np.random.Generator, heat: float, topdown: bool) -> None:
    """A dog: body, head and legs, fur-coloured, warm."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    fur = _shade((150, 110, 70), rng.uniform(0.3, 1.5))
    pen.ellipse((x1 + w * 0.1, y1 + h * 0.25, x2 - w * 0.15, y1 + h * 0.7), fur, int(200 * heat))
    pen.ellipse((x2 - w * 0.32, y1, x2, y1 + h * 0.45), fur, int(215 * heat))
    for lx in (0.18, 0.3, 0.6, 0.7):
        a = x1 + w * lx
        pen.rect((a, y1 + h * 0.6, a + w * 0.08, y2), fur, int(190 * heat))


DRAWERS = {
    "person": draw_person,
    "car": draw_car,
    "bicycle": draw_bicycle,
    "bus": draw_bus,
    "traffic light": draw_traffic_light,
    "stop sign": draw_stop_sign,
    "dog": draw_dog,
}

# Width / height of each class's box, per viewpoint (side view, top-down view).
ASPECT = {
    "person": (0.42, 0.55),
    "car": (1.9, 1.5),
    "bicycle": (1.6, 1.3),
    "bus": (2.8, 2.4),
    "traffic light": (0.4, 0.4),
    "stop sign": (1.0, 1.0),
    "dog": (1.4, 1.3),
}
# Height of each class relative to a person at the same distance.
RELATIVE_HEIGHT = {
    "person": 1.0,
    "car": 0.8,
    "bicycle": 0.6,
    "bus": 1.6,
    "traffic light": 0.7,
    "stop sign": 0.45,
    "dog": 0.45,
}
