"""Negative labels on real MNIST-5k (paper §4.1): CE on the soft prior, NLL-union, QR, RQ.

Every training digit gets k random negative labels (classes it is not; never its true
class), drawn once with a fixed seed; its prior is uniform over the other 10 - k
classes (``negative_label_prior``). The paper's small CNN is trained on these priors
with each loss, and scored on the held-out digits (true labels) after every epoch.

    python benchmarks/negative_labels.py [--quick] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from _mnist import Timer, environment, make_model, split

from torchgeo_lsr.adapters import fit_on_prior, negative_label_prior, predict_probs

METHODS = {"ce_soft": "ce_soft", "nll_union": "nll_union", "qr": "qr_kl", "rq": "rq"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 training digits, 2 epochs")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    settings = {
        "ks": [1, 3, 5, 9],
        "methods": {k: v for k, v in METHODS.items()},
        "n_train": 1000 if args.quick else 4000,
        "n_test": 1000,
        "epochs": args.epochs or (2 if args.quick else 10),
        "batch_size": 128,
        "lr": 3e-3,
        "optimizer": "Adam",
        "split_seed": 0,
        "negatives_seed": 1,
        "model_seed": 2,
        "shuffle_seed": 3,
        "model": "4 x (3x3 conv, 32, stride 2, ReLU) + linear, see benchmarks/_mnist.py",
        "smoothing": "1e-4 on q and P (loss modules' default)",
        "qr_form": "kl, KL(q||r), as in the authors' partial-label code",
        "quick": args.quick,
    }
    start = time.perf_counter()
    xtr, ytr, xte, yte = split(settings["split_seed"])
    xtr, ytr = xtr[: settings["n_train"]], ytr[: settings["n_train"]]

    results: dict[str, dict[str, object]] = {}
    for k in settings["ks"]:
        prior = negative_label_prior(
            ytr, k, 10, generator=torch.Generator().manual_seed(settings["negatives_seed"] + k)
        )
        assert bool((prior[torch.arange(len(ytr)), ytr] > 0).all())
        for name, loss in METHODS.items():
            model = make_model(settings["model_seed"])

            def evaluate(epoch: int, net: torch.nn.Module) -> dict[str, float]:
                acc = (predict_probs(net, xte).argmax(1) == yte).float().mean().item()
                return {"test_acc": acc}

            with Timer() as t:
                hist = fit_on_prior(
                    model,
                    xtr,
                    prior,
                    loss,  # type: ignore[arg-type]
                    epochs=settings["epochs"],
                    batch_size=settings["batch_size"],
                    lr=settings["lr"],
                    generator=torch.Generator().manual_seed(settings["shuffle_seed"]),
                    on_epoch_end=evaluate,
                )
            accs = [m["test_acc"] for m in hist.metrics]
            best = max(range(len(accs)), key=accs.__getitem__)
            results[f"k={k}/{name}"] = {
                "k": k,
                "method": name,
                "loss": loss,
                "final_test_acc": accs[-1],
                "best_test_acc": accs[best],
                "best_epoch": best + 1,
                "test_acc_per_epoch": accs,
                "train_loss_per_epoch": hist.loss,
                "seconds": t.seconds,
            }
            print(
                f"k={k} {name:9s} final {accs[-1]:.4f} best {accs[best]:.4f} "
                f"(epoch {best + 1}) {t.seconds:.0f}s",
                flush=True,
            )
    out = {
        "benchmark": "negative_labels",
        "settings": settings,
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
