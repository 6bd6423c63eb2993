r"""Map a region in one command: prior -> training on the prior -> whole-region prediction.

``torchgeo-lsr map REGION_DIR --out OUT_DIR`` opens the region (a region directory or the
Chesapeake CVPR release, :class:`~torchgeo_lsr.region.Region`), builds (or reuses) one
prior per imagery tile, trains the FCN on the region's own imagery and prior
(transductive, as the paper; no hi-res label is used; imagery standardised per band with
the region's statistics), predicts every tile exactly (see :mod:`.predict`), and writes:

* ``q/<tile>.tif`` and ``r/<tile>.tif``: uint8 class-map COGs (colour table, class names)
  of the network output q and of the implicit posterior r, whose denominator
  :math:`\sum_j q_j(l)` is taken over the whole region (the paper's evaluation);
* ``q.vrt``, ``r.vrt``: region mosaics; ``quicklook.png``: imagery | prior | q | r;
* ``probs/q|r/<tile>.tif`` (with ``save_probs``): uint8 x 255 probabilities;
* ``uncertainty/q_entropy|r_entropy|r_maxprob/<tile>.tif`` (with ``save_uncertainty``):
  uint8 COGs on the class maps' grid of the entropy of q, the entropy of r (value x
  log(K) / 255 = nats: 255 is a uniform distribution) and r's max probability (value / 255),
  computed from the same q and r as the maps; each states its scale (GDAL band scale and
  unit, tags ``LSR_ENTROPY_SCALE`` or ``LSR_SCALE``), and ``quicklook.png`` gets a row
  of them with colour ramps (see :func:`~torchgeo_lsr.plot.plot_uncertainty`);
* ``summary.json``: parameters, versions, timings, the normalisation and, when the region
  has labels, the accuracy and mIoU of q, r and the prior's argmax.

Every stage can be interrupted and rerun: priors and maps carry keys of their inputs
and are reused when they match, training resumes from ``checkpoints/last.ckpt``, and no
file is ever half-written under its final name. Rerunning with ``save_probs`` or
``save_uncertainty`` newly set retrains nothing and writes only the missing rasters.

.. versionadded:: 0.1
"""

from __future__ import annotations

import dataclasses
import gc
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch

from ..classes import labels_to_classes
from ..outputs import output_lock, write_json
from ..priors.builder import build_label_priors, build_region_priors
from ..progress import report
from ..region import Region
from .config import MapConfig, Normalization
from .evaluate import evaluate_many, save_confusion
from .io import UNCERTAINTY_LAYERS, quicklook, write_vrt
from .prediction import predict_region, prior_argmax_maps
from .training import train

__all__ = ["MapConfig", "map_region"]


@dataclass
class _Timer:
    times: dict[str, float] = field(default_factory=dict)

    def __call__(self, name: str, start: float) -> None:
        self.times[name] = round(time.perf_counter() - start, 2)


# -------------------------------------------------------------------------- main
def map_region(
    region: Region | str | os.PathLike[str] | None,
    out: str | os.PathLike[str],
    config: MapConfig | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Map a region (see the module docstring); returns the summary written to JSON.

    Under a DDP strategy launched as one process per rank, ranks other than 0 return an
    empty dict once their share of the prediction is written.

    Args:
        region: an open :class:`~torchgeo_lsr.region.Region`, a region directory or a
            Chesapeake CVPR release (every tile); None generates the sample city into
            ``out/region``.
        out: output directory (created; rerunning into it resumes).
        config: parameters (default: :meth:`MapConfig.for_accelerator`, the training
            budget of the accelerator found, said on stderr).
        progress: False shows no progress, True shows it, None (default) decides from
            the verbosity (:func:`torchgeo_lsr.progress.set_verbosity`): each stage's
            done/total and ETA on stderr, a bar on a terminal, else a line every few
            seconds.
    """
    if config is None:
        config, budget = MapConfig.for_accelerator()
        report("budget", budget.describe(), progress)
    out = Path(out)
    with output_lock(out, "torchgeo-lsr map"):
        return _map_region(region, out, config, progress)


def _map_region(
    region: Region | str | os.PathLike[str] | None,
    out: Path,
    config: MapConfig,
    progress: bool | None,
) -> dict[str, Any]:
    timer = _Timer()
    t0 = time.perf_counter()
    if region is None:
        from ..sample_city import make_sample_city

        city = out / "region"
        if not (city / "city.json").exists():
            make_sample_city(city, seed=config.seed, overwrite=city.exists(), progress=progress)
        timer("sample_city_s", t0)
        region = city
    region, scheme = Region.open(region), config.scheme  # the scheme, resolved once
    if config.prior == "labels" and region.labels is None:
        raise ValueError(f"--prior labels: region {region.root} has no labels (labels/ or lc)")
    if region.labels is not None:  # labels these classes cannot score: fail before training
        try:
            labels_to_classes(np.zeros(1, np.int64), scheme, region.label_scheme)
        except ValueError:
            known = {"enviroatlas": "enviroatlas, enviroatlas5", "chesapeake": "chesapeake4"}
            raise ValueError(
                f"--classes {config.classes}: {region.root}'s labels are in "
                f"{region.label_scheme} codes, which map scores only in classes "
                f"{known.get(region.label_scheme, 'index')}; choose one of those, or map a "
                "copy of the region without labels/ (no scores)"
            ) from None
    # the summary describes one finished run: a run that stops leaves none, never an
    # older run's beside this run's maps
    (out / "summary.json").unlink(missing_ok=True)

    start = time.perf_counter()
    aux = config.prior_aux(region)
    norm = Normalization.of(region, config.normalize, config.init_from)
    timer("normalization_s", start)
    start = time.perf_counter()
    prior_config = config.prior_config(aux)
    priors = out / "prior"
    if config.learned_prior is not None:
        from ..priors.learned import apply_learned_prior

        apply_learned_prior(
            config.learned_prior, region, priors, window=config.window, progress=progress
        )
    elif config.prior == "labels":
        labelled = build_label_priors(region, priors, scheme)
        report("prior", _written(len(labelled.written), len(labelled.skipped)), progress)
    else:
        build_region_priors(region, priors, prior_config, progress=progress, workers=config.workers)
    timer("prior_s", start)

    start = time.perf_counter()
    checkpoint = train(region, priors, out, config, progress, norm)
    gc.collect()  # the trainer's reference cycles hold the training tiles (~1 GB a NAIP tile)
    timer("train_s", start)

    start = time.perf_counter()
    maps = predict_region(region, priors, out, checkpoint, config, progress, norm)
    timer("predict_s", start)
    if maps is None:  # a DDP rank other than 0: its tiles are written, rank 0 finishes
        return {}

    for name in ("q", "r"):
        write_vrt(maps[name], out / f"{name}.vrt")
    first = region.images[0]
    layers = [name for name in UNCERTAINTY_LAYERS if name in maps]
    quicklook(
        first,
        priors / f"{first.stem}.tif",
        {"q (network)": maps["q"][0], "r (posterior)": maps["r"][0]},
        scheme,
        out / "quicklook.png",
        title=f"{region.name}: {first.stem}",
        uncertainty={name: maps[name][0] for name in layers},
    )
    outputs: dict[str, Any] = {"q": "q.vrt", "r": "r.vrt", "quicklook": "quicklook.png"}
    if config.save_probs:
        outputs["probs"] = {name: f"probs/{name}/" for name in ("q", "r")}
    if layers:
        outputs["uncertainty"] = {name: f"uncertainty/{name}/" for name in layers}
    report("outputs", "q.vrt, r.vrt, quicklook.png", progress)
    summary: dict[str, Any] = {
        "region": str(region.root),
        "layout": region.layout,
        "tiles": [p.stem for p in region.images],
        "out": str(out),
        "config": dataclasses.asdict(config),
        "prior": dataclasses.asdict(prior_config) | {"aux": list(aux)},
        "normalization": dataclasses.asdict(norm),
        "versions": _versions(),
        "timings_s": timer.times,
        "outputs": outputs,
    }
    if region.labels is not None:
        prior_maps = prior_argmax_maps(region, priors, out, scheme)
        sets = {"q": maps["q"], "r": maps["r"], "prior_argmax": prior_maps}
        metrics = {}
        for name, result in evaluate_many(sets, region, scheme).items():  # labels read once
            metrics[name] = {"accuracy": result.accuracy, "miou": result.miou, "iou": result.iou}
            if name == "r":
                save_confusion(
                    result,
                    out / "confusion_r.png",
                    title=f"r map: accuracy {result.accuracy:.3f}, mIoU {result.miou:.3f}",
                )
        summary["metrics"] = metrics
        report("outputs", "scores of q, r, prior_argmax; confusion_r.png", progress)
    timer("total_s", t0)
    write_json(out / "summary.json", summary)
    return summary


def _written(written: int, skipped: int) -> str:
    """What the label prior stage did (it has no bar: one-hot priors are quick)."""
    total = written + skipped
    return f"{total}/{total} tiles reused" if not written else f"{written}/{total} tiles written"


def _versions() -> dict[str, str]:
    import lightning
    import torchgeo

    from .. import __version__

    return {
        "torchgeo_lsr": __version__,
        "torchgeo": torchgeo.__version__,
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "rasterio": rasterio.__version__,
        "python": platform.python_version(),
    }
