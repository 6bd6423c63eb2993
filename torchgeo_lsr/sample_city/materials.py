"""The surfaces the scene is painted with and the road classes it is drawn with.

A material map holds indices into :data:`MATERIALS`; :data:`MATERIAL_CODE`,
:data:`MATERIAL_SPECTRUM` and :data:`MATERIAL_TEXTURE` turn it into EnviroAtlas codes and
NAIP-like imagery. :data:`ROADS` gives each OSM highway class its paved width and the
probability that OSM has the way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# EnviroAtlas raw codes used by the scene.
WATER, IMPERVIOUS, BARREN, TREES, SHRUB, GRASS, AGRICULTURE = 10, 20, 30, 40, 52, 70, 80


@dataclass(frozen=True)
class Material:
    """A surface: its EnviroAtlas code, NAIP-like DN (R, G, B, NIR) and texture strength."""

    name: str
    code: int
    spectrum: tuple[int, int, int, int]
    texture: float


#: Surfaces of the scene. Index = value of the material map. Spectra are typical 8-bit NAIP
#: DN of a summer acquisition: water dark with little NIR, vegetation bright in NIR,
#: asphalt and roofs grey (roofs vary), soil and sand bright brownish.
MATERIALS = (
    Material("meadow", GRASS, (118, 134, 90, 178), 7.0),
    Material("lawn", GRASS, (100, 132, 82, 192), 6.0),
    Material("dry meadow", GRASS, (142, 144, 104, 166), 8.0),
    Material("crop field", AGRICULTURE, (122, 140, 90, 182), 5.0),
    Material("forest", TREES, (56, 80, 58, 160), 15.0),
    Material("yard tree", TREES, (62, 86, 60, 166), 14.0),
    Material("shrub", SHRUB, (88, 100, 74, 150), 10.0),
    Material("lake", WATER, (44, 58, 66, 24), 2.5),
    Material("river", WATER, (66, 78, 72, 34), 3.5),
    Material("stream", WATER, (58, 70, 66, 40), 4.0),
    Material("bare soil", BARREN, (176, 156, 126, 150), 10.0),
    Material("sand bar", BARREN, (196, 186, 160, 168), 8.0),
    Material("asphalt", IMPERVIOUS, (104, 104, 102, 92), 4.0),
    Material("concrete path", IMPERVIOUS, (168, 166, 158, 150), 5.0),
    Material("parking lot", IMPERVIOUS, (124, 122, 118, 108), 6.0),
    Material("grey roof", IMPERVIOUS, (148, 146, 144, 134), 5.0),
    Material("dark roof", IMPERVIOUS, (82, 80, 80, 76), 4.0),
    Material("red roof", IMPERVIOUS, (150, 104, 92, 104), 5.0),
    Material("white roof", IMPERVIOUS, (212, 210, 206, 196), 4.0),
    Material("tan roof", IMPERVIOUS, (162, 146, 124, 136), 5.0),
)
#: Material name -> its index in :data:`MATERIALS` (its value in a material map).
MATERIAL_INDEX = {m.name: i for i, m in enumerate(MATERIALS)}
#: The roof materials a house is given one of.
ROOFS = tuple(
    MATERIAL_INDEX[n] for n in ("grey roof", "dark roof", "red roof", "white roof", "tan roof")
)
MATERIAL_CODE = np.array([m.code for m in MATERIALS], dtype=np.uint8)
MATERIAL_SPECTRUM = np.array([m.spectrum for m in MATERIALS], dtype=np.float32)
MATERIAL_TEXTURE = np.array([m.texture for m in MATERIALS], dtype=np.float32)

#: Road classes: OSM highway value -> (paved width in m, probability the way is in OSM).
ROADS = {
    "primary": (20.0, 1.0),
    "secondary": (14.0, 1.0),
    "residential": (8.0, 0.97),
    "service": (6.0, 0.6),
    "footway": (2.5, 0.6),
}
#: Paved width of a driveway (m); OSM tags it ``highway=service``.
DRIVEWAY_WIDTH = 4.0
