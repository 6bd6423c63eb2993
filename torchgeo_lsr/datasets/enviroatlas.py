"""EnviroAtlas land cover and weak-source layers (Malkin et al. 2022 release).

.. versionadded:: 0.1
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Unpack, cast

import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from torch.utils.data import Dataset
from torchgeo.datasets import DatasetNotFoundError

from ..classes import ENVIROATLAS, ENVIROATLAS5, ENVIROATLAS_TO_ENVIROATLAS5, NLCD
from .base import RasterOptions, RasterSource, Sample, Transform
from .grid import Grid, PathLike
from .warping import Remap

__all__ = ["ENVIROATLAS_LAYERS", "EnviroAtlas", "EnviroAtlasLayer", "EnviroAtlasRegion"]

LayerKind = Literal["imagery", "nlcd", "mask", "labels", "prior"]


@dataclass(frozen=True)
class EnviroAtlasLayer:
    """What one layer of the release holds.

    Attributes:
        kind: ``imagery`` (NAIP), ``nlcd`` (NLCD indices), ``mask`` (0/1), ``labels``
            (raw EnviroAtlas codes) or ``prior`` (5 class probabilities times 255).
        bands: band names of multi-band layers, in file order.
        alias: TorchGeo's ``EnviroAtlas`` name of the layer.
    """

    kind: LayerKind
    bands: tuple[str, ...] = ()
    alias: str = ""


#: Layers of the release: file suffix -> what it holds. ``alias`` is TorchGeo's layer name.
ENVIROATLAS_LAYERS: Mapping[str, EnviroAtlasLayer] = {
    "a_naip": EnviroAtlasLayer("imagery", ("R", "G", "B", "NIR"), "naip"),
    "b_nlcd": EnviroAtlasLayer("nlcd", alias="nlcd"),
    "c_roads": EnviroAtlasLayer("mask", alias="roads"),
    "d_water": EnviroAtlasLayer("mask", alias="water"),
    "d1_waterways": EnviroAtlasLayer("mask", alias="waterways"),
    "d2_waterbodies": EnviroAtlasLayer("mask", alias="waterbodies"),
    "e_buildings": EnviroAtlasLayer("mask", alias="buildings"),
    "h_highres_labels": EnviroAtlasLayer("labels", alias="lc"),
    "prior_from_cooccurrences_101_31": EnviroAtlasLayer("prior", ENVIROATLAS5.names, "prior"),
    "prior_from_cooccurrences_101_31_no_osm_no_buildings": EnviroAtlasLayer(
        "prior", ENVIROATLAS5.names, "prior_no_osm_no_buildings"
    ),
    "prior_learned_101_31": EnviroAtlasLayer("prior", ENVIROATLAS5.names, "prior_learned"),
}
_ALIASES = {spec.alias: name for name, spec in ENVIROATLAS_LAYERS.items()}

#: ``{tile}_{layer}.tif`` with tile = quadrangle and quarter, e.g. ``3009726_sw``.
ENVIROATLAS_REGEX = r"""
    ^(?P<tile>\d{7}_(?:ne|nw|se|sw))
    _(?P<layer>[a-z0-9_]+)
    \.tif$
"""
_ENVIROATLAS_PATTERN = re.compile(ENVIROATLAS_REGEX, re.VERBOSE)
_SPLIT_SUFFIX = "_tiles-debuffered"


class EnviroAtlas(RasterSource):
    """One layer of the EnviroAtlas label super-resolution release.

    The `release <https://doi.org/10.5281/zenodo.5778192>`__ accompanying Malkin et al.
    (2022) holds 1 m tiles of four cities (Pittsburgh PA, Durham NC, Austin TX, Phoenix AZ)
    in their UTM zones, in the layout TorchGeo's ``EnviroAtlas`` reads::

        enviroatlas_lotp/{city}-{year}_1m-{split}_tiles-debuffered/{tile}_{layer}.tif

    e.g. ``pittsburgh_pa-2010_1m-train_tiles-debuffered/4007925_se_a_naip.tif``. This class
    reads one ``layer`` (the file suffix, or TorchGeo's name for it) of every tile under
    ``paths``:

    =========================================================  ===========  ==============
    layer (TorchGeo name)                                      sample       stored as
    =========================================================  ===========  ==============
    ``a_naip`` (naip)                                          ``image``    4 bands uint8
    ``b_nlcd`` (nlcd)                                          ``mask``     NLCD index 0-16
    ``c_roads``, ``d_water``, ``d1_waterways``,                ``mask``     0/1 uint8
    ``d2_waterbodies``, ``e_buildings`` (roads, water, ...)
    ``h_highres_labels`` (lc)                                  ``mask``     raw codes
    ``prior_from_cooccurrences_101_31`` (prior),               ``image``    5 bands uint8
    ``..._no_osm_no_buildings``, ``prior_learned_101_31``
    =========================================================  ===========  ==============

    * ``a_naip``: raw digital numbers as float32 (bilinear), bands R, G, B, NIR.
    * ``b_nlcd``: the release stores NLCD already as the 17-index of
      :data:`torchgeo_lsr.classes.NLCD` (0 nodata, 1 open water, ..., 16 emergent
      wetlands), not raw codes; index 0 is ``valid`` False. Values above 16 raise.
    * masks: OSM roads, water, waterways, waterbodies and Microsoft building footprints
      rasterised as 0/1; other values raise.
    * ``h_highres_labels``: raw EnviroAtlas codes 0, 10, 20, 30, 40, 52, 70, 80, 82, 91, 92
      mapped to the 11-index of :data:`torchgeo_lsr.classes.ENVIROATLAS` (0 unclassified,
      1 water, 2 impervious, 3 soil/barren, 4 trees, 5 shrubs, 6 grass, 7 agriculture,
      8 orchards, 9 woody wetlands, 10 emergent wetlands); unclassified is ``valid``
      False. With ``classes="enviroatlas5"`` they go on through
      :data:`~torchgeo_lsr.classes.ENVIROATLAS_TO_ENVIROATLAS5` to the paper's five
      classes (0 water, 1 impervious, 2 barren, 3 trees incl. shrubs, 4 grass); the rest
      (unclassified, agriculture, orchards, wetlands) become 255 with ``valid`` False,
      as do uncovered pixels. Any other raw code raises a ValueError naming the file.
    * priors: per-class probabilities in :data:`~torchgeo_lsr.classes.ENVIROATLAS5` order,
      stored as ``uint8(255 * p)`` (truncated, so a pixel's bands sum to between
      ``1 - 5/255`` and 1). Returned as ``image`` = stored / 255 (float32, bilinear).
      ``prior_learned_101_31`` is not in the public release: the authors' learned prior
      (``evaluation/save_learned_priors.py``), read when present.

    ``valid`` (bool ``(H, W)``) is False outside every tile. Samples hold tensors only.

    If you use this dataset in your research, please cite:

    * Malkin, N., Ortiz, A., Rolf, E., Jojic, N., et al., "Resolving label uncertainty
      with implicit generative models", ICLR 2022, https://arxiv.org/abs/2202.14000

    Args:
        paths: the release directory, split directories or files (searched recursively).
        layer: file suffix (``"h_highres_labels"``) or TorchGeo layer name (``"lc"``).
        classes: ``"enviroatlas"`` (11 classes) or ``"enviroatlas5"``; labels layer only.
        **kwargs: ``crs``, ``res``, ``bands``, ``transforms``, ``cache``, ``download``
            and ``checksum`` as for :class:`~.base.RasterSource`; ``bands`` is, for
            ``a_naip`` and priors, a subset of the layer's bands. The release (about
            36 GB unzipped) is not downloaded here (``download`` must be False).

    Raises:
        DatasetNotFoundError: if no file of ``layer`` is found.
        ValueError: on an unknown layer, classes value or band.

    Example:
        >>> EnviroAtlas.parse_name("3009726_sw_prior_from_cooccurrences_101_31.tif")
        ('3009726_sw', 'prior_from_cooccurrences_101_31')
        >>> EnviroAtlas.layer_name("lc")
        'h_highres_labels'

    .. versionadded:: 0.1
    """

    what = "EnviroAtlas"
    filename_glob = "*.tif"
    filename_regex = ENVIROATLAS_REGEX
    is_image = False

    def __init__(
        self,
        paths: PathLike | Iterable[PathLike] = "data",
        *,
        layer: str = "h_highres_labels",
        classes: Literal["enviroatlas", "enviroatlas5"] = "enviroatlas",
        **kwargs: Unpack[RasterOptions],
    ) -> None:
        self.layer = self.layer_name(layer)
        self.spec = ENVIROATLAS_LAYERS[self.layer]
        if classes not in ("enviroatlas", "enviroatlas5"):
            raise ValueError(f"classes must be 'enviroatlas' or 'enviroatlas5', got {classes!r}")
        self.classes = classes
        self.is_image = self.spec.kind in ("imagery", "prior")  # bilinear floats
        super().__init__(paths, **kwargs)

    def _select_bands(self, bands: Sequence[str] | None) -> tuple[str, ...]:
        """A subset of the layer's bands (default all; none for single-band layers)."""
        return self._check_bands(bands, self.spec.bands, f"EnviroAtlas layer {self.layer}")

    @staticmethod
    def layer_name(layer: str) -> str:
        """The file suffix of ``layer`` (a suffix or TorchGeo's layer name)."""
        if layer in ENVIROATLAS_LAYERS:
            return layer
        if layer in _ALIASES:
            return _ALIASES[layer]
        raise ValueError(
            f"unknown EnviroAtlas layer {layer!r}: use one of {list(ENVIROATLAS_LAYERS)} "
            f"or TorchGeo's names {list(_ALIASES)}"
        )

    @staticmethod
    def parse_name(path: PathLike) -> tuple[str, str] | None:
        """``(tile, layer)`` of a release file name, or None if it is not one."""
        match = _ENVIROATLAS_PATTERN.match(os.path.basename(os.fspath(path)))
        return None if match is None else (match["tile"], match["layer"])

    @property
    def tiles(self) -> list[str]:
        """Tile ids (``"4007925_se"``) of the files, in :attr:`files` order."""
        return [self._tile(f) for f in self.files]

    def _tile(self, path: str) -> str:
        parsed = self.parse_name(path)
        assert parsed is not None  # only matching names are listed
        return parsed[0]

    def _list_files(self, patterns: Sequence[str]) -> list[str]:
        return [
            f
            for f in super()._list_files(patterns)
            if (parsed := self.parse_name(f)) is not None and parsed[1] == self.layer
        ]

    def band_indexes(self, path: str) -> list[int]:
        """1-based band indexes of :attr:`bands` (all bands for single-band layers)."""
        if not self.spec.bands:
            return [1]
        return [self.spec.bands.index(b) + 1 for b in self.bands]

    def read_file(
        self, path: str, grid: Grid, remap: Remap | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One file on ``grid``: ``(data (C, H, W), valid (H, W))``, codes mapped.

        ``remap`` applies to the stored values, before the layer's own mapping.

        Raises:
            ValueError: naming ``path``, on values the layer cannot hold.
        """
        data, valid = super().read_file(path, grid, remap)
        if self.is_image:
            return data, valid
        raw = np.where(valid, data[0], 0)
        what = f"EnviroAtlas {self.layer} {path}"
        match self.spec.kind:
            case "labels":
                index = ENVIROATLAS.code_to_index(raw, what=what).astype(np.int32)
                valid &= index != 0
                if self.classes == "enviroatlas5":
                    index = ENVIROATLAS_TO_ENVIROATLAS5[index].astype(np.int32)
                    valid &= index != 255
            case "nlcd":
                _check_values(raw, len(NLCD) - 1, what, "NLCD indices 0..16")
                index = raw.astype(np.int32)
                valid &= index != 0
            case _:
                _check_values(raw, 1, what, "0/1")
                index = raw.astype(np.int32)
        return index[None], valid

    def finalize(self, data: np.ndarray, valid: np.ndarray) -> Sample:
        """The merged arrays as a sample (priors scaled to [0, 1])."""
        if self.spec.kind in ("imagery", "prior"):
            scale = 255.0 if self.spec.kind == "prior" else 1.0
            image = np.where(valid, data / scale, 0).astype(np.float32)
            return {"image": torch.from_numpy(image), "valid": torch.from_numpy(valid)}
        fill = 255 if self.spec.kind == "labels" and self.classes == "enviroatlas5" else 0
        mask = np.where(valid, data[0], fill).astype(np.int64)
        return {"mask": torch.from_numpy(mask), "valid": torch.from_numpy(valid)}

    def _mask_cmap(self) -> tuple[ListedColormap, int]:
        match self.spec.kind:
            case "labels" if self.classes == "enviroatlas5":
                return ENVIROATLAS5.cmap, len(ENVIROATLAS5) - 1
            case "labels":
                return ENVIROATLAS.cmap, len(ENVIROATLAS) - 1
            case "nlcd":
                return NLCD.cmap, len(NLCD) - 1
            case _:
                return ListedColormap([(1.0, 1.0, 1.0), (0.0, 0.0, 0.0)], name="binary"), 1

    def plot(self, sample: Sample, show_titles: bool = True, suptitle: str | None = None) -> Figure:
        """Plot a sample: NAIP as RGB, a prior as its argmax, masks with the class colours.

        Args:
            sample: a sample of this dataset, optionally with ``prediction`` (class
                indices ``(H, W)``, same classes as ``mask``).
            show_titles: title each panel.
            suptitle: optional figure title.

        Returns:
            The matplotlib figure.
        """
        import matplotlib.pyplot as plt

        panels = [k for k in ("image", "mask", "prediction") if k in sample]
        fig, axs = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
        for ax, key in zip(axs[0], panels, strict=True):
            if key == "image" and self.spec.kind == "prior":
                ax.imshow(
                    sample["image"].argmax(dim=0).numpy(),
                    cmap=ENVIROATLAS5.cmap,
                    vmin=0,
                    vmax=len(ENVIROATLAS5) - 1,
                    interpolation="none",
                )
            elif key == "image":
                rgb = [self.bands.index(b) for b in ("R", "G", "B") if b in self.bands] or [0]
                image = sample["image"][rgb].permute(1, 2, 0).numpy() / 255.0
                ax.imshow(np.clip(image, 0, 1).squeeze())
            else:
                cmap, top = self._mask_cmap()
                values = sample[key].numpy()
                ax.imshow(
                    np.ma.masked_greater(values, top),
                    cmap=cmap,
                    vmin=0,
                    vmax=top,
                    interpolation="none",
                )
            ax.axis("off")
            if show_titles:
                ax.set_title(f"{key.capitalize()} ({self.layer})" if key == "image" else key)
        if suptitle is not None:
            fig.suptitle(suptitle)
        return fig


def _check_values(raw: np.ndarray, top: int, what: str, expected: str) -> None:
    if raw.max(initial=0) > top:
        found = np.unique(raw[raw > top])[:10].tolist()
        raise ValueError(f"{what}: values {found} found; expected {expected}")


class EnviroAtlasRegion:
    """One city split of the EnviroAtlas release, as one :class:`EnviroAtlas` per layer.

    Finds ``{split}_tiles-debuffered`` under ``root`` (the ``enviroatlas_lotp`` directory
    or its parent) and opens each layer there. Index it by layer to get the source, and
    use :meth:`tile_grid` to query every layer on a tile's own 1 m grid.

    Args:
        root: the release directory (``enviroatlas_lotp``) or the directory holding it.
        split: ``"{city}-{year}_1m-{split}"``, e.g. ``"pittsburgh_pa-2010_1m-train"``.
        layers: layers to open (suffixes or TorchGeo names).
        classes: class scheme of the ``h_highres_labels`` layer.
        transforms: function applied to each sample of every layer.

    Raises:
        DatasetNotFoundError: if ``root`` holds no split directory.
        ValueError: if ``split`` is not among them (the message lists those found).

    Example:
        >>> sorted(EnviroAtlasRegion.DEFAULT_LAYERS)
        ['a_naip', 'h_highres_labels', 'prior_from_cooccurrences_101_31']

    .. versionadded:: 0.1
    """

    DEFAULT_LAYERS = ("a_naip", "prior_from_cooccurrences_101_31", "h_highres_labels")

    def __init__(
        self,
        root: PathLike,
        split: str,
        layers: Sequence[str] = DEFAULT_LAYERS,
        classes: Literal["enviroatlas", "enviroatlas5"] = "enviroatlas5",
        transforms: Transform | None = None,
    ) -> None:
        self.root = os.fspath(root)
        self.download = False
        found = self.splits(self.root)
        if not found:
            # The error only reads ``root`` and ``download``, which this class has.
            raise DatasetNotFoundError(cast("Dataset[object]", self))
        if split not in found:
            raise ValueError(
                f"EnviroAtlas: no split {split!r} under {self.root}; found {sorted(found)}"
            )
        self.split = split
        self.directory = found[split]
        self.sources = {
            EnviroAtlas.layer_name(layer): EnviroAtlas(
                self.directory, layer=layer, classes=classes, transforms=transforms
            )
            for layer in layers
        }

    @staticmethod
    def splits(root: PathLike) -> dict[str, str]:
        """Split name -> directory, for every split directory under ``root``."""
        found: dict[str, str] = {}
        for base in (os.fspath(root), os.path.join(os.fspath(root), "enviroatlas_lotp")):
            for path in sorted(glob.glob(os.path.join(base, f"*{_SPLIT_SUFFIX}"))):
                if os.path.isdir(path):
                    found.setdefault(os.path.basename(path)[: -len(_SPLIT_SUFFIX)], path)
        return found

    def __getitem__(self, layer: str) -> EnviroAtlas:
        """The source of ``layer`` (suffix or TorchGeo name)."""
        name = EnviroAtlas.layer_name(layer)
        if name not in self.sources:
            raise KeyError(f"layer {name!r} not opened; opened: {list(self.sources)}")
        return self.sources[name]

    @property
    def tiles(self) -> list[str]:
        """Tile ids present in every opened layer, sorted."""
        common = set.intersection(*(set(s.tiles) for s in self.sources.values()))
        return sorted(common)

    def tile_grid(self, tile: str) -> Grid:
        """The 1 m grid of ``tile`` (that of its file in the first opened layer)."""
        source = next(iter(self.sources.values()))
        for path, name in zip(source.files, source.tiles, strict=True):
            if name == tile:
                return Grid.of_raster(path)
        raise KeyError(f"EnviroAtlas {self.split}: no tile {tile!r}; have {self.tiles}")

    def read(self, grid: Grid) -> dict[str, Sample]:
        """Every opened layer on ``grid``: layer -> sample."""
        return {layer: source[grid] for layer, source in self.sources.items()}
