"""Map outputs: class-map COGs, probability rasters, uncertainty COGs, a VRT mosaic, a quicklook.

Every file is written through :func:`torchgeo_lsr.outputs.atomic_output`: under a
temporary name, read back and checked, then renamed, so no half-written file ever sits
under a final name (a full disk is a :class:`~torchgeo_lsr.outputs.WriteError`).

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.windows import Window
from torch import Tensor

from ..classes import ClassScheme
from ..datasets.grid import Grid
from ..formats import SCALE_TAG, prior_scale
from ..outputs import RasterDigest, atomic_output, save_figure, write_text

__all__ = [
    "ENTROPY_SCALE_TAG",
    "NODATA",
    "UNCERTAINTY_LAYERS",
    "UNCERTAINTY_TAG",
    "ProbabilityOutput",
    "RasterOutput",
    "class_map_output",
    "cog_output",
    "probabilities_output",
    "quicklook",
    "uncertainty_codes",
    "uncertainty_output",
    "write_class_map",
    "write_probabilities",
    "write_uncertainty",
    "write_vrt",
]

#: Class-map value for pixels without a prediction.
NODATA = 255

Quantity = Literal["entropy", "maxprob"]

#: The uncertainty rasters of ``map --save-uncertainty`` (``uncertainty/<layer>/<tile>.tif``):
#: layer -> (the probabilities it is computed from, the quantity). The keys are those of
#: :data:`torchgeo_lsr.plot.UNCERTAINTY_PANELS`.
UNCERTAINTY_LAYERS: dict[str, tuple[Literal["q", "r"], Quantity]] = {
    "q_entropy": ("q", "entropy"),
    "r_entropy": ("r", "entropy"),
    "r_maxprob": ("r", "maxprob"),
}

#: GeoTIFF tag of an uncertainty raster: its layer (a :data:`UNCERTAINTY_LAYERS` key).
UNCERTAINTY_TAG = "LSR_UNCERTAINTY"
#: GeoTIFF tag of an entropy raster: what a stored value is multiplied by to read nats,
#: ``"log(K)/255"`` (a max-probability raster carries :data:`~torchgeo_lsr.formats.SCALE_TAG`
#: ``"1/255"`` instead, as probability rasters do).
ENTROPY_SCALE_TAG = "LSR_ENTROPY_SCALE"

#: Values (classes x pixels) turned into uncertainty at a time: :func:`uncertainty_codes`
#: works through a tile in bands of rows this size, so its float64 work arrays stay small.
UNCERTAINTY_WINDOW = 1 << 21


class RasterOutput:
    """One output raster being written window by window (see :func:`cog_output`).

    :meth:`write` takes a window's data (``(h, w)`` or ``(C, h, w)``) at a rasterio
    :class:`~rasterio.windows.Window` (None: the whole raster); every window written is
    recorded in a :class:`~torchgeo_lsr.outputs.RasterDigest`, so the published file is
    checked against what was written without holding it in memory.
    """

    def __init__(self, dst: Any, digest: RasterDigest) -> None:
        self._dst, self._digest = dst, digest

    def write(self, data: np.ndarray, window: Window | None = None) -> None:
        """Write ``data`` (cast to the raster's dtype) at ``window``."""
        block = np.asarray(data).astype(self._dst.dtypes[0], copy=False)
        block = block if block.ndim == 3 else block[None]
        self._dst.write(block, window=window)
        self._digest.update(window, block)


@contextmanager
def cog_output(
    path: Path,
    grid: Grid,
    *,
    description: str,
    tags: dict[str, str],
    overview_resampling: str,
    nodata: int | None = None,
    colormap: dict[int, tuple[int, int, int, int]] | None = None,
    scale: float | None = None,
    unit: str | None = None,
) -> Iterator[RasterOutput]:
    """Write a one-band uint8 raster on ``grid`` window by window; publish it as a COG.

    The block writes a plain GeoTIFF (band description, tags, optional nodata, colour
    table and GDAL band scale and unit) through the yielded :class:`RasterOutput`; on
    success it is copied to a deflate COG with overviews by ``overview_resampling``, the
    written windows are read back from the COG and compared, and the COG is published
    (:func:`~torchgeo_lsr.outputs.atomic_output`). On failure nothing is left.
    """
    digest = RasterDigest(path)
    with atomic_output(path, digest.check) as partial:
        plain = partial.with_name(partial.name.removesuffix(".partial") + "-plain.partial")
        try:
            with rasterio.open(
                plain,
                "w",
                driver="GTiff",
                width=grid.width,
                height=grid.height,
                count=1,
                dtype="uint8",
                crs=grid.crs,
                transform=grid.transform,
                nodata=nodata,
            ) as dst:
                yield RasterOutput(dst, digest)
                if colormap is not None:
                    dst.write_colormap(1, colormap)
                dst.update_tags(**tags)
                dst.set_band_description(1, description)
                if scale is not None:
                    dst.scales, dst.offsets = (scale,), (0.0,)
                if unit is not None:
                    dst.units = (unit,)
            rasterio.shutil.copy(
                plain,
                partial,
                driver="COG",
                compress="deflate",
                overview_resampling=overview_resampling,
            )
        finally:
            plain.unlink(missing_ok=True)


def _check_shape(what: str, shape: tuple[int, ...], grid: Grid) -> None:
    if shape != grid.shape:
        raise ValueError(f"{what} {shape} does not match its grid {grid.shape}")


def class_map_output(
    path: Path, grid: Grid, scheme: ClassScheme, tags: dict[str, str] | None = None
) -> AbstractContextManager[RasterOutput]:
    """:func:`write_class_map`, window by window: write ``(h, w)`` class indices."""
    colormap = {i: (*rgb, 255) for i, rgb in enumerate(scheme.colors)}
    colormap[NODATA] = (0, 0, 0, 0)
    names = {"CLASS_NAMES": ",".join(scheme.names), "CLASS_SCHEME": scheme.name}
    return cog_output(
        path,
        grid,
        description="class",
        tags=names | (tags or {}),
        overview_resampling="nearest",
        nodata=NODATA,
        colormap=colormap,
    )


def write_class_map(
    path: Path,
    classes: np.ndarray,
    grid: Grid,
    scheme: ClassScheme,
    tags: dict[str, str] | None = None,
) -> Path:
    """Write a uint8 class map as a Cloud-Optimised GeoTIFF with the scheme's colours.

    Args:
        path: output file.
        classes: ``(H, W)`` class indices (``NODATA`` = 255 for none).
        grid: the map's grid (CRS, transform, shape).
        scheme: names (written as the ``CLASS_NAMES`` tag) and colours (colour table).
        tags: extra dataset tags (a COG cannot be edited after it is written).

    Returns:
        ``path``.
    """
    _check_shape("class map", classes.shape, grid)
    with class_map_output(path, grid, scheme, tags) as out:
        out.write(classes)
    return path


class ProbabilityOutput(RasterOutput):
    """:class:`RasterOutput` of :func:`probabilities_output`: takes ``(K, h, w)`` in [0, 1]."""

    def write(self, data: np.ndarray, window: Window | None = None) -> None:
        """Write probabilities ``data`` as uint8 x 255 at ``window``."""
        super().write(np.round(np.clip(data, 0, 1) * 255).astype(np.uint8), window)


@contextmanager
def probabilities_output(
    path: Path, grid: Grid, scheme: ClassScheme, tags: dict[str, str] | None = None
) -> Iterator[ProbabilityOutput]:
    """:func:`write_probabilities`, window by window: write ``(K, h, w)`` probabilities."""
    digest = RasterDigest(path)
    with (
        atomic_output(path, digest.check) as partial,
        rasterio.open(partial, "w", **grid.profile(len(scheme), "uint8")) as dst,
    ):
        yield ProbabilityOutput(dst, digest)
        dst.descriptions = tuple(scheme.names)
        dst.update_tags(**{SCALE_TAG: "1/255"}, CLASS_SCHEME=scheme.name, **(tags or {}))


def write_probabilities(
    path: Path,
    probs: np.ndarray,
    grid: Grid,
    scheme: ClassScheme,
    tags: dict[str, str] | None = None,
) -> Path:
    """Write ``(K, H, W)`` probabilities as uint8 x 255 (divide by 255 to read), tiled.

    ``tags``: extra dataset tags (``map`` writes its key,
    :data:`~torchgeo_lsr.formats.MAP_KEY_TAG`).
    """
    _check_shape("probabilities", probs.shape[1:], grid)
    with probabilities_output(path, grid, scheme, tags) as out:
        out.write(probs)
    return path


def uncertainty_codes(
    probs: Tensor | np.ndarray, quantity: Quantity, window: int = UNCERTAINTY_WINDOW
) -> np.ndarray:
    """``(H, W)`` uint8 uncertainty of ``(K, H, W)`` probabilities, a band of rows at a time.

    ``entropy``: ``round(255 H / log K)`` with ``H`` the entropy in nats
    (:func:`torchgeo_lsr.plot.entropy`), so 255 = log K, a uniform distribution;
    ``maxprob``: ``round(255 max_l p(l))`` (:func:`torchgeo_lsr.plot.max_probability`).
    Both normalise each pixel by its sum and give 0 where it is 0.

    Args:
        probs: ``(K, H, W)`` probabilities (a tensor is read in place, not copied).
        quantity: ``entropy`` or ``maxprob``.
        window: at most this many values (``K`` x pixels) are converted at a time.

    Example:
        >>> p = np.zeros((4, 2, 1)); p[:, 0] = 0.25; p[0, 1] = 1
        >>> uncertainty_codes(p, "entropy").ravel().tolist()  # uniform = log 4, one-hot = 0
        [255, 0]
        >>> uncertainty_codes(p, "maxprob").ravel().tolist()
        [64, 255]
    """
    from ..plot import entropy, max_probability

    values = probs.detach().cpu().numpy() if isinstance(probs, Tensor) else np.asarray(probs)
    if values.ndim != 3:
        raise ValueError(f"uncertainty: expected (K, H, W) probabilities, got {values.shape}")
    if quantity not in ("entropy", "maxprob"):
        raise ValueError(f"uncertainty: quantity must be 'entropy' or 'maxprob', got {quantity!r}")
    k, height, width = values.shape
    full = math.log(k) if k > 1 else 1.0  # one class: entropy 0 everywhere
    out = np.empty((height, width), np.uint8)
    rows = max(1, window // max(1, k * width))
    for top in range(0, height, rows):
        band = values[:, top : top + rows]
        x = entropy(band) * (255 / full) if quantity == "entropy" else max_probability(band) * 255
        out[top : top + rows] = np.clip(np.round(x), 0, 255).astype(np.uint8)
    return out


def uncertainty_output(
    path: Path,
    grid: Grid,
    layer: str,
    scheme: ClassScheme,
    tags: dict[str, str] | None = None,
) -> AbstractContextManager[RasterOutput]:
    """:func:`write_uncertainty`, window by window: write ``(h, w)`` uint8 codes."""
    if layer not in UNCERTAINTY_LAYERS:
        raise ValueError(f"uncertainty layer {layer!r}: expected one of {list(UNCERTAINTY_LAYERS)}")
    source, quantity = UNCERTAINTY_LAYERS[layer]
    k = len(scheme)
    extra: dict[str, Any]
    if quantity == "entropy":
        scale, unit = math.log(k) / 255, "nats"
        extra = {ENTROPY_SCALE_TAG: f"log({k})/255"}
        description = f"entropy of {source} (nats = value x log({k}) / 255)"
    else:
        scale, unit = 1 / 255, "probability"
        extra = {SCALE_TAG: "1/255"}
        description = f"max probability of {source} (value / 255)"
    return cog_output(
        path,
        grid,
        description=description,
        tags={UNCERTAINTY_TAG: layer, "CLASS_SCHEME": scheme.name, **extra, **(tags or {})},
        overview_resampling="average",
        scale=scale,
        unit=unit,
    )


def write_uncertainty(
    path: Path,
    codes: np.ndarray,
    grid: Grid,
    layer: str,
    scheme: ClassScheme,
    tags: dict[str, str] | None = None,
) -> Path:
    """Write one :func:`uncertainty_codes` layer as a uint8 Cloud-Optimised GeoTIFF.

    The scale is in the file three ways: the GDAL band scale (``src.scales[0]``: value x
    scale = nats or probability) and unit (``nats`` or ``probability``), the tag
    :data:`ENTROPY_SCALE_TAG` ``"log(K)/255"`` (entropy) or
    :data:`~torchgeo_lsr.formats.SCALE_TAG` ``"1/255"`` (max probability), and the band
    description. Overviews average.

    Args:
        path: output file.
        codes: ``(H, W)`` uint8 from :func:`uncertainty_codes`.
        grid: the map's grid (the class maps').
        layer: a :data:`UNCERTAINTY_LAYERS` key (tag :data:`UNCERTAINTY_TAG`).
        scheme: the classes (K sets the entropy scale; name tag ``CLASS_SCHEME``).
        tags: extra dataset tags.

    Returns:
        ``path``.
    """
    _check_shape(path.name + ": array", codes.shape, grid)
    with uncertainty_output(path, grid, layer, scheme, tags) as out:
        out.write(codes)
    return path


def write_vrt(paths: Sequence[Path], out: Path) -> list[Path]:
    """Mosaic single-band class maps into VRT files (one per CRS and resolution).

    Args:
        paths: class-map GeoTIFFs (same band layout and colour table).
        out: the VRT path; with several CRSs, ``out`` gets an ``_EPSG`` suffix per CRS.

    Returns:
        The VRT files written (paths inside are relative to the VRT).
    """
    groups: dict[tuple[str, float, float], list[tuple[Path, rasterio.Affine, int, int]]] = (
        defaultdict(list)
    )
    crs_of: dict[tuple[str, float, float], rasterio.crs.CRS] = {}
    colormap: dict[int, tuple[int, ...]] = {}
    nodata = None
    for p in paths:
        with rasterio.open(p) as src:
            key = (src.crs.to_wkt(), src.res[0], src.res[1])
            groups[key].append((p, src.transform, src.width, src.height))
            crs_of[key] = src.crs
            colormap = colormap or dict(src.colormap(1))
            nodata = src.nodata
    written = []
    for i, (key, items) in enumerate(sorted(groups.items(), key=lambda kv: kv[0])):
        target = out
        if len(groups) > 1:
            epsg = crs_of[key].to_epsg() or i
            target = out.with_name(f"{out.stem}_{epsg}{out.suffix}")
        xres, yres = key[1], key[2]
        minx = min(t.c for _, t, _, _ in items)
        maxy = max(t.f for _, t, _, _ in items)
        maxx = max(t.c + w * xres for _, t, w, _ in items)
        miny = min(t.f - h * yres for _, t, _, h in items)
        width, height = round((maxx - minx) / xres), round((maxy - miny) / yres)
        lines = [
            f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
            f"  <SRS>{escape(key[0])}</SRS>",
            f"  <GeoTransform>{minx!r}, {xres!r}, 0.0, {maxy!r}, 0.0, {-yres!r}</GeoTransform>",
            '  <VRTRasterBand dataType="Byte" band="1">',
        ]
        if nodata is not None:
            lines.append(f"    <NoDataValue>{int(nodata)}</NoDataValue>")
        if colormap:
            lines += ["    <ColorInterp>Palette</ColorInterp>", "    <ColorTable>"]
            lines += [
                '      <Entry c1="{}" c2="{}" c3="{}" c4="{}"/>'.format(
                    *colormap.get(v, (0, 0, 0, 0))
                )
                for v in range(max(colormap) + 1)
            ]
            lines.append("    </ColorTable>")
        for p, t, w, h in items:
            xoff, yoff = round((t.c - minx) / xres), round((maxy - t.f) / yres)
            rel = os.path.relpath(p, target.parent)
            lines += [
                "    <SimpleSource>",
                f'      <SourceFilename relativeToVRT="1">{escape(rel)}</SourceFilename>',
                "      <SourceBand>1</SourceBand>",
                f'      <SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>',
                f'      <DstRect xOff="{xoff}" yOff="{yoff}" xSize="{w}" ySize="{h}"/>',
                "    </SimpleSource>",
            ]
        lines += ["  </VRTRasterBand>", "</VRTDataset>"]
        written.append(write_text(target, "\n".join(lines) + "\n"))
    return written


def _read_small(
    path: Path, max_px: int, indexes: Sequence[int] | None, nearest: bool
) -> np.ndarray:
    with rasterio.open(path) as src:
        scale = max(1.0, max(src.width, src.height) / max_px)
        shape = (max(1, int(src.height / scale)), max(1, int(src.width / scale)))
        bands = list(indexes) if indexes is not None else list(src.indexes)
        data: np.ndarray = src.read(
            bands,
            out_shape=(len(bands), *shape),
            resampling=Resampling.nearest if nearest else Resampling.average,
        )
        return data


def quicklook(
    imagery: Path,
    prior: Path | None,
    maps: dict[str, Path],
    scheme: ClassScheme,
    out: Path,
    max_px: int = 512,
    title: str | None = None,
    uncertainty: dict[str, Path] | None = None,
) -> Path:
    """A PNG of one tile: imagery (RGB) | prior | maps, drawn as :mod:`torchgeo_lsr.plot` draws.

    The imagery with :func:`~torchgeo_lsr.plot.image_rgb`, the prior with
    :func:`~torchgeo_lsr.plot.prior_rgb` (class colours mixed by probability; white where
    there is no information), the class maps with :func:`~torchgeo_lsr.plot.class_rgb`
    (nodata white), and the scheme's :func:`~torchgeo_lsr.plot.class_legend`. With
    ``uncertainty``, a second row of its layers, drawn by
    :func:`~torchgeo_lsr.plot.plot_uncertainty` (sequential colour ramps, colorbars in
    nats on ``[0, log K]`` and in probability on ``[0, 1]``).

    Args:
        imagery: the imagery tile (bands 1-3 shown as RGB, 2-98 % stretch).
        prior: the tile's prior GeoTIFF, or None.
        maps: panel title -> class-map GeoTIFF (e.g. ``{"q": ..., "r": ...}``).
        scheme: class names and colours (legend).
        out: PNG path.
        max_px: longest side of each panel.
        title: figure title.
        uncertainty: :data:`UNCERTAINTY_LAYERS` key -> the tile's raster of that layer
            (:func:`write_uncertainty`; read in units by its band scale).
    """
    # No matplotlib.use("Agg") here: that would switch a notebook's inline backend off.
    # Headless, matplotlib falls back to Agg by itself; the figure is saved and closed.
    import matplotlib.pyplot as plt

    from ..plot import class_legend, class_rgb, image_rgb, plot_uncertainty, prior_rgb

    panels: list[tuple[str, np.ndarray]] = []
    image = _read_small(imagery, max_px, [1, 2, 3], nearest=False).astype(float)
    panels.append(("imagery", image_rgb(image)))
    if prior is not None:
        with rasterio.open(prior) as src:
            scale = prior_scale(src)
        p = _read_small(prior, max_px, None, nearest=False).astype(float) / scale
        panels.append(("prior", prior_rgb(p, scheme)))
    for name, path in maps.items():
        panels.append((name, class_rgb(_read_small(path, max_px, [1], nearest=True)[0], scheme)))
    layers = {}
    for layer, path in (uncertainty or {}).items():
        with rasterio.open(path) as src:
            scale = src.scales[0]
        layers[layer] = _read_small(path, max_px, [1], nearest=False)[0] * scale
    rows, cols = (2 if layers else 1), max(len(panels), len(layers))
    fig, axs = plt.subplots(rows, cols, figsize=(4 * cols, 4.6 * rows), squeeze=False)
    for ax, (name, img) in zip(axs[0], panels, strict=False):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(name)
        ax.axis("off")
    spare = [ax for ax in axs[0][len(panels) :]]
    if layers:
        plot_uncertainty(layers, scheme, axes=axs[1][: len(layers)])
        spare += list(axs[1][len(layers) :])
    for ax in spare:
        ax.remove()
    class_legend(fig, scheme, ncol=len(scheme))
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07 / rows, 1, 1))
    return save_figure(fig, out, dpi=80)
