"""Class schemes: every class table of the package lives here.

A :class:`ClassScheme` names the classes of a label raster, their colours and the raw
codes stored on disk. Built in:

* ``nlcd``: NLCD land cover in the paper's 17-index order (0 nodata, 11, 12, 21, ..., 95).
* ``enviroatlas``: EnviroAtlas 1 m land cover, 11 classes (0 unclassified, 10 water, ...).
* ``enviroatlas5``: the paper's 5 target classes (water, impervious, barren, trees incl.
  shrub, grass).
* ``chesapeake4``: Chesapeake land cover, 4 classes (water, trees, low vegetation,
  impervious).

and the reference NLCD -> EnviroAtlas co-occurrence matrices of four cities
(:func:`reference_cooccurrence`). User schemes load from YAML (:func:`load_scheme`).

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

import numpy as np
import yaml
from matplotlib.colors import ListedColormap

__all__ = [
    "CHESAPEAKE4",
    "CHESAPEAKE_LC_TO_CHESAPEAKE4",
    "ENVIROATLAS",
    "ENVIROATLAS5",
    "ENVIROATLAS_TO_CHESAPEAKE4",
    "ENVIROATLAS_TO_ENVIROATLAS5",
    "NLCD",
    "REFERENCE_CITIES",
    "SCHEMES",
    "ClassScheme",
    "LabelScheme",
    "get_scheme",
    "labels_to_classes",
    "load_scheme",
    "reference_cooccurrence",
]

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class ClassScheme:
    """A set of classes with names, colours and raw codes.

    Attributes:
        name: short identifier (``"enviroatlas5"``).
        names: class names, index ``i`` is class ``i``.
        colors: RGB colour per class (0-255).
        codes: raw code stored on disk for each class index (NLCD: 11, 21, ...), or None
            when files store the indices themselves.
        nodata: class index that means "no data" (or None when every class is real).
        nlcd_matrix: optional ``(len(names), 17)`` matrix P(class | NLCD index), columns
            in :data:`NLCD` order, each column summing to 1 (or 0 for no information).
    """

    name: str
    names: tuple[str, ...]
    colors: tuple[RGB, ...]
    codes: tuple[int, ...] | None = None
    nodata: int | None = None
    nlcd_matrix: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if len(self.names) != len(self.colors):
            raise ValueError(
                f"scheme {self.name!r}: {len(self.names)} names but {len(self.colors)} colours"
            )
        if self.codes is not None and len(self.codes) != len(self.names):
            raise ValueError(
                f"scheme {self.name!r}: {len(self.codes)} codes for {len(self.names)} classes"
            )
        if self.nlcd_matrix is not None and self.nlcd_matrix.shape != (
            len(self.names),
            len(NLCD_CODES),
        ):
            raise ValueError(
                f"scheme {self.name!r}: nlcd_matrix must be {len(self.names)} x {len(NLCD_CODES)}, "
                f"got {self.nlcd_matrix.shape}"
            )

    def __len__(self) -> int:
        return len(self.names)

    @property
    def cmap(self) -> ListedColormap:
        """A matplotlib colormap indexed by class."""
        return ListedColormap(np.array(self.colors) / 255.0, name=self.name)

    def code_to_index(
        self, raw: np.ndarray, *, unknown: int | None = None, what: str = "labels"
    ) -> np.ndarray:
        """Map raw codes to class indices.

        Args:
            raw: integer array of raw codes.
            unknown: index for codes outside the table; None raises instead.
            what: what the array is, for the error message.

        Returns:
            ``uint8`` array of class indices, same shape.

        Raises:
            ValueError: on codes outside the table when ``unknown`` is None.
        """
        codes = self.codes if self.codes is not None else tuple(range(len(self)))
        lut = np.full(max(max(codes), int(raw.max(initial=0))) + 1, 255, dtype=np.int16)
        lut[list(codes)] = np.arange(len(codes))
        if raw.min(initial=0) < 0:
            raise ValueError(f"{what}: negative codes {np.unique(raw[raw < 0])[:5].tolist()}")
        index = lut[raw]
        bad = index == 255
        if bad.any():
            if unknown is None:
                found = np.unique(raw[bad])[:10].tolist()
                raise ValueError(
                    f"{what}: codes {found} are not {self.name} codes "
                    f"(expected one of {list(codes)})"
                )
            index[bad] = unknown
        out: np.ndarray = index.astype(np.uint8)
        return out


# --- NLCD ------------------------------------------------------------------------------
# Names and colours: MRLC NLCD legend and the colour table embedded in NLCD files.
NLCD_CODES = (0, 11, 12, 21, 22, 23, 24, 31, 41, 42, 43, 52, 71, 81, 82, 90, 95)
NLCD = ClassScheme(
    name="nlcd",
    names=(
        "No Data",
        "Open Water",
        "Perennial Ice/Snow",
        "Developed, Open Space",
        "Developed, Low Intensity",
        "Developed, Medium Intensity",
        "Developed, High Intensity",
        "Barren Land",
        "Deciduous Forest",
        "Evergreen Forest",
        "Mixed Forest",
        "Shrub/Scrub",
        "Grassland/Herbaceous",
        "Pasture/Hay",
        "Cultivated Crops",
        "Woody Wetlands",
        "Emergent Herbaceous Wetlands",
    ),
    colors=(
        (0, 0, 0),
        (70, 107, 159),
        (209, 222, 248),
        (222, 197, 197),
        (217, 146, 130),
        (235, 0, 0),
        (171, 0, 0),
        (179, 172, 159),
        (104, 171, 95),
        (28, 95, 44),
        (181, 197, 143),
        (204, 184, 121),
        (223, 223, 194),
        (220, 217, 57),
        (171, 108, 40),
        (184, 217, 235),
        (108, 159, 184),
    ),
    codes=NLCD_CODES,
    nodata=0,
)
#: NLCD's fill value outside the conterminous US; read as nodata.
NLCD_FILL = 250

# --- EnviroAtlas -----------------------------------------------------------------------
# Codes and names: EPA EnviroAtlas meter-scale land cover; colours: Chesapeake Conservancy
# land-cover palette (water, impervious, barren, tree canopy, low vegetation) and NLCD's.
ENVIROATLAS = ClassScheme(
    name="enviroatlas",
    names=(
        "Unclassified",
        "Water",
        "Impervious Surface",
        "Soil and Barren",
        "Trees and Forest",
        "Shrubs",
        "Grass and Herbaceous",
        "Agriculture",
        "Orchards",
        "Woody Wetlands",
        "Emergent Wetlands",
    ),
    colors=(
        (255, 255, 255),
        (0, 197, 255),
        (156, 156, 156),
        (255, 170, 0),
        (38, 115, 0),
        (204, 184, 121),
        (163, 255, 115),
        (220, 217, 57),
        (171, 108, 40),
        (184, 217, 235),
        (108, 159, 184),
    ),
    codes=(0, 10, 20, 30, 40, 52, 70, 80, 82, 91, 92),
    nodata=0,
)

#: The paper's 5-class target scheme.
ENVIROATLAS5 = ClassScheme(
    name="enviroatlas5",
    names=("water", "impervious", "barren", "trees", "grass"),
    colors=((0, 197, 255), (156, 156, 156), (255, 170, 0), (38, 115, 0), (163, 255, 115)),
)

#: EnviroAtlas 11-index -> 5-class index, 255 = ignored. The authors' configs keep
#: EnviroAtlas indices [1, 2, 3, 4, 6] (``classes_keep``); shrub (5) joins trees, as the
#: paper's scheme "trees (incl. shrub)"; unclassified, agriculture, orchards and wetlands
#: are left out of training and scoring.
ENVIROATLAS_TO_ENVIROATLAS5 = np.array([255, 0, 1, 2, 3, 3, 4, 255, 255, 255, 255], dtype=np.uint8)

#: Chesapeake Land Cover, 4 classes as in TorchGeo's ChesapeakeCVPR prior experiments.
CHESAPEAKE4 = ClassScheme(
    name="chesapeake4",
    names=("water", "tree canopy", "low vegetation", "impervious"),
    colors=((0, 197, 255), (38, 115, 0), (163, 255, 115), (156, 156, 156)),
)

#: Chesapeake Conservancy land-cover codes of the CVPR 2019 release (the ``lc`` layer):
#: 1 water, 2 tree canopy / forest, 3 low vegetation / field, 4 barren, 5 impervious
#: (other), 6 impervious (road); 15 (and 0) no data. Source: Robinson et al., "Large Scale
#: High-Resolution Land Cover Mapping with Multi-Resolution Data", CVPR 2019, and
#: TorchGeo's ``ChesapeakeCVPR``.
CHESAPEAKE_LC_CODES = (1, 2, 3, 4, 5, 6)
#: Chesapeake ``lc`` code -> :data:`CHESAPEAKE4` index (255 = ignored): the paper's 4-class
#: scoring (Malkin et al. 2022, Table 1: water, tree canopy, low vegetation, and
#: impervious = codes 4, 5, 6).
CHESAPEAKE_LC_TO_CHESAPEAKE4 = np.full(256, 255, dtype=np.uint8)
CHESAPEAKE_LC_TO_CHESAPEAKE4[[1, 2, 3, 4, 5, 6]] = [0, 1, 2, 3, 3, 3]

#: EnviroAtlas 11-index -> :data:`CHESAPEAKE4` index (255 = dropped), for the reference
#: co-occurrence matrices: water; impervious and barren -> impervious; trees, orchards and
#: woody wetlands -> tree canopy; shrubs, grass, agriculture and emergent wetlands -> low
#: vegetation (Chesapeake's "low vegetation" is plant cover under 2 m).
ENVIROATLAS_TO_CHESAPEAKE4 = np.array([255, 0, 3, 3, 1, 2, 2, 2, 1, 1, 2], dtype=np.uint8)

#: How hi-res labels are coded on disk (see :func:`labels_to_classes`).
LabelScheme = Literal["enviroatlas", "chesapeake", "index"]

REFERENCE_CITIES = ("pittsburgh", "durham", "austin", "phoenix")


def reference_cooccurrence(city: str, scheme: str = "enviroatlas") -> np.ndarray:
    """Reference P(high-res class | NLCD class) of an EnviroAtlas city.

    Source: the public release of Malkin et al. (2022), "Resolving label uncertainty with
    implicit generative models" (github.com/estherrolf/implicit-posterior): per-tile
    averaged co-occurrences of NLCD and EnviroAtlas 1 m land cover over each whole city
    (Austin and Phoenix excluding agriculture tiles). See ``data/cooccurrence/README.md``.

    Args:
        city: ``pittsburgh``, ``durham``, ``austin`` or ``phoenix``.
        scheme: ``enviroatlas`` (11 rows), ``enviroatlas5`` (5 rows: water, impervious,
            barren, trees + shrub, grass) or ``chesapeake4`` (4 rows through
            :data:`ENVIROATLAS_TO_CHESAPEAKE4`); collapsed columns are renormalised over
            the kept rows, and a column with no mass on them (e.g. NLCD nodata) becomes
            all zeros = no information.

    Returns:
        ``(rows, 17)`` float64 matrix, columns in :data:`NLCD` order.
    """
    if city not in REFERENCE_CITIES:
        raise ValueError(f"unknown city {city!r}; built in: {', '.join(REFERENCE_CITIES)}")
    with resources.files("torchgeo_lsr").joinpath(f"data/cooccurrence/{city}.npy").open("rb") as f:
        matrix: np.ndarray = np.load(f)
    match scheme:
        case "enviroatlas":
            return matrix
        case "enviroatlas5":
            return _collapse(matrix, ENVIROATLAS_TO_ENVIROATLAS5, len(ENVIROATLAS5))
        case "chesapeake4":
            return _collapse(matrix, ENVIROATLAS_TO_CHESAPEAKE4, len(CHESAPEAKE4))
        case _:
            raise ValueError(
                "reference co-occurrence matrices exist for schemes enviroatlas, "
                f"enviroatlas5 and chesapeake4, not {scheme!r}"
            )


def _collapse(matrix: np.ndarray, row_map: np.ndarray, rows: int) -> np.ndarray:
    """Sum rows into ``rows`` groups (255 = drop), renormalise each column."""
    out = np.zeros((rows, matrix.shape[1]))
    for src, dst in enumerate(row_map):
        if dst != 255:
            out[dst] += matrix[src]
    total = out.sum(axis=0, keepdims=True)
    normalised: np.ndarray = np.divide(out, total, out=np.zeros_like(out), where=total > 0)
    return normalised


def labels_to_classes(
    raw: np.ndarray, scheme: ClassScheme, label_scheme: str = "enviroatlas"
) -> np.ndarray:
    """Hi-res label codes -> class indices of ``scheme`` (255 = ignore).

    Args:
        raw: integer label raster as stored.
        scheme: the target class scheme.
        label_scheme: ``enviroatlas`` (raw EnviroAtlas codes 10, 20, ..., 92; mapped to
            ``enviroatlas`` (unclassified ignored) or ``enviroatlas5`` through
            :data:`ENVIROATLAS_TO_ENVIROATLAS5`), ``chesapeake`` (Chesapeake ``lc`` codes
            1-6 to ``chesapeake4`` through :data:`CHESAPEAKE_LC_TO_CHESAPEAKE4`; 0, 15 and
            other codes ignored) or ``index`` (already class indices; values outside the
            scheme ignored).

    Returns:
        ``int64`` array of class indices, 255 where ignored.

    Example:
        >>> labels_to_classes(np.array([1, 2, 3, 4, 5, 6, 15]), CHESAPEAKE4, "chesapeake").tolist()
        [0, 1, 2, 3, 3, 3, 255]
    """
    if label_scheme == "index":
        return np.where((raw >= 0) & (raw < len(scheme)), raw, 255).astype(np.int64)
    if label_scheme == "chesapeake":
        if scheme.name != "chesapeake4":
            raise ValueError(
                f"labels in Chesapeake land-cover codes map to classes 'chesapeake4', not "
                f"{scheme.name!r}"
            )
        codes = np.clip(raw, 0, 255).astype(np.int64)
        classes: np.ndarray = CHESAPEAKE_LC_TO_CHESAPEAKE4[codes].astype(np.int64)
        return classes
    if label_scheme != "enviroatlas":
        raise ValueError(
            f"label_scheme must be 'enviroatlas', 'chesapeake' or 'index', got {label_scheme!r}"
        )
    index = ENVIROATLAS.code_to_index(np.clip(raw, 0, None), unknown=0)
    if scheme.name == "enviroatlas5":
        mapped: np.ndarray = ENVIROATLAS_TO_ENVIROATLAS5[index].astype(np.int64)
        return mapped
    if scheme.name == "enviroatlas":
        return np.where(index == 0, 255, index).astype(np.int64)
    raise ValueError(
        f"labels in EnviroAtlas codes cannot be mapped to classes {scheme.name!r}; "
        "use label_scheme='index' for labels that hold class indices"
    )


SCHEMES: dict[str, ClassScheme] = {
    s.name: s for s in (NLCD, ENVIROATLAS, ENVIROATLAS5, CHESAPEAKE4)
}


#: User schemes read by :func:`get_scheme`, by (path, size, mtime): each file is read once.
_LOADED: dict[tuple[str, int, int], ClassScheme] = {}


def get_scheme(name_or_path: str | os.PathLike[str]) -> ClassScheme:
    """A built-in scheme by name, or a user scheme from a YAML file (see :func:`load_scheme`).

    A YAML file is read once (again only when it changes on disk).
    """
    key = str(name_or_path)
    if key in SCHEMES:
        return SCHEMES[key]
    if os.path.exists(key):
        stat = os.stat(key)
        found = (os.path.abspath(key), stat.st_size, stat.st_mtime_ns)
        if found not in _LOADED:
            _LOADED[found] = load_scheme(key)
        return _LOADED[found]
    raise ValueError(f"unknown class scheme {key!r}: use one of {sorted(SCHEMES)} or a YAML file")


def load_scheme(path: str | os.PathLike[str]) -> ClassScheme:
    """Load a user class scheme from YAML.

    The file holds ``name``, a list ``classes`` of ``{name, color}`` (colour as
    ``[r, g, b]`` or ``"#rrggbb"``), optional ``codes`` and ``nodata``, and optionally
    ``nlcd_matrix``: either a ``K x 17`` list of lists (columns in NLCD order) or a mapping
    from NLCD code to a list of K probabilities. Example::

        name: city3
        classes:
          - {name: water, color: "#00c5ff"}
          - {name: built, color: [156, 156, 156]}
          - {name: green, color: [38, 115, 0]}
        nlcd_matrix:
          11: [1.0, 0.0, 0.0]
          21: [0.0, 0.3, 0.7]

    Raises:
        ValueError: naming the file and the key that is wrong.
    """
    with open(path) as f:
        try:
            spec: Any = yaml.safe_load(f)
        except yaml.YAMLError as err:
            raise ValueError(f"class scheme {path}: not valid YAML ({err})") from err
    if not isinstance(spec, Mapping) or not isinstance(spec.get("classes"), Sequence):
        raise ValueError(f"class scheme {path}: expected a mapping with a 'classes' list")
    try:
        names = tuple(str(c["name"]) for c in spec["classes"])
        colors = tuple(_parse_color(c["color"]) for c in spec["classes"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"class scheme {path}: each class needs a name and a color ({err})"
        ) from err
    matrix = None
    if spec.get("nlcd_matrix") is not None:
        matrix = _parse_matrix(spec["nlcd_matrix"], len(names), path)
    codes = tuple(int(c) for c in spec["codes"]) if spec.get("codes") is not None else None
    try:
        return ClassScheme(
            name=str(spec.get("name", os.path.splitext(os.path.basename(path))[0])),
            names=names,
            colors=colors,
            codes=codes,
            nodata=spec.get("nodata"),
            nlcd_matrix=matrix,
        )
    except ValueError as err:
        raise ValueError(f"class scheme {path}: {err}") from err


def _parse_color(value: Any) -> RGB:
    if isinstance(value, str) and value.startswith("#") and len(value) == 7:
        return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)
    if isinstance(value, Sequence) and len(value) == 3 and all(0 <= int(v) <= 255 for v in value):
        return int(value[0]), int(value[1]), int(value[2])
    raise ValueError(f"bad color {value!r}: use [r, g, b] in 0..255 or '#rrggbb'")


def _parse_matrix(value: Any, rows: int, path: str | os.PathLike[str]) -> np.ndarray:
    if isinstance(value, Mapping):
        matrix = np.zeros((rows, len(NLCD_CODES)))
        for code, column in value.items():
            if int(code) not in NLCD_CODES:
                raise ValueError(f"class scheme {path}: nlcd_matrix key {code} is not an NLCD code")
            matrix[:, NLCD_CODES.index(int(code))] = column
    else:
        matrix = np.asarray(value, dtype=np.float64)
    if matrix.shape != (rows, len(NLCD_CODES)):
        raise ValueError(
            f"class scheme {path}: nlcd_matrix must be {rows} x 17, got {matrix.shape}"
        )
    if (matrix < 0).any():
        raise ValueError(f"class scheme {path}: nlcd_matrix has negative entries")
    total = matrix.sum(axis=0, keepdims=True)
    normalised: np.ndarray = np.divide(matrix, total, out=np.zeros_like(matrix), where=total > 0)
    return normalised
