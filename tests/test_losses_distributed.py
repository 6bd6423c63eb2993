"""QR/RQ under torch.distributed: two processes of B instances equal one batch of 2 B.

The processes are real (two Python subprocesses joined by a gloo process group on
localhost), each computing its module loss on its half of the batch and backpropagating;
the reference is the same module on the whole batch in this process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from torchgeo_lsr.losses import EMLoss, QRLoss, RQLoss, global_class_mean

WORKER = textwrap.dedent(
    """
    import os, sys, torch, torch.distributed as dist
    from torchgeo_lsr.losses import EMLoss, QRLoss, RQLoss
    rank, world, name, data, out = int(sys.argv[1]), 2, sys.argv[2], sys.argv[3], sys.argv[4]
    dist.init_process_group("gloo", rank=rank, world_size=world)
    d = torch.load(data)
    logits = d["logits"][rank].clone().requires_grad_(True)
    losses = {"qr": QRLoss("free_energy"), "qr_kl": QRLoss("kl"), "rq": RQLoss(), "em": EMLoss()}
    loss = losses[name](torch.softmax(logits, dim=1), d["prior"][rank])
    loss.backward()
    torch.save({"loss": loss.detach(), "grad": logits.grad}, f"{out}/{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()
    # Skip interpreter finalisation: Gloo's worker threads can still hold tensors then
    # and, rarely, abort the process (SIGABRT, "terminate called without an active
    # exception") after the results above are written; see pytorch/pytorch#179291.
    sys.stdout.flush(), sys.stderr.flush()
    os._exit(0)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("name", ["qr", "qr_kl", "rq", "em"])
def test_two_processes_equal_one_batch(name: str, tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 5, 6, dtype=torch.float64, generator=gen)  # rank, B, C, H, W
    prior = torch.softmax(3 * torch.randn(2, 3, 4, 5, 6, dtype=torch.float64, generator=gen), 2)
    torch.save({"logits": logits, "prior": prior}, tmp_path / "data.pt")
    (tmp_path / "worker.py").write_text(WORKER)
    env = os.environ | {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    env |= {"OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(tmp_path / "worker.py"),
                str(rank),
                name,
                str(tmp_path / "data.pt"),
                str(tmp_path),
            ],
            env=env | {"RANK": str(rank), "WORLD_SIZE": "2"},
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    parts = [torch.load(tmp_path / f"{rank}.pt") for rank in range(2)]

    whole = logits.reshape(6, 4, 5, 6).clone().requires_grad_(True)
    losses = {"qr": QRLoss("free_energy"), "qr_kl": QRLoss("kl"), "rq": RQLoss(), "em": EMLoss()}
    loss = losses[name](torch.softmax(whole, dim=1), prior.reshape(6, 4, 5, 6))
    loss.backward()
    assert whole.grad is not None
    # DDP averages the processes' gradients; the losses average to the whole batch's
    torch.testing.assert_close(torch.stack([p["loss"] for p in parts]).mean(), loss.detach())
    for rank, part in enumerate(parts):
        torch.testing.assert_close(part["grad"] / 2, whole.grad[3 * rank : 3 * rank + 3])
    # and the processes' own batch means differ from the global one (the test is not vacuous)
    local = [torch.softmax(logits[r], dim=1).mean(dim=(0, 2, 3)) for r in range(2)]
    assert (local[0] - local[1]).abs().max() > 1e-3


def test_without_a_process_group_it_is_the_batch_mean() -> None:
    q = torch.softmax(torch.randn(4, 3, 2, 2), dim=1)
    torch.testing.assert_close(global_class_mean(q), q.mean(dim=(0, 2, 3)))
