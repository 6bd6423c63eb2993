"""The region: the unit a user hands us, in either of the layouts we read.

Every command that takes a region (``prior``, ``map``, ``evaluate``, the learned prior)
opens it here, once, with :meth:`Region.open`, and asks it for its imagery tiles, its
NLCD, its auxiliary layers and the labels of a tile; nothing else knows where a region
keeps what. Two layouts are read:

* a **region directory** (ours)::

      REGION/
        naip/        imagery tiles (GeoTIFF)
        nlcd/        NLCD land cover (Annual NLCD or legacy NLCD GeoTIFF)
        osm/         optional: OpenStreetMap (.osm XML, .pbf, .geojson, .gpkg)
        buildings/   optional: building footprints (vector files)
        labels/      optional: hi-res labels (EnviroAtlas codes), one per tile or one file

  each source in any CRS; ``tiles`` picks imagery tiles by file stem;

* the **Chesapeake CVPR release** (Robinson et al., CVPR 2019; TorchGeo's
  ``ChesapeakeCVPR`` layout): per-state tile folders
  ``{state}_1m_{year}_extended-debuffered-{split}_tiles/{tile}_{layer}.tif``; the imagery is
  ``naip-new``, the NLCD ``nlcd``, the buildings ``buildings`` (a raster mask), the labels
  ``lc`` (Chesapeake codes, scored as ``chesapeake4``); ``states``, ``splits`` and ``tiles``
  pick tiles (see :func:`~torchgeo_lsr.datasets.chesapeake.find_chesapeake_tiles`).

Outputs (priors, maps) are named like the imagery tile (``{tile}_naip-new.tif`` in the
Chesapeake layout) and :meth:`Region.label_path` pairs them with their labels.

.. versionadded:: 0.2
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
from rasterio.enums import Resampling

from .checks import AUX_NAMES, AuxName
from .classes import ClassScheme, LabelScheme, labels_to_classes
from .datasets.aligned import list_rasters, match_by_stem
from .datasets.base import GeoSource
from .datasets.grid import Grid
from .datasets.warping import warp_to_grid

__all__ = [
    "AuxName",
    "Region",
    "RegionLayout",
    "fingerprint",
    "open_region_from_args",
    "read_label_file",
]

RegionLayout = Literal["directory", "chesapeake"]


def fingerprint(paths: Iterable[Path]) -> list[tuple[str, int, int]]:
    """``(name, size, mtime_ns)`` of each file: what output keys hash to notice a change."""
    return [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in paths]


@dataclass(frozen=True)
class Region:
    """A region's sources, found once (see the module docstring).

    Attributes:
        root: the directory the user named.
        layout: ``directory`` (ours) or ``chesapeake`` (the CVPR release).
        images: imagery tiles, in order; they define the output grids and names.
        nlcd_files: NLCD files (any tiling; in the Chesapeake layout one per tile).
        labels: the hi-res label file of each image (same order), or None.
        label_scheme: how the labels are coded (``enviroatlas`` in a region directory,
            ``chesapeake`` in the release).
        osm: the OpenStreetMap directory, or None.
        buildings: building footprint files (vectors in a region directory, 0/1 rasters
            in the Chesapeake layout), or None.
    """

    root: Path
    layout: RegionLayout
    images: tuple[Path, ...]
    nlcd_files: tuple[Path, ...]
    labels: tuple[Path, ...] | None
    label_scheme: LabelScheme
    osm: Path | None
    buildings: tuple[Path, ...] | None

    # ------------------------------------------------------------------ opening
    @staticmethod
    def is_region(path: str | os.PathLike[str]) -> bool:
        """Whether ``path`` is a region directory or a Chesapeake CVPR release."""
        from .datasets.chesapeake import chesapeake_folders

        root = Path(path)
        return root.is_dir() and ((root / "naip").is_dir() or bool(chesapeake_folders(root)))

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | Region,
        *,
        states: Sequence[str] | None = None,
        splits: Sequence[str] | None = None,
        tiles: Sequence[str] | None = None,
    ) -> Region:
        """Open a region directory or a Chesapeake CVPR release.

        Args:
            path: the directory (or an open :class:`Region`, returned as it is when no
                selection is given).
            states: Chesapeake states to keep (``wv``, ...); Chesapeake layout only.
            splits: Chesapeake splits to keep (``test`` or ``wv-test``); Chesapeake only.
            tiles: tiles to keep: imagery file stems (region directory) or tile ids
                (``m_3708035_ne_17_1``, Chesapeake).

        Raises:
            FileNotFoundError: if ``path`` is neither layout, or has no imagery.
            ValueError: on a selection that matches nothing (an empty list included), or
                Chesapeake options for a region directory.
        """
        for option, chosen in (("states", states), ("splits", splits), ("tiles", tiles)):
            if chosen is not None and len(chosen) == 0:  # [] would otherwise mean "all"
                raise ValueError(f"--{option}: an empty selection; name at least one")
        if isinstance(path, Region):
            if states is not None or splits is not None or tiles is not None:
                raise ValueError("a Region is already opened: select tiles when opening it")
            return path
        root = Path(path)
        if (root / "naip").is_dir():
            if states or splits:
                raise ValueError(
                    f"region {root}: --states and --splits select tiles of a Chesapeake CVPR "
                    "release; this is a region directory (use --tiles with imagery stems)"
                )
            return cls._open_directory(root, tiles)
        from .datasets.chesapeake import chesapeake_folders

        if root.is_dir() and chesapeake_folders(root):
            return cls._open_chesapeake(root, states, splits, tiles)
        raise FileNotFoundError(
            f"region {root}: no naip/ directory and no Chesapeake CVPR tile folder; expected "
            "a region directory (naip/, nlcd/, optional osm/, buildings/, labels/) or a "
            "Chesapeake CVPR release ('{state}_1m_{year}_extended-debuffered-{split}_tiles/')"
        )

    @classmethod
    def _open_directory(cls, root: Path, tiles: Sequence[str] | None) -> Region:
        from .datasets import NAIP

        if not _imagery_files(root / "naip"):
            raise FileNotFoundError(
                f"region {root}: naip/ holds no GeoTIFF; put the imagery tiles there "
                "(e.g. m_3807504_ne_18_060_20181104.tif)"
            )
        images = [Path(p) for p in NAIP(root / "naip").files]
        _check_same_dtype(images)
        if tiles is not None:
            unknown = sorted(set(tiles) - {p.stem for p in images})
            if unknown:
                raise ValueError(
                    f"region {root}: no imagery tile named {unknown}; tiles are "
                    f"{sorted(p.stem for p in images)[:10]}"
                )
            images = [p for p in images if p.stem in tiles]
        nlcd = tuple(sorted(p for p in (root / "nlcd").rglob("*") if p.is_file()))
        labels = None
        if (root / "labels").is_dir():
            labels = tuple(match_by_stem(images, list_rasters(root / "labels", "labels"), "labels"))
        osm = root / "osm" if (root / "osm").is_dir() else None
        buildings = None
        if (root / "buildings").is_dir():
            buildings = tuple(sorted(p for p in (root / "buildings").rglob("*") if p.is_file()))
        return cls(root, "directory", tuple(images), nlcd, labels, "enviroatlas", osm, buildings)

    @classmethod
    def _open_chesapeake(
        cls,
        root: Path,
        states: Sequence[str] | None,
        splits: Sequence[str] | None,
        tiles: Sequence[str] | None,
    ) -> Region:
        from .datasets.chesapeake import find_chesapeake_tiles

        found = find_chesapeake_tiles(root, states, splits, tiles)
        chosen = [t for t in found if "naip-new" in t.files]
        if not chosen:
            raise FileNotFoundError(f"region {root}: no naip-new tile in the selection")

        def layer(name: str) -> tuple[Path, ...] | None:
            files = [t.files.get(name) for t in chosen]
            if all(f is None for f in files):
                return None
            missing = [t.tile for t, f in zip(chosen, files, strict=True) if f is None]
            if missing:
                raise FileNotFoundError(
                    f"region {root}: tiles {missing[:5]} have no {name} layer while others do"
                )
            return tuple(f for f in files if f is not None)

        return cls(
            root,
            "chesapeake",
            tuple(t.files["naip-new"] for t in chosen),
            layer("nlcd") or (),
            layer("lc"),
            "chesapeake",
            None,
            layer("buildings"),
        )

    # ------------------------------------------------------------------ sources
    @property
    def name(self) -> str:
        """The region's name (its directory)."""
        return self.root.name

    def describe(self) -> str:
        """One line: layout, tiles and what the region holds."""
        held = ["nlcd"] * bool(self.nlcd_files) + list(self.available_aux())
        held += ["labels"] * (self.labels is not None)
        return f"{self.root} ({self.layout}, {len(self.images)} tiles; {', '.join(held)})"

    def available_aux(self) -> tuple[AuxName, ...]:
        """The auxiliary sources this region has (``osm``, ``buildings``)."""
        have = {"osm": self.osm is not None, "buildings": self.buildings is not None}
        return tuple(a for a in AUX_NAMES if have[a])

    def nlcd(self) -> GeoSource:
        """The NLCD source (``mask``: NLCD 17-index; ``valid``).

        Raises:
            FileNotFoundError: if the region has no NLCD.
        """
        if not self.nlcd_files:
            where = "nlcd/ directory" if self.layout == "directory" else "nlcd layer"
            raise FileNotFoundError(f"region {self.root}: no {where} (the prior needs NLCD)")
        if self.layout == "chesapeake":
            from .datasets.chesapeake import ChesapeakeCVPR

            return ChesapeakeCVPR(list(self.nlcd_files), layer="nlcd")
        from .datasets import NLCD

        return NLCD(self.root / "nlcd")

    def aux_sources(self, aux: Sequence[AuxName]) -> dict[str, GeoSource]:
        """Fusion layers (``roads``, ``water_bodies``, ``waterways``, ``buildings``) of ``aux``.

        Raises:
            FileNotFoundError: naming the source the region lacks.
        """
        sources: dict[str, GeoSource] = {}
        for name in aux:
            if name in self.available_aux():
                continue
            if self.layout == "directory":
                why = f"needs a {name}/ directory"
            elif name == "osm":
                why = "the Chesapeake CVPR release has no OpenStreetMap layer"
            else:
                why = f"the selected Chesapeake tiles have no {name} layer"
            raise FileNotFoundError(f"region {self.root}: --aux {name}: {why}")
        if "osm" in aux and self.osm is not None:
            from .datasets import OSMRoads, OSMWaterBodies, OSMWaterways

            sources["roads"] = OSMRoads(self.osm)
            sources["water_bodies"] = OSMWaterBodies(self.osm)
            sources["waterways"] = OSMWaterways(self.osm)
        if "buildings" in aux:
            assert self.buildings is not None
            if self.layout == "chesapeake":
                from .datasets.chesapeake import ChesapeakeCVPR

                sources["buildings"] = ChesapeakeCVPR(list(self.buildings), layer="buildings")
            else:
                from .datasets import BuildingFootprints

                sources["buildings"] = BuildingFootprints(self.root / "buildings")
        return sources

    def input_files(self, aux: Sequence[AuxName] = (), labels: bool = False) -> list[Path]:
        """The files a prior of this region reads (NLCD, ``aux``, labels if ``labels``)."""
        files = list(self.nlcd_files)
        if "osm" in aux and self.osm is not None:
            files += [p for p in self.osm.rglob("*") if p.is_file()]
        if "buildings" in aux and self.buildings is not None:
            files += list(self.buildings)
        if labels and self.labels is not None:
            files += list(self.labels)
        return sorted(set(files))

    # ------------------------------------------------------------------- labels
    def label_path(self, stem: str) -> Path:
        """The label file of the imagery tile (or output named like it) ``stem``.

        Raises:
            FileNotFoundError: if the region has no labels.
            ValueError: if no imagery tile has that stem.
        """
        if self.labels is None:
            where = "labels/ directory" if self.layout == "directory" else "lc layer"
            raise FileNotFoundError(f"region {self.root}: no {where}")
        for image, label in zip(self.images, self.labels, strict=True):
            if image.stem == stem:
                return label
        raise ValueError(
            f"region {self.root}: no imagery tile named {stem!r} to pair labels with; "
            f"tiles are {[p.stem for p in self.images][:5]}"
        )

    def read_labels(
        self, stem: str, grid: Grid, scheme: ClassScheme, label_scheme: LabelScheme | None = None
    ) -> np.ndarray:
        """The labels of tile ``stem`` on ``grid`` (nearest) as ``scheme`` indices, 255 = none.

        Args:
            stem: imagery tile stem.
            grid: where to read them.
            scheme: the target classes.
            label_scheme: how they are coded; None = :attr:`label_scheme`.

        Returns:
            ``(H, W)`` int64 class indices.
        """
        coding = label_scheme or self.label_scheme
        return read_label_file(self.label_path(stem), grid, scheme, coding)


def read_label_file(
    path: Path, grid: Grid, scheme: ClassScheme, label_scheme: LabelScheme
) -> np.ndarray:
    """A label raster on ``grid`` (nearest, any CRS) as ``scheme`` indices, 255 = none."""
    with rasterio.open(path) as src:
        raw = warp_to_grid(
            src,
            grid,
            indexes=[1],
            resampling=Resampling.nearest,
            dtype="int32",
            fill=-1,
            what="labels",
        )[0]
    classes = labels_to_classes(np.clip(raw, 0, None), scheme, label_scheme)
    return np.where(raw >= 0, classes, 255)


def _names(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def open_region_from_args(args: Any) -> Region | None:
    """The region named by :func:`~torchgeo_lsr.options.add_region_options`' options.

    None when no REGION was given.

    Raises:
        ValueError: if ``--states``, ``--splits`` or ``--tiles`` come without a REGION.
    """
    if args.region is None:
        given = [f"--{o}" for o in ("states", "splits", "tiles") if getattr(args, o) is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: select tiles of a REGION; none was given")
        return None
    return Region.open(
        args.region,
        states=_names(args.states),
        splits=_names(args.splits),
        tiles=_names(args.tiles),
    )


def _imagery_files(folder: Path) -> list[Path]:
    """The GeoTIFFs under ``folder`` (any depth), or [] if there is none."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".tif", ".tiff"))


def _check_same_dtype(images: Sequence[Path]) -> None:
    """Every imagery tile has the first tile's data type (a uint16 tile is not uint8)."""
    dtypes = {}
    for path in images:
        with rasterio.open(path) as src:
            dtypes[path] = src.dtypes[0]
    first = dtypes[images[0]] if images else None
    odd = [p for p, d in dtypes.items() if d != first]
    if odd:
        raise ValueError(
            f"{odd[0]}: imagery of type {dtypes[odd[0]]}, but {images[0].name} is {first}; "
            "every tile of a region must have the same data type (rescale it first)"
        )
