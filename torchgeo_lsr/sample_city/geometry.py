"""Numerical and geometric helpers of the scene: random fields, lines, shapes, rasterizing."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from rasterio.features import rasterize
from scipy import ndimage
from shapely import affinity
from shapely.geometry import LineString, MultiLineString, Polygon, box
from shapely.geometry.base import BaseGeometry

from .layout import Layout


def field(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Smooth standard-normal random field with correlation length ``scale`` pixels.

    Drawn on a coarse grid and interpolated, so large scales cost no more than small ones.
    """
    factor = max(1, int(scale // 4))
    coarse_shape = (shape[0] // factor + 4, shape[1] // factor + 4)
    coarse = ndimage.gaussian_filter(rng.standard_normal(coarse_shape), scale / factor)
    fine = ndimage.zoom(coarse, factor, order=1)[: shape[0], : shape[1]]
    out: np.ndarray = ((fine - fine.mean()) / (fine.std() + 1e-12)).astype(np.float32)
    return out


def shifted(a: np.ndarray, dy: int, dx: int, fill: float = 0.0) -> np.ndarray:
    """``out[y, x] = a[y - dy, x - dx]`` (zero-padded), for the last two axes."""
    out = np.full_like(a, fill)
    h, w = a.shape[-2:]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = a[..., ys, xs]
    return out


def _smooth_1d(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    noise = ndimage.gaussian_filter1d(rng.standard_normal(n + 8 * int(sigma) + 8), sigma)
    noise = noise[4 * int(sigma) + 4 : 4 * int(sigma) + 4 + n]
    out: np.ndarray = noise / (noise.std() + 1e-12)
    return out


def wiggly_line(
    rng: np.random.Generator,
    start: tuple[float, float],
    end: tuple[float, float],
    amplitude: float,
    *,
    step: float = 8.0,
    wavelength: float | None = None,
    sine: float = 0.0,
) -> LineString:
    """A line from start to end, bent sideways by smooth noise (and optionally a sine)."""
    (x0, y0), (x1, y1) = start, end
    length = math.hypot(x1 - x0, y1 - y0)
    n = max(3, int(length / step) + 1)
    t = np.linspace(0.0, 1.0, n)
    offset = amplitude * _smooth_1d(rng, n, sigma=max(2.0, 60.0 / step))
    offset *= np.sin(np.pi * t) ** 0.3  # pinned at the ends
    if wavelength is not None:
        offset += sine * np.sin(2 * np.pi * t * length / wavelength + rng.uniform(0, 2 * np.pi))
    nx, ny = -(y1 - y0) / length, (x1 - x0) / length
    xs = x0 + t * (x1 - x0) + offset * nx
    ys = y0 + t * (y1 - y0) + offset * ny
    return LineString(np.column_stack([xs, ys]))


def rectangle(cx: float, cy: float, w: float, d: float, angle: float) -> Polygon:
    """A ``w`` x ``d`` rectangle centred on (cx, cy), rotated by ``angle`` degrees."""
    rect = box(-w / 2, -d / 2, w / 2, d / 2)
    return affinity.translate(affinity.rotate(rect, angle, origin=(0, 0)), cx, cy)


def parts(geom: BaseGeometry, min_length: float = 0.0) -> list[LineString]:
    """The LineStrings of a (multi)line geometry, dropping parts shorter than min_length."""
    if isinstance(geom, LineString):
        lines = [geom]
    elif isinstance(geom, MultiLineString):
        lines = list(geom.geoms)
    elif hasattr(geom, "geoms"):
        lines = [g for g in geom.geoms if isinstance(g, LineString)]
    else:
        lines = []
    return [g for g in lines if not g.is_empty and g.length >= min_length]


def burn(
    layout: Layout,
    shapes: Sequence[tuple[BaseGeometry, float]],
    dtype: str = "uint8",
    fill: float = 0,
) -> np.ndarray:
    """Rasterize (geometry, value) pairs onto the canvas; later shapes win."""
    shapes = [(g, v) for g, v in shapes if not g.is_empty]
    if not shapes:
        return np.full(layout.canvas_shape, fill, dtype=dtype)
    out: np.ndarray = rasterize(
        shapes,
        out_shape=layout.canvas_shape,
        transform=layout.canvas_transform,
        fill=fill,
        dtype=dtype,
    )
    return out


def west_of(line: LineString, far: float) -> Polygon:
    """The half-plane west of a north-south line, as a polygon reaching x = far."""
    coords = list(line.coords)
    return Polygon([*coords, (far, coords[-1][1]), (far, coords[0][1])])


def south_of(line: LineString, far: float) -> Polygon:
    """The half-plane south of a west-east line, as a polygon reaching y = far."""
    coords = list(line.coords)
    return Polygon([*coords, (coords[-1][0], far), (coords[0][0], far)])
