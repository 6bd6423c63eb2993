"""Tests for torchgeo_lsr.models."""

from __future__ import annotations

import pytest
import torch
from torchgeo.models import FCN as TorchGeoFCN

from torchgeo_lsr.models import FCN, LearnedPriorFCN


def measured_receptive_field(net: torch.nn.Module, in_channels: int, size: int = 41) -> int:
    """Side of the input window whose pixels change the centre output (by gradients)."""
    net = net.double().eval()
    x = torch.randn(1, in_channels, size, size, dtype=torch.float64, requires_grad=True)
    net(x)[0, :, size // 2, size // 2].sum().backward()
    assert x.grad is not None
    rows = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 3)) > 0)
    return int(rows.max() - rows.min() + 1)


def test_output_shape_is_input_shape() -> None:
    net = FCN(4, 5, num_filters=8)
    for h, w in [(32, 32), (33, 47), (11, 11)]:
        assert net(torch.zeros(2, 4, h, w)).shape == (2, 5, h, w)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [({}, 11), ({"num_layers": 3}, 7), ({"num_layers": 2, "kernel_size": 5}, 9)],
)
def test_receptive_field_matches_gradients(kwargs: dict[str, int], expected: int) -> None:
    torch.manual_seed(0)
    net = FCN(3, 4, num_filters=4, **kwargs)
    assert net.receptive_field == expected
    assert measured_receptive_field(net, 3) == expected


def test_learned_prior_fcn_is_the_papers() -> None:
    torch.manual_seed(0)
    net = LearnedPriorFCN(9, 5, num_filters=4)
    assert net.kernels == (11, 7, 5)
    assert net(torch.zeros(1, 9, 30, 30)).shape == (1, 5, 30, 30)
    assert net.receptive_field == 21
    assert measured_receptive_field(net, 9) == 21


def test_defaults_are_torchgeo_fcn() -> None:
    """Same layers and state_dict keys as torchgeo.models.FCN: its weights give its outputs."""
    torch.manual_seed(0)
    theirs = TorchGeoFCN(in_channels=4, classes=5, num_filters=16).eval()
    ours = FCN(4, 5, num_filters=16).eval()
    ours.load_state_dict(theirs.state_dict())  # strict: same keys and shapes
    x = torch.randn(2, 4, 20, 20)
    torch.testing.assert_close(ours(x), theirs(x))


def test_paper_size() -> None:
    net = FCN(4, 5)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [128] * 5 + [5]
    assert sum(p.numel() for p in net.parameters()) == (
        (4 * 9 + 1) * 128 + 4 * (128 * 9 + 1) * 128 + (128 + 1) * 5
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_layers": 0}, "num_layers >= 1"),
        ({"num_layers": 2, "kernel_size": [3]}, "one kernel size per layer"),
        ({"kernel_size": 4}, "odd"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FCN(3, 2, **kwargs)  # type: ignore[arg-type]
