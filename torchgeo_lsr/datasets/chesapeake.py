"""Chesapeake Land Cover (the CVPR 2019 release), one layer at a time.

.. versionadded:: 0.2
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Unpack

import numpy as np
import torch

from ..classes import CHESAPEAKE4, CHESAPEAKE_LC_TO_CHESAPEAKE4
from .base import RasterOptions, RasterSource, Sample
from .grid import Grid, PathLike
from .nlcd import nlcd_codes_to_index
from .warping import Remap

__all__ = [
    "CHESAPEAKE_LAYERS",
    "ChesapeakeCVPR",
    "ChesapeakeLayer",
    "ChesapeakeTile",
    "chesapeake_folders",
    "find_chesapeake_tiles",
]

LayerKind = Literal["imagery", "labels", "nlcd", "mask", "prior"]


@dataclass(frozen=True)
class ChesapeakeLayer:
    """What one layer of the release holds.

    Attributes:
        kind: ``imagery`` (raw digital numbers), ``labels`` (Chesapeake ``lc`` codes),
            ``nlcd`` (raw NLCD codes on the 1 m grid), ``mask`` (0/1) or ``prior``
            (4 class probabilities times 255).
        bands: band names of multi-band layers, in file order (empty: all bands).
    """

    kind: LayerKind
    bands: tuple[str, ...] = ()


#: Layers of the release (TorchGeo's ``ChesapeakeCVPR.valid_layers``) -> what they hold.
CHESAPEAKE_LAYERS: Mapping[str, ChesapeakeLayer] = {
    "naip-new": ChesapeakeLayer("imagery", ("R", "G", "B", "NIR")),
    "naip-old": ChesapeakeLayer("imagery", ("R", "G", "B", "NIR")),
    "landsat-leaf-on": ChesapeakeLayer("imagery"),
    "landsat-leaf-off": ChesapeakeLayer("imagery"),
    "lc": ChesapeakeLayer("labels"),
    "nlcd": ChesapeakeLayer("nlcd"),
    "buildings": ChesapeakeLayer("mask"),
    "prior_from_cooccurrences_101_31_no_osm_no_buildings": ChesapeakeLayer(
        "prior", CHESAPEAKE4.names
    ),
}

#: A tile folder of the release: ``{state}_1m_{year}_extended-debuffered-{split}_tiles``.
FOLDER_REGEX = (
    r"^(?P<state>[a-z]{2})_1m_(?P<year>\d{4})_extended-debuffered-(?P<split>[a-z]+)_tiles$"
)
_FOLDER = re.compile(FOLDER_REGEX)
#: A file of the release: ``{tile}_{layer}.tif``, e.g. ``m_3708035_ne_17_1_naip-new.tif``
#: (tile ids of the release are NAIP quarter quads; any id without a layer suffix is read).
FILE_REGEX = (
    r"^(?P<tile>[A-Za-z0-9_.-]+?)_(?P<layer>"
    + "|".join(re.escape(name) for name in CHESAPEAKE_LAYERS)
    + r")\.tif$"
)
_FILE = re.compile(FILE_REGEX)
#: Chesapeake ``lc`` values: 1-6 classes, 0 and 15 no data.
_LC_VALUES = frozenset({0, 1, 2, 3, 4, 5, 6, 15})


@dataclass(frozen=True)
class ChesapeakeTile:
    """One tile of the release: where it is and its file per layer.

    Attributes:
        tile: tile id, e.g. ``m_3708035_ne_17_1``.
        state: two-letter state (``wv``).
        split: ``train``, ``val`` or ``test``.
        year: NAIP year of the state's release (2013 or 2014).
        files: layer name -> file, for the layers present.
    """

    tile: str
    state: str
    split: str
    year: int
    files: Mapping[str, Path]


def chesapeake_folders(root: Path) -> list[Path]:
    """Tile folders at ``root`` or up to two levels below (the zips' own top folders)."""
    found: list[Path] = []
    for depth in ("*", "*/*", "*/*/*"):
        found += [p for p in root.glob(depth) if p.is_dir() and _FOLDER.match(p.name)]
    return sorted(set(found))


def find_chesapeake_tiles(
    root: PathLike,
    states: Sequence[str] | None = None,
    splits: Sequence[str] | None = None,
    tiles: Sequence[str] | None = None,
) -> list[ChesapeakeTile]:
    """The tiles of a Chesapeake CVPR release under ``root``, with their files per layer.

    ``root`` is the extracted release (``cvpr_chesapeake_landcover``, holding folders such
    as ``wv_1m_2014_extended-debuffered-test_tiles``) or a folder above it; the prior
    extension (``cvpr_chesapeake_landcover_prior_extension``) may sit beside it or be
    merged into it. A tile found in several places (the base release and the prior
    extension) gathers the layers of all of them.

    Args:
        root: the release directory.
        states: keep these states (``de``, ``md``, ``ny``, ``pa``, ``va``, ``wv``).
        splits: keep these splits: ``train``, ``val``, ``test``, or TorchGeo's
            ``"{state}-{split}"`` form (``wv-test``).
        tiles: keep these tile ids.

    Returns:
        Tiles sorted by (state, split, tile).

    Raises:
        FileNotFoundError: if ``root`` holds no tile folder.
        ValueError: if the selection matches nothing (the message lists what exists).
    """
    root = Path(root)
    folders = chesapeake_folders(root) if root.is_dir() else []
    if not folders:
        raise FileNotFoundError(
            f"{root}: no Chesapeake CVPR tile folder "
            "('{state}_1m_{year}_extended-debuffered-{split}_tiles') here or below"
        )
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for folder in folders:
        m = _FOLDER.match(folder.name)
        assert m is not None
        for path in sorted(folder.glob("*.tif")):
            f = _FILE.match(path.name)
            if f is None:
                continue
            key = (m["state"], m["split"], f["tile"])
            entry = found.setdefault(key, {"year": int(m["year"]), "files": {}})
            entry["files"].setdefault(f["layer"], path)
    every = [
        ChesapeakeTile(tile, state, split, entry["year"], dict(entry["files"]))
        for (state, split, tile), entry in sorted(found.items())
    ]
    unknown = sorted(set(tiles or []) - {t.tile for t in every})
    if unknown:
        raise ValueError(
            f"{root}: no Chesapeake tile named {unknown}; tiles are "
            f"{sorted({t.tile for t in every})[:8]}"
        )
    chosen = [t for t in every if _selected(t, states, splits, tiles)]
    if not chosen:
        have = sorted({f"{t.state}-{t.split}" for t in every})
        raise ValueError(
            f"{root}: no Chesapeake tile of states={list(states or [])} "
            f"splits={list(splits or [])} tiles={list(tiles or [])}; the release holds "
            f"{have} ({len(every)} tiles)"
        )
    missing = sorted(set(tiles or []) - {t.tile for t in chosen})
    if missing:
        raise ValueError(
            f"{root}: tiles {missing} are not of states={list(states or [])} "
            f"splits={list(splits or [])}"
        )
    return chosen


def _selected(
    tile: ChesapeakeTile,
    states: Sequence[str] | None,
    splits: Sequence[str] | None,
    tiles: Sequence[str] | None,
) -> bool:
    if states is not None and tile.state not in states:
        return False
    if (
        splits is not None
        and tile.split not in splits
        and f"{tile.state}-{tile.split}" not in splits
    ):
        return False
    return tiles is None or tile.tile in tiles


class ChesapeakeCVPR(RasterSource):
    """One layer of the Chesapeake Land Cover release of Robinson et al. (CVPR 2019).

    The `release <https://lila.science/datasets/chesapeakelandcover>`__ covers the
    Chesapeake Bay watershed at 1 m in per-state tile folders, one GeoTIFF per layer, in the
    layout TorchGeo's ``ChesapeakeCVPR`` reads::

        cvpr_chesapeake_landcover/{state}_1m_{year}_extended-debuffered-{split}_tiles/{tile}_{layer}.tif

    Unlike TorchGeo's class, this one reads whatever part of the release is present
    (any states and splits; no ``spatial_index.geojson`` needed), one ``layer`` at a time,
    on any :class:`~torchgeo_lsr.datasets.Grid`:

    ============================  ===========  ==============================================
    layer                         sample       values
    ============================  ===========  ==============================================
    ``naip-new``, ``naip-old``    ``image``    NAIP R, G, B, NIR digital numbers (float32)
    ``landsat-leaf-on``/``-off``  ``image``    the stored Landsat 8 bands (float32)
    ``lc``                        ``mask``     :data:`~torchgeo_lsr.classes.CHESAPEAKE4`
                                               indices: 1 water -> 0, 2 tree canopy -> 1,
                                               3 low vegetation -> 2, 4 barren, 5 impervious,
                                               6 road -> 3 impervious; 0 and 15 no data
    ``nlcd``                      ``mask``     NLCD indices 1-16 of the stored codes
    ``buildings``                 ``mask``     0/1 Microsoft building footprints
    ``prior_from_...``            ``image``    the authors' 4-class prior, stored / 255 (layer
                                               ``prior_from_cooccurrences_101_31_no_osm_no_buildings``)
    ============================  ===========  ==============================================

    ``valid`` (bool ``(H, W)``) is False outside every tile and at no-data labels / NLCD.
    Codes outside those tables raise a ValueError naming the file.

    If you use this dataset in your research, please cite:

    * Robinson, C., Hou, L., Malkin, K., Soobitsky, R., Czawlytko, J., Dilkina, B., and
      Jojic, N., "Large Scale High-Resolution Land Cover Mapping with Multi-Resolution
      Data", CVPR 2019, https://doi.org/10.1109/cvpr.2019.01301

    Args:
        paths: the release directory, or tile files of ``layer``.
        layer: one of :data:`CHESAPEAKE_LAYERS`.
        states: keep these states (directory input only).
        splits: keep these splits (``test`` or ``wv-test``; directory input only).
        tiles: keep these tile ids (directory input only).
        **kwargs: ``crs``, ``res``, ``bands``, ``transforms``, ``cache``, ``download``
            and ``checksum`` as for :class:`~.base.RasterSource`; ``bands`` is, for
            imagery and priors, a subset of the layer's bands. The release (about
            150 GB) is not downloaded here (``download`` must be False).

    Raises:
        DatasetNotFoundError: if no file of ``layer`` is found.
        ValueError: on an unknown layer or band.

    .. versionadded:: 0.2
    """

    what = "Chesapeake CVPR"
    filename_glob = "*.tif"
    filename_regex = FILE_REGEX

    def __init__(
        self,
        paths: PathLike | Iterable[PathLike] = "data",
        *,
        layer: str = "naip-new",
        states: Sequence[str] | None = None,
        splits: Sequence[str] | None = None,
        tiles: Sequence[str] | None = None,
        **kwargs: Unpack[RasterOptions],
    ) -> None:
        if layer not in CHESAPEAKE_LAYERS:
            raise ValueError(
                f"unknown Chesapeake CVPR layer {layer!r}: use one of {list(CHESAPEAKE_LAYERS)}"
            )
        self.layer = layer
        self.spec = CHESAPEAKE_LAYERS[layer]
        self.is_image = self.spec.kind in ("imagery", "prior")
        self.selection = (states, splits, tiles)
        super().__init__(paths, **kwargs)

    def _select_bands(self, bands: Sequence[str] | None) -> tuple[str, ...]:
        """A subset of the layer's bands (default all; none for layers without names)."""
        return self._check_bands(bands, self.spec.bands, f"Chesapeake CVPR layer {self.layer}")

    def band_indexes(self, path: str) -> list[int]:
        """1-based band indexes of :attr:`bands` (every band for layers without names)."""
        if not self.spec.bands:
            return super().band_indexes(path)
        return [self.spec.bands.index(b) + 1 for b in self.bands]

    def _list_files(self, patterns: Sequence[str]) -> list[str]:
        items = [self.paths] if isinstance(self.paths, str | os.PathLike) else list(self.paths)
        files: list[str] = []
        for item in items:
            path = Path(item)
            if path.is_dir():
                for tile in find_chesapeake_tiles(path, *self.selection):
                    if self.layer in tile.files:
                        files.append(os.fspath(tile.files[self.layer]))
            elif path.is_file():
                files.append(os.fspath(path))
        return [
            f for f in files if (m := _FILE.match(os.path.basename(f))) and m["layer"] == self.layer
        ]

    @property
    def tiles(self) -> list[str]:
        """Tile ids of :attr:`files`, in order."""
        ids = []
        for path in self.files:
            m = _FILE.match(os.path.basename(path))
            assert m is not None  # only matching names are listed
            ids.append(m["tile"])
        return ids

    def read_file(
        self, path: str, grid: Grid, remap: Remap | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One file on ``grid``: ``(data (C, H, W), valid (H, W))``, codes mapped.

        Raises:
            ValueError: naming ``path``, on values the layer cannot hold.
        """
        what = f"Chesapeake {self.layer} {path}"
        match self.spec.kind:
            case "nlcd":
                data, valid = super().read_file(
                    path, grid, lambda raw: nlcd_codes_to_index(raw, what)
                )
                return np.maximum(data, 0, out=data), valid
            case "labels":

                def to_class(raw: np.ndarray) -> np.ndarray:
                    bad = ~np.isin(raw, list(_LC_VALUES)) & (raw >= 0)
                    if bad.any():
                        found = np.unique(raw[bad])[:10].tolist()
                        raise ValueError(f"{what}: codes {found}; expected 1-6 (0, 15 no data)")
                    index = CHESAPEAKE_LC_TO_CHESAPEAKE4[np.clip(raw, 0, 255)].astype(np.int32)
                    return np.where((raw < 0) | (index == 255), -1, index)

                data, valid = super().read_file(path, grid, to_class)
                return np.maximum(data, 0, out=data), valid
            case "mask":
                data, valid = super().read_file(path, grid, remap)
                if data.max(initial=0) > 1:
                    found = np.unique(data[data > 1])[:10].tolist()
                    raise ValueError(f"{what}: values {found}; expected 0/1")
                return data, valid
            case _:
                return super().read_file(path, grid, remap)

    def finalize(self, data: np.ndarray, valid: np.ndarray) -> Sample:
        """The merged arrays as a sample (priors scaled to [0, 1], labels 255 where invalid)."""
        if self.spec.kind == "prior":
            image = np.where(valid, data / 255.0, 0).astype(np.float32)
            return {"image": torch.from_numpy(image), "valid": torch.from_numpy(valid)}
        if self.spec.kind == "labels":
            mask = np.where(valid, data[0], 255).astype(np.int64)
            return {"mask": torch.from_numpy(mask), "valid": torch.from_numpy(valid)}
        return super().finalize(data, valid)
