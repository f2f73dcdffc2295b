"""Labels as cleanlab takes them (a list of per-example lists) -> CSR: the C++
flattener (ml_flatten_lists) against the Python one, and its fallbacks."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from labelsift._common.backend import core
from labelsift._multilabel.labels import _fast_lists, as_multilabels

rows = st.lists(st.integers(0, 40), max_size=6)


@settings(max_examples=80, deadline=None)
@given(data=st.lists(st.tuples(rows, st.booleans()), max_size=60), outer_tuple=st.booleans())
def test_flatten_equals_python(data, outer_tuple):
    labels = [tuple(r) if as_tuple else list(r) for r, as_tuple in data]
    if outer_tuple:
        labels = tuple(labels)
    got = core().ml_flatten_lists(labels)
    want = _fast_lists(labels, len(labels))
    assert got is not None and want is not None
    assert got[0].dtype == np.int32 and got[1].dtype == np.int32
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    a = as_multilabels(labels, len(labels), 41)
    dense = np.zeros((len(labels), 41), np.int64)
    for i, r in enumerate(labels):
        dense[i, list(r)] = 1
    assert np.array_equal(a.dense(), dense)


@pytest.mark.parametrize("labels", [
    [[1], [np.int64(2)]],           # NumPy integers: the Python path
    [[1], range(3)],                # a range row
    [[1], np.array([0, 2])],        # an array row
    [[1], [2.0]],                   # a float
    [[1], [[2]]],                   # nested one level too deep
    [[2 ** 40]],                    # beyond int32
    [[-(2 ** 31) - 1]],
    np.array([[1, 0], [0, 1]]),     # not a list
    "ab",
    type("L", (list,), {})([[1]]),  # a list subclass (may iterate otherwise)
])
def test_other_kinds_fall_back(labels):
    assert core().ml_flatten_lists(labels) is None


def test_fallbacks_give_the_same_labels_or_the_same_errors():
    k = 5
    ok = [[1, 3], [np.int64(2)], range(2), np.array([4]), (True,), []]
    want = [[1, 3], [2], [0, 1], [4], [1], []]
    assert np.array_equal(as_multilabels(ok, 6, k).dense(), as_multilabels(want, 6, k).dense())
    with pytest.raises(ValueError, match=r"labels\[1\] contains class 7"):
        as_multilabels([[0], [7]], 2, k)
    with pytest.raises(ValueError, match=r"labels\[2\] contains class -1"):
        as_multilabels([[0], [], [-1]], 3, k)
    with pytest.raises(TypeError, match=r"labels\[1\].*nested"):
        as_multilabels([[0], [[1]]], 2, k)
    with pytest.raises(TypeError, match=r"labels\[0\].*non-integer"):
        as_multilabels([[0.5]], 1, k)
    with pytest.raises(ValueError, match=r"labels\[0\] contains class 1099511627776"):
        as_multilabels([[2 ** 40]], 1, k)
    # unsorted rows and duplicates count once, as MultiLabelBinarizer
    a = as_multilabels([[3, 1, 3], [0, 0]], 2, k)
    assert a.indptr.tolist() == [0, 2, 3] and a.indices.tolist() == [1, 3, 0]
