"""Support code shared by the test rooms (importable as ``support``: the
suite puts tests/ on sys.path through pytest's ``pythonpath`` option).

* :mod:`support.constants` -- the API vocabulary and dtype lists the tests sweep.
* :mod:`support.data` -- seeded generators and the real dumps (CIFAR-10 from
  labelsift.datasets, MNIST from tests/data).
* :mod:`support.cases` -- the named (labels, pred_probs) cases compared with cleanlab.
* :mod:`support.oracle` -- cleanlab 2.9.0 as the oracle (lower-index rounding
  pin, stable-sort variant, memoised calls).
* :mod:`support.compare` -- exact and tie-aware comparison of results.
"""
