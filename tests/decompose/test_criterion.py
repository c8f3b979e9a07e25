"""The per-weight test, Benjamini–Hochberg, components and the block form, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from uisbench.decompose import BlockLinear, Null, bh_reject, bh_thresholds, components  # noqa: E402
from uisbench.decompose.criterion import two_sided_p  # noqa: E402


def test_bh_by_hand() -> None:
    # m = 5, q = 0.05: k·q/m = .01 .02 .03 .04 .05; sorted p .001 .011 .025 .045 .3: k = 3
    p = np.array([0.001, 0.3, 0.025, 0.011, 0.045])
    assert bh_reject(p, 0.05).tolist() == [True, False, True, True, False]
    # q = 0.06: k·q/m = .012 .024 .036 .048 .06: .045 ≤ .048, k = 4
    assert bh_reject(p, 0.06).tolist() == [True, False, True, True, True]
    # step-up: p(2) = .021 > .02 fails, but p(3) = .029 ≤ .03 rejects all three
    assert bh_reject(np.array([0.009, 0.021, 0.029]), 0.03).all()


def test_thresholds_agree_with_plain_bh() -> None:
    rng = np.random.default_rng(0)
    scores = torch.as_tensor(np.abs(np.r_[rng.normal(size=900), rng.normal(4, 1, size=100)]))
    levels = [0.2, 0.05, 1e-3, 1e-6, 1e-30]
    thr = bh_thresholds(scores, levels)
    p = two_sided_p(scores.numpy())
    for q, t in zip(levels, thr):
        assert np.array_equal(scores.numpy() >= t, bh_reject(p, q)), q
    assert np.isinf(thr[-1])  # nothing reaches 1e-30


def test_p_value_and_nulls() -> None:
    assert two_sided_p(np.array([1.959963984540054]))[0] == pytest.approx(0.05)
    w = torch.tensor([[0.02, -0.04], [0.0, 0.01]])
    z = Null(sigma=0.02).scores("m", w, 0.02)
    assert z.flatten().tolist() == pytest.approx([1, 2, 0, 0.5])
    # saved init: 3 of 4 weights unchanged → MAD 0 → the test is exact
    init = {"m": torch.tensor([[0.02, -0.04], [0.0, 0.5]])}
    null = Null(init=init)
    s = null.scale("m", w)
    scores = null.scores("m", w, s)
    assert scores[0, 0] == 0 and scores[1, 1] > 1e30
    assert w.tolist()[0] == pytest.approx([0.02, -0.04])  # the weights were not touched
    with pytest.raises(ValueError):
        Null()


def test_components_by_hand() -> None:
    # outputs 0,2 read inputs 1,3; output 1 reads input 0; output 3 reads nothing; input 2 unread
    mask = np.zeros((4, 4), dtype=bool)
    mask[0, 1] = mask[2, 3] = mask[0, 3] = mask[1, 0] = True
    c = components(mask)
    assert c.n_blocks == 2
    assert c.out_label.tolist() == [0, 1, 0, -1]
    assert c.in_label.tolist() == [1, 0, -1, 0]
    assert c.sizes() == [(2, 2), (1, 1)]
    assert c.block_params() == 5
    joined = mask.copy()
    joined[1, 3] = True  # one more edge merges the blocks
    assert components(joined).n_blocks == 1
    assert not components(joined).same_partition(c)


def test_block_linear_matches_masked_dense() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(3)
    out_block, in_block = rng.integers(3, size=12), rng.integers(3, size=10)
    mask = out_block[:, None] == in_block[None, :]
    mask[0, :] = False  # a bias-only output
    lin = torch.nn.Linear(10, 12)
    with torch.no_grad():
        lin.weight.mul_(torch.as_tensor(mask, dtype=torch.float32))
    block = BlockLinear(lin, components(mask))
    x = torch.randn(2, 5, 10)
    torch.testing.assert_close(block(x), lin(x), atol=1e-6, rtol=1e-6)
    assert block.executed_params() == components(mask).block_params() < mask.size
