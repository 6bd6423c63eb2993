"""The benchmark scripts run and write the JSON keys their issues promise (not timings)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import rasterio


def test_sampling_benchmark_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, benchmark_module: Callable[[str], ModuleType]
) -> None:
    sampling = benchmark_module("sampling")
    monkeypatch.setattr(sampling, "PATCH", 32)
    out = tmp_path / "sampling.json"
    # a miniature run through the real code path: 2 tiles of 96 px, 32 patches
    original = sampling.write_tiles
    monkeypatch.setattr(sampling, "write_tiles", lambda root, tiles, size: original(root, 2, 96))
    weak = sampling.write_weak_sources
    monkeypatch.setattr(sampling, "write_weak_sources", lambda root, tiles, size: weak(root, 2, 96))
    result = sampling.main(["--quick", "--out", str(out), "--cache", str(tmp_path)])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result))
    for key in ("ours_per_s", "torchgeo_per_s", "speedup", "ours_setup_s", "composed_per_s"):
        assert saved[key] > 0, key
    assert saved["composed_patches"] == saved["patches"] // 4
    assert saved["speedup"] == pytest.approx(saved["ours_per_s"] / saved["torchgeo_per_s"])


def test_report_tables_every_result(
    tmp_path: Path, benchmark_module: Callable[[str], ModuleType]
) -> None:
    report = benchmark_module("report")
    out = tmp_path / "RESULTS.md"
    report.main(["--out", str(out)])
    text = out.read_text()
    for path in sorted((Path(report.__file__).parent / "results").glob("*.json")):
        assert f"`{path.name}`" in text, path.name  # every JSON gets a section
    assert "| prior argmax |" in text


def _write_patches(root: Path, n: int = 4, size: int = 64) -> None:
    """Seeded stand-ins for the real patches: the layout of ``chesapeake_wv`` (npz + csv)."""
    rng = np.random.default_rng(7)
    root.mkdir(parents=True)
    rows = ["patch_id,patch_fn,tile_id,x_coord,y_coord,size"]
    for i in range(n):
        lc = np.where(rng.random((size, size)) < 0.3, 3, 2).astype(np.uint8)
        lc[:4, :4] = 5
        nlcd = np.full((size, size), 41 if i % 2 else 81, dtype=np.uint8)
        nlcd[:, : size // 2] = 21
        naip = np.clip(
            np.stack([lc * 40.0 + rng.normal(0, 10, lc.shape) for _ in range(4)]), 0, 255
        ).astype(np.uint8)
        patch = np.concatenate([naip, lc[None], nlcd[None], (lc[None] == 5).astype(np.uint8)])
        name = f"wv_1m_2014-m_3708020_sw_17_1-{i}.npz"
        np.savez_compressed(root / name, patch=patch)
        rows.append(f"{i},{name},0,{1000 * i},{500},{size}")
    (root / "patches.csv").write_text("\n".join(rows) + "\n")


def test_chesapeake_benchmark_protocol(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, benchmark_module: Callable[[str], ModuleType]
) -> None:
    """Folds keep the scored patches' labels out of their matrix; pooled scores recount."""
    bench = benchmark_module("chesapeake")
    from torchgeo_lsr.mapping import MapConfig

    tiny = MapConfig(
        classes="chesapeake4",
        steps=3,
        batch_size=2,
        patch_size=32,
        num_filters=4,
        num_layers=2,
        sigma=4.0,
        window=64,
        accelerator="cpu",
    )
    monkeypatch.setattr(bench, "budget_config", lambda name, quick: tiny)
    data, work = tmp_path / "patches", tmp_path / "work"
    _write_patches(data)
    out = tmp_path / "chesapeake.json"
    argv = ["--quick", "--data", str(data), "--work", str(work), "--out", str(out)]
    argv += ["--seeds", "0", "--methods", "recipe", "hard_naive", "oracle", "qr_init_oracle"]
    result = bench.main(argv)
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["folds"] == [
        ["m_3708020_sw_17_1-p0", "m_3708020_sw_17_1-p2"],
        ["m_3708020_sw_17_1-p1", "m_3708020_sw_17_1-p3"],
    ]
    # fold 0's matrix comes from patches 1 and 3 only: recount NLCD 21's column by hand
    # (per-patch average of P(class | NLCD 21) over the two training patches)
    columns = []
    for i in (1, 3):
        patch = np.load(data / f"wv_1m_2014-m_3708020_sw_17_1-{i}.npz")["patch"]
        lc = patch[4][patch[5] == 21]
        classes = np.select([lc == 2, lc == 3, lc == 5], [1, 2, 3], -1)
        columns.append(np.bincount(classes, minlength=4) / len(classes))
    matrix = np.load(work / "fold0" / "matrix.npy")
    np.testing.assert_allclose(matrix[:, 3], np.mean(columns, axis=0))  # NLCD 21 = index 3
    # patches 1 and 3 hold NLCD 41 and 21, never 81: fold 0 backs 81 off to Pittsburgh's
    assert 81 in result["unseen_nlcd_per_fold"][0]
    assert 41 not in result["unseen_nlcd_per_fold"][0]
    block = result["budgets"]["demo"]
    for method in ("recipe", "hard_naive", "oracle", "qr_init_oracle"):
        row = block["methods"][method]
        assert set(row["per_patch_r"]) == set(result["patches"])
        assert 0.0 <= row["miou_r"]["mean"] <= 1.0
    # the pooled r accuracy of the recipe, recounted from its class maps and the labels
    correct = total = 0
    for f, fold in enumerate(result["folds"]):
        for pid in fold:
            with rasterio.open(
                work / "demo" / "recipe" / "seed0" / f"fold{f}" / "r" / f"{pid}_naip-new.tif"
            ) as src:
                pred = src.read(1)
            i = int(pid.rsplit("-p", 1)[1])
            lc = np.load(data / f"wv_1m_2014-m_3708020_sw_17_1-{i}.npz")["patch"][4]
            truth = np.select([lc == 2, lc == 3, lc == 5], [1, 2, 3], -1)
            correct += int((pred == truth).sum())
            total += int((truth >= 0).sum())
    assert block["methods"]["recipe"]["acc_r"]["mean"] == pytest.approx(correct / total)
    tree = sum(
        int((np.load(data / f"wv_1m_2014-m_3708020_sw_17_1-{i}.npz")["patch"][4] == 2).sum())
        for i in range(4)
    )
    assert result["baselines"]["majority"]["acc"] == pytest.approx(tree / total)


def test_startup_benchmark_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, benchmark_module: Callable[[str], ModuleType]
) -> None:
    """Every command ran (help: exit 0, a bad option: exit 2); ratios recomputed from seconds."""
    startup = benchmark_module("startup")
    out = tmp_path / "startup.json"
    result = startup.main(["--quick", "--skip-fit", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    commands = result["commands"]
    assert not any(" fit " in name for name in commands)
    for name, entry in commands.items():
        assert entry["exit_code"] == ([2] if "(error)" in name else [0]), name
        assert entry["cpu_s"] >= 0
        assert entry["wall_s"] > 0
        bare = commands["python -c pass"]["cpu_s"]
        if bare:
            assert entry["x_python"] == pytest.approx(entry["cpu_s"] / bare, abs=0.01)
    ours = [v["cpu_s"] for k, v in commands.items() if k.startswith("torchgeo-lsr ")]
    assert result["max_cpu_s"] == max(ours)
