"""``evaluate`` on maps and labels that overlap partly or not at all (issue 17, item 4b).

No overlap is refused (exit 2, one line naming the files); a partial overlap is scored
on the overlap only, with one warning line saying what fraction of the map's valid
pixels have a label.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

import torchgeo_lsr
from torchgeo_lsr.mapping import evaluate_maps

K = 5  # enviroatlas5
SIZE = 40
ORIGIN = (500000.0, 3900000.0)  # UTM 17N, metres


def _write(path: Path, data: np.ndarray, x0: float, crs: str = "EPSG:26917") -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype="uint8",
        crs=crs,
        transform=from_origin(x0, ORIGIN[1], 1.0, 1.0),
        nodata=255,
    ) as dst:
        dst.write(data, 1)
    return path


def _map(path: Path) -> np.ndarray:
    """A 40 x 40 class map at ORIGIN with a nodata band along the top."""
    classes = np.random.default_rng(0).integers(0, K, (SIZE, SIZE)).astype(np.uint8)
    classes[:4] = 255
    _write(path, classes, ORIGIN[0])
    return classes


def _evaluate(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    """``python -m torchgeo_lsr evaluate ARGS`` on this tree's package."""
    root = Path(torchgeo_lsr.__file__).parents[1]
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    )
    return subprocess.run(
        [sys.executable, "-m", "torchgeo_lsr", "evaluate", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize("crs", ["EPSG:26917", "EPSG:3857"])
def test_disjoint_maps_and_labels_are_refused(tmp_path: Path, crs: str) -> None:
    pred = tmp_path / "map.tif"
    _map(pred)
    labels = np.random.default_rng(1).integers(0, K, (SIZE, SIZE)).astype(np.uint8)
    # 100 km east in UTM; in web mercator, somewhere else on Earth entirely
    x0 = ORIGIN[0] + 100_000 if crs == "EPSG:26917" else -8_000_000.0
    lab = _write(tmp_path / "labels.tif", labels, x0, crs)
    out = tmp_path / "scores"
    result = _evaluate(pred, "--labels", lab, "--label-scheme", "index", "--out", out)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    [line] = lines
    assert line.startswith("torchgeo-lsr evaluate: ")
    assert str(pred) in line
    assert str(lab) in line
    assert "share no valid pixel" in line
    assert "footprints do not overlap" in line
    assert "Traceback" not in result.stderr
    assert result.stdout == ""  # no "accuracy nan (0 px)"
    assert not out.exists()


def test_overlap_without_a_valid_label_is_refused(tmp_path: Path) -> None:
    """Footprints that meet but no label the classes know: refused, with the coding hint."""
    pred = tmp_path / "map.tif"
    _map(pred)
    lab = _write(tmp_path / "labels.tif", np.full((SIZE, SIZE), 200, np.uint8), ORIGIN[0])
    with pytest.raises(ValueError, match="share no valid pixel: where they overlap") as info:
        evaluate_maps(pred, lab, "enviroatlas5", "index")
    assert str(pred) in str(info.value)
    assert "label scheme 'index'" in str(info.value)


def test_partial_overlap_warns_and_scores_the_overlap_only(tmp_path: Path) -> None:
    pred = tmp_path / "map.tif"
    classes = _map(pred)
    shift = 20  # labels start 20 px (m) east of the map: they cover its right half
    rng = np.random.default_rng(2)
    labels = rng.integers(0, K, (SIZE, SIZE)).astype(np.uint8)
    labels[rng.random(labels.shape) < 0.1] = 255  # gaps in the labels too
    lab = _write(tmp_path / "labels.tif", labels, ORIGIN[0] + shift)

    # the labels on the map's grid, by hand: map column c is label column c - shift
    on_map = np.full((SIZE, SIZE), 255, np.uint8)
    on_map[:, shift:] = labels[:, : SIZE - shift]
    valid_map = classes < K
    both = valid_map & (on_map < K)
    fraction = both.sum() / valid_map.sum()
    assert 0.3 < fraction < 0.6  # a partial overlap, not a trivial one
    expected = np.zeros((K, K), np.int64)
    np.add.at(expected, (on_map[both], classes[both]), 1)

    out = tmp_path / "scores"
    result = _evaluate(pred, "--labels", lab, "--label-scheme", "index", "--out", out)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    [line] = lines
    assert line.startswith("torchgeo-lsr evaluate: warning: ")
    assert f"the labels cover {100 * fraction:.1f} % of the maps' valid pixels" in line
    assert f"({both.sum()} of {valid_map.sum()} px" in line
    assert f"({both.sum()} px)" in result.stdout

    metrics = json.loads((out / "metrics.json").read_text())
    np.testing.assert_array_equal(np.array(metrics["confusion"]), expected)
    assert metrics["pixels"] == both.sum()
    assert metrics["coverage"] == pytest.approx(fraction)
    assert metrics["accuracy"] == pytest.approx(np.mean(on_map[both] == classes[both]))
    # the same from the library: a returned field, not an exception or a warnings.warn
    scored = evaluate_maps(pred, lab, "enviroatlas5", "index")
    assert scored.coverage == pytest.approx(fraction)
    assert scored.notes[0] == line.removeprefix("torchgeo-lsr evaluate: warning: ")


def test_full_overlap_has_no_warning(tmp_path: Path) -> None:
    pred = tmp_path / "map.tif"
    classes = _map(pred)
    lab = _write(tmp_path / "labels.tif", classes, ORIGIN[0])  # the map is its own label
    result = _evaluate(pred, "--labels", lab, "--label-scheme", "index")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""
    assert "accuracy 1.0000" in result.stdout


def test_evaluate_many_equals_a_pixel_loop(tmp_path: Path) -> None:
    """Several sets of maps scored with the labels read once: each set's confusion equals
    a count over pixels; sets of other tiles are refused."""
    from torchgeo_lsr.mapping import evaluate_many

    rng = np.random.default_rng(1)
    labels_dir, a_dir, b_dir = (tmp_path / n for n in ("labels", "a", "b"))
    for d in (labels_dir, a_dir, b_dir):
        d.mkdir()
    codes = np.array([0, 10, 20, 30, 40, 70, 80, 91])  # EnviroAtlas codes (0: unclassified)
    truth = {}
    maps: dict[str, dict[str, np.ndarray]] = {"a": {}, "b": {}}
    for stem in ("t1", "t2"):
        lab = rng.choice(codes, (SIZE, SIZE)).astype(np.uint8)
        _write(labels_dir / f"{stem}.tif", lab, ORIGIN[0])
        truth[stem] = lab
        for name, d in (("a", a_dir), ("b", b_dir)):
            m = rng.integers(0, K, (SIZE, SIZE)).astype(np.uint8)
            m[:2] = 255
            maps[name][stem] = _write(d / f"{stem}.tif", m, ORIGIN[0]) and m
    results = evaluate_many({"a": a_dir, "b": b_dir}, labels_dir, "enviroatlas5")
    from torchgeo_lsr.classes import ENVIROATLAS5, labels_to_classes

    for name in ("a", "b"):
        expected = np.zeros((K, K), int)
        for stem, lab in truth.items():
            target = labels_to_classes(lab.astype(np.int64), ENVIROATLAS5, "enviroatlas")
            for t, p in zip(target.ravel(), maps[name][stem].ravel(), strict=True):
                if t < K and p < K:
                    expected[t, p] += 1
        assert results[name].confusion == expected.tolist()
        alone = evaluate_maps(a_dir if name == "a" else b_dir, labels_dir, "enviroatlas5")
        assert results[name] == alone
    (b_dir / "t2.tif").rename(b_dir / "t3.tif")
    with pytest.raises(ValueError, match="predictions 'b': tiles"):
        evaluate_many({"a": a_dir, "b": b_dir}, labels_dir, "enviroatlas5")
