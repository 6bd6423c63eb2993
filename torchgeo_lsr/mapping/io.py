"""Map outputs: class-map COGs, probability rasters, a VRT mosaic and a quicklook.

Every file is written through :func:`torchgeo_lsr.outputs.atomic_output`: under a
temporary name, read back and checked, then renamed, so no half-written file ever sits
under a final name (a full disk is a :class:`~torchgeo_lsr.outputs.WriteError`).

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import Resampling

from ..classes import ClassScheme
from ..datasets.grid import Grid
from ..formats import SCALE_TAG, prior_scale
from ..outputs import atomic_output, raster_check, save_figure, write_text

__all__ = ["NODATA", "quicklook", "write_class_map", "write_probabilities", "write_vrt"]

#: Class-map value for pixels without a prediction.
NODATA = 255


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
    if classes.shape != grid.shape:
        raise ValueError(f"class map {classes.shape} does not match its grid {grid.shape}")
    colormap = {i: (*rgb, 255) for i, rgb in enumerate(scheme.colors)}
    colormap[NODATA] = (0, 0, 0, 0)
    data = classes.astype(np.uint8)
    with atomic_output(path, raster_check(data, name=path)) as partial:
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
                nodata=NODATA,
            ) as dst:
                dst.write(data, 1)
                dst.write_colormap(1, colormap)
                dst.update_tags(
                    CLASS_NAMES=",".join(scheme.names), CLASS_SCHEME=scheme.name, **(tags or {})
                )
                dst.set_band_description(1, "class")
            rasterio.shutil.copy(
                plain, partial, driver="COG", compress="deflate", overview_resampling="nearest"
            )
        finally:
            plain.unlink(missing_ok=True)
    return path


def write_probabilities(path: Path, probs: np.ndarray, grid: Grid, scheme: ClassScheme) -> Path:
    """Write ``(K, H, W)`` probabilities as uint8 x 255 (divide by 255 to read), tiled."""
    data = np.round(np.clip(probs, 0, 1) * 255).astype(np.uint8)
    with (
        atomic_output(path, raster_check(data, name=path)) as partial,
        rasterio.open(partial, "w", **grid.profile(len(scheme), "uint8")) as dst,
    ):
        dst.write(data)
        dst.descriptions = tuple(scheme.names)
        dst.update_tags(**{SCALE_TAG: "1/255"}, CLASS_SCHEME=scheme.name)
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
) -> Path:
    """A PNG of one tile: imagery (RGB) | prior | maps, drawn as :mod:`torchgeo_lsr.plot` draws.

    The imagery with :func:`~torchgeo_lsr.plot.image_rgb`, the prior with
    :func:`~torchgeo_lsr.plot.prior_rgb` (class colours mixed by probability; white where
    there is no information), the class maps with :func:`~torchgeo_lsr.plot.class_rgb`
    (nodata white), and the scheme's :func:`~torchgeo_lsr.plot.class_legend`.

    Args:
        imagery: the imagery tile (bands 1-3 shown as RGB, 2-98 % stretch).
        prior: the tile's prior GeoTIFF, or None.
        maps: panel title -> class-map GeoTIFF (e.g. ``{"q": ..., "r": ...}``).
        scheme: class names and colours (legend).
        out: PNG path.
        max_px: longest side of each panel.
        title: figure title.
    """
    # No matplotlib.use("Agg") here: that would switch a notebook's inline backend off.
    # Headless, matplotlib falls back to Agg by itself; the figure is saved and closed.
    import matplotlib.pyplot as plt

    from ..plot import class_legend, class_rgb, image_rgb, prior_rgb

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
    fig, axs = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.6), squeeze=False)
    for ax, (name, img) in zip(axs[0], panels, strict=True):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(name)
        ax.axis("off")
    class_legend(fig, scheme, ncol=len(scheme))
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return save_figure(fig, out, dpi=80)
