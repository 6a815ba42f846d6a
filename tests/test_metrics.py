"""Metrics against hand computations and analytic derivative norms."""

import math

import pytest
import torch

from neuralops.train.metrics import MeanMetric, get_metric, rel_h1, rel_l1_median, rel_l2


def test_rel_l2_by_hand():
    y = torch.tensor([[[3.0, 4.0]], [[1.0, 0.0]]], dtype=torch.float64)  # (2, 1, 2)
    p = torch.tensor([[[3.0, 1.0]], [[0.0, 0.0]]], dtype=torch.float64)
    per_sample = rel_l2(p, y, reduction="none")
    torch.testing.assert_close(per_sample, torch.tensor([3 / 5, 1.0], dtype=torch.float64))
    assert float(rel_l2(p, y)) == pytest.approx(0.8, abs=1e-15)


def test_rel_l2_per_channel():
    y = torch.ones(2, 2, 4, dtype=torch.float64)
    p = y.clone()
    p[:, 1] = 3.0  # channel 1 has relative error 2, channel 0 none
    torch.testing.assert_close(rel_l2(p, y, per_channel=True), torch.tensor([0.0, 2.0]).double())
    # over all channels: ||e|| = 2*sqrt(4), ||y|| = sqrt(8)
    assert float(rel_l2(p, y)) == pytest.approx(4 / math.sqrt(8), abs=1e-14)


def test_rel_l2_shape_mismatch_says_both():
    with pytest.raises(ValueError, match=r"\(2, 1, 4\) and \(2, 1, 5\)"):
        rel_l2(torch.zeros(2, 1, 4), torch.zeros(2, 1, 5))


def _sine_pair(n: int, periodic: bool):
    x = torch.arange(n, dtype=torch.float64) / n if periodic else torch.linspace(0, 1, n).double()
    y = torch.sin(2 * math.pi * x)
    e = 0.1 * torch.sin(6 * math.pi * x)
    return (y + e)[None, None], y[None, None]


# ||e||^2 + ||e'||^2 over ||y||^2 + ||y'||^2 for e = 0.1 sin(6 pi x), y = sin(2 pi x) on [0, 1]
EXACT = 0.1 * math.sqrt((1 + 36 * math.pi**2) / (1 + 4 * math.pi**2))


def test_rel_h1_spectral_exact_on_periodic_sine():
    p, y = _sine_pair(32, periodic=True)
    assert float(rel_h1(p, y, periodic=True)) == pytest.approx(EXACT, rel=1e-12)


def test_rel_h1_finite_differences_converge_second_order():
    errs = []
    for n in (65, 129, 257):
        p, y = _sine_pair(n, periodic=False)
        errs.append(abs(float(rel_h1(p, y)) - EXACT))
    orders = [math.log2(a / b) for a, b in zip(errs, errs[1:])]
    assert min(orders) > 1.8, orders
    assert errs[-1] < 1e-3


def test_rel_h1_2d_spectral_matches_analytic():
    n = 16
    x = torch.arange(n, dtype=torch.float64) / n
    X, Y = torch.meshgrid(x, x, indexing="ij")
    y = torch.sin(2 * math.pi * X) * torch.cos(2 * math.pi * Y)
    e = 0.1 * torch.sin(2 * math.pi * X)
    # ||y||^2 = 1/4, ||grad y||^2 = 2 * (2 pi)^2 / 4; ||e||^2 = 0.01/2, ||grad e||^2 = 0.01 (2 pi)^2 / 2
    exact = math.sqrt((0.005 * (1 + 4 * math.pi**2)) / (0.25 * (1 + 8 * math.pi**2)))
    assert float(rel_h1((y + e)[None, None], y[None, None], periodic=True)) == pytest.approx(
        exact, rel=1e-12
    )


def test_rel_l1_median():
    y = torch.ones(3, 1, 2)
    p = y * torch.tensor([2.0, 1.5, 1.1]).reshape(3, 1, 1)
    assert float(rel_l1_median(p, y)) == pytest.approx(0.5)


def test_mean_metric_is_exact_over_uneven_batches():
    vals = torch.rand(7, dtype=torch.float64)
    m = MeanMetric()
    m.update(vals[:4])
    m.update(vals[4:])
    assert m.compute() == pytest.approx(float(vals.mean()), abs=1e-15)
    with pytest.raises(ValueError, match="before any update"):
        MeanMetric().compute()


def test_get_metric_lists_names():
    with pytest.raises(ValueError, match=r"rel_h1.*rel_l2"):
        get_metric("l2")
