"""Bad input to labelsift.noise: TypeError / ValueError naming the argument."""
import numpy as np
import pytest

import labelsift.noise as nz

X = np.random.default_rng(0).standard_normal((40, 5))
Y = np.arange(40) % 3


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(features=None), TypeError, "features"),
    (dict(features="not there.npy"), FileNotFoundError, "features"),
    (dict(features=X[:, :, None]), ValueError, "2-D"),
    (dict(features=X.astype(str)), TypeError, "features"),
    (dict(features=np.where(np.arange(40)[:, None] == 7, np.nan, X)), ValueError, "row 7"),
    (dict(labels=Y[:-1]), ValueError, "labels has 39"),
    (dict(labels=Y.astype(float)), TypeError, "labels"),
    (dict(labels=np.where(Y == 2, -1, Y)), ValueError, r"labels\[2\]"),
    (dict(num_classes=2), ValueError, r"labels\[2\] = 2"),
    (dict(num_classes=1.5), ValueError, "num_classes"),
    (dict(rounds=0), ValueError, "rounds"),
    (dict(steps="9"), TypeError, "steps"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(sample_size=2), ValueError, "sample_size"),
    (dict(keep_best="yes"), TypeError, "keep_best"),
    (dict(neighbours="all"), ValueError, "neighbours"),
    (dict(features=np.zeros((40, 2), np.int64)), ValueError, "lists itself"),
    (dict(features=np.full((40, 2), 40)), ValueError, "outside"),
    (dict(features=(np.roll(np.arange(40), 1)[:, None] + np.zeros((1, 2), int), np.ones((40, 3)))), ValueError,
     "shape"),
    (dict(features=np.roll(np.arange(40), 1)[:, None], neighbours=None), ValueError, "at least 2 neighbours"),
])
def test_hoc_bad_input(kwargs, exc, match):
    args = dict(features=X, labels=Y, num_classes=None) | kwargs
    f, y, k = args.pop("features"), args.pop("labels"), args.pop("num_classes")
    with pytest.raises(exc, match=match):
        nz.hoc(f, y, k, steps=args.pop("steps", 3), **args)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(k=2), ValueError, "k must be >= 3"),
    (dict(k=True), TypeError, "k must be an integer"),
    (dict(method="majority"), ValueError, "method"),
    (dict(rounds=-1), ValueError, "rounds"),
    (dict(hoc=object()), TypeError, "hoc must be a HOCResult"),
])
def test_simifeat_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        nz.simifeat(X, Y, **kwargs)


def test_lists_too_short_for_k():
    idx = np.stack([(np.arange(40) + j) % 40 for j in (1, 2, 3)], 1)
    with pytest.raises(ValueError, match="k = 10 needs 9 neighbours"):
        nz.simifeat(idx, Y, method="vote")


def test_csr_graph_is_accepted():
    sp = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(1)
    n = 60
    idx = np.stack([(np.arange(n) + j) % n for j in (1, 2, 3)], 1)
    d = np.sort(rng.random((n, 3)), axis=1)
    g = sp.csr_matrix((d.ravel(), idx.ravel(), np.arange(0, 3 * n + 1, 3)), shape=(n, n))
    y = np.arange(n) % 3
    a = nz.hoc(g, y, rounds=2, steps=20)
    b = nz.hoc((idx, d), y, rounds=2, steps=20)
    np.testing.assert_array_equal(a.transition_matrix, b.transition_matrix)
