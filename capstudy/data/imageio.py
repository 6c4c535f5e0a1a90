"""Image decoding shared by the cache builder, ``data check`` and the benchmark baseline."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from capstudy.errors import CapstudyError


def decode_resized(path: Path, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode an image as RGB and resize it to ``size``.

    Resizing is a plain resize to (width, height), not a letterbox: the detection datasets
    here (FLIR 640x512, LLVIP 1280x1024, synthetic 320x256) share the 5:4 aspect of the
    default 320x256 cache, so nothing is distorted there and no pixels are spent on padding;
    other aspects are stretched and boxes are scaled by the same factors. Thermal images are
    8-bit grey and are replicated to three channels so every backbone takes 3 channels.

    Args:
        path: image file.
        size: (width, height) of the output.

    Returns:
        (uint8 array (height, width, 3), the source (width, height)).

    Raises:
        CapstudyError: the file is missing, unreadable or truncated.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
            source = im.size
            # JPEG draft mode decodes at 1/2, 1/4 or 1/8 scale directly in the DCT, a large
            # speed-up for big sources (ImageNet, LLVIP) at no visible cost after resizing.
            im.draft("RGB", size)
            im = im.convert("RGB")
            if im.size != size:
                im = im.resize(size, Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8), source
    except FileNotFoundError as exc:
        raise CapstudyError(f"{path}: missing image") from exc
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning) as exc:
        raise CapstudyError(f"{path}: unreadable or truncated image ({exc})") from exc


def verify_image(path: Path) -> tuple[tuple[int, int] | None, str | None]:
    """Fully decode an image to find truncation or corruption.

    Returns:
        ((width, height) or None, an error message or None).
    """
    try:
        with Image.open(path) as im:
            im.load()
            return im.size, None
    except FileNotFoundError:
        return None, "missing image"
    except (OSError, ValueError, SyntaxError) as exc:
        return None, f"unreadable or truncated image ({exc})"
