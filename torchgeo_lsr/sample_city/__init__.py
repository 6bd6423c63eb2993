"""A synthetic but realistic sample city, written in the real formats of each source.

:func:`make_sample_city` draws a small 1 m scene (a road network with arterials and a
residential street grid, houses with lawns and yard trees, a meandering river with a sand
bar, a lake with a stream and a culvert, forest, meadows, a construction site) and writes
it as a *region directory*::

    REGION/
      naip/       4-band (R, G, B, NIR) uint8 GeoTIFF tiles, EPSG:26917 (UTM 17N), 1 m
      nlcd/       Annual_NLCD_LndCov_2021_CU_C1V1.tif: NLCD codes, EPSG:5070, 30 m
      osm/        sample_city.osm: OpenStreetMap XML (roads, waterways, a lake), EPSG:4326
      buildings/  footprints.geojson: Microsoft-style footprints, EPSG:4326
      labels/     EnviroAtlas 1 m land-cover codes, one GeoTIFF per NAIP tile
      README.md   what was generated, how, and how the weak sources are wrong
      city.json   seed, sizes, class fractions and the applied errors

The weak sources are imperfect the way real ones are, so a benchmark on this city does
not flatter a method: NLCD is aggregated to 30 m with NLCD's own rules from a slightly
misregistered, *older* state of the scene (a construction site is still forest), and a few
percent of its cells are relabelled to a plausible neighbour class; OSM and the building
footprints are shifted by a few metres, jittered, simplified and incomplete.

Everything is drawn from one seeded generator: the same seed gives byte-identical files.

The package follows the stages of generation, each file importing only those before it:

* :mod:`.layout`: the CRSs, the tiled area and the canvas, NAIP tile names.
* :mod:`.materials`: the surfaces (EnviroAtlas code, spectrum, texture) and road classes.
* :mod:`.geometry`: random fields, wiggly lines, rectangles, rasterizing onto the canvas.
* :mod:`.scene`: drawing the scene, vectors and material map, step by step.
* :mod:`.sources`: the imagery and the weak sources (NLCD, OSM, footprints) with their errors.
* :mod:`.writers`: GeoTIFF, OSM XML, GeoJSON and README formats.
* :mod:`.generate`: :func:`make_sample_city`, the stages in order, ``city.json``.
* :mod:`.cli`: ``torchgeo-lsr sample-city`` (also ``python -m torchgeo_lsr.sample_city``).

Example::

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     city = make_sample_city(f"{tmp}/city", tiles=1, size=128, progress=False)
    ...     [p.name for p in city.naip], sorted(city.class_fractions)
    (['m_3507801_ne_17_060_20220615.tif'], ['barren', 'grass', 'impervious', 'trees', 'water'])

.. versionadded:: 0.1
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .cli import main
    from .generate import SampleCity, make_sample_city
    from .layout import NAIP_CRS, NLCD_CRS
    from .materials import ROADS

__all__ = ["NAIP_CRS", "NLCD_CRS", "ROADS", "SampleCity", "main", "make_sample_city"]

# Names are imported from their modules on first use (see torchgeo_lsr._lazy).
__getattr__, __dir__ = lazy_exports(__name__, __file__)
