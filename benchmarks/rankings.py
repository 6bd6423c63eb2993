"""Learning MNIST-5k digits from rankings only (paper §4.2): RankingLoss rq and qr.

The training digits are put into fixed random pairs (two random perfect matchings, so
every digit is in two pairs); each pair carries only the order of its two labels (+1
greater or equal, -1 smaller, as in the paper; the label values are never used in
training). The joint prior is uniform on the triangle l1 >= l2 (ties allowed, since
random pairs contain equal digits), which also anchors the order, so held-out accuracy
is measured on the predicted digits directly. As a diagnostic we also report the
accuracy after the best one-to-one relabelling of the predicted classes (Hungarian
matching on the test confusion matrix); it equals the direct accuracy when the model
has learnt the digits in the right order.

    python benchmarks/rankings.py [--quick] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from _mnist import Timer, environment, make_model, split
from scipy.optimize import linear_sum_assignment

from torchgeo_lsr.adapters import fit_on_rankings, predict_probs


def matched_accuracy(pred: torch.Tensor, truth: torch.Tensor, c: int = 10) -> float:
    conf = np.zeros((c, c), dtype=np.int64)
    np.add.at(conf, (truth.numpy(), pred.numpy()), 1)
    rows, cols = linear_sum_assignment(-conf)
    return float(conf[rows, cols].sum() / conf.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 training digits, 2 epochs")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    settings = {
        "methods": ["rq", "qr"],
        "n_train": 1000 if args.quick else 4000,
        "n_test": 1000,
        "matchings": 2,
        "epochs": args.epochs or (2 if args.quick else 25),
        "batch_size_pairs": 128,
        "lr": 2e-3,
        "optimizer": "Adam",
        "strict": False,
        "shared_denominator": True,
        "split_seed": 0,
        "pairs_seed": 1,
        "model_seed": 2,
        "shuffle_seed": 3,
        "model": "4 x (3x3 conv, 32, stride 2, ReLU) + linear, see benchmarks/_mnist.py",
        "quick": args.quick,
    }
    start = time.perf_counter()
    xtr, ytr, xte, yte = split(settings["split_seed"])
    n = settings["n_train"]
    xtr, ytr = xtr[:n], ytr[:n]
    g = torch.Generator().manual_seed(settings["pairs_seed"])
    pairs = torch.cat(
        [torch.randperm(n, generator=g).reshape(-1, 2) for _ in range(settings["matchings"])]
    )
    # The only supervision used: binary comparisons as in the paper, +1 for l1 >= l2
    # and -1 for l1 < l2 (ties are not reported separately), so strict=False.
    diff = ytr[pairs[:, 0]] - ytr[pairs[:, 1]]
    order = torch.where(diff >= 0, 1, -1)
    settings["n_pairs"] = int(pairs.shape[0])
    settings["tied_pairs"] = int((diff == 0).sum())

    results: dict[str, dict[str, object]] = {}
    for method in settings["methods"]:
        model = make_model(settings["model_seed"])

        def evaluate(epoch: int, net: torch.nn.Module) -> dict[str, float]:
            pred = predict_probs(net, xte).argmax(1)
            return {
                "test_acc": (pred == yte).float().mean().item(),
                "test_acc_matched": matched_accuracy(pred, yte),
            }

        with Timer() as t:
            hist = fit_on_rankings(
                model,
                xtr,
                pairs,
                order,
                method,  # type: ignore[arg-type]
                num_classes=10,
                strict=settings["strict"],
                shared_denominator=settings["shared_denominator"],
                epochs=settings["epochs"],
                batch_size=settings["batch_size_pairs"],
                lr=settings["lr"],
                generator=torch.Generator().manual_seed(settings["shuffle_seed"]),
                on_epoch_end=evaluate,
            )
        accs = [m["test_acc"] for m in hist.metrics]
        best = max(range(len(accs)), key=accs.__getitem__)
        pred = predict_probs(model, xte).argmax(1)
        results[method] = {
            "final_test_acc": accs[-1],
            "final_test_acc_matched": hist.metrics[-1]["test_acc_matched"],
            "best_test_acc": accs[best],
            "best_epoch": best + 1,
            "test_acc_per_epoch": accs,
            "train_loss_per_epoch": hist.loss,
            "predicted_class_counts": torch.bincount(pred, minlength=10).tolist(),
            "seconds": t.seconds,
        }
        print(
            f"{method}: final {accs[-1]:.4f} (matched "
            f"{hist.metrics[-1]['test_acc_matched']:.4f}) best {accs[best]:.4f} "
            f"(epoch {best + 1}) {t.seconds:.0f}s",
            flush=True,
        )
    out = {
        "benchmark": "rankings",
        "settings": settings,
        "chance_accuracy": 0.1,
        "results": results,
        "wall_seconds": time.perf_counter() - start,
        "environment": environment(),
    }
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2))
    print(f"wall time {out['wall_seconds']:.0f}s")


if __name__ == "__main__":
    main()
