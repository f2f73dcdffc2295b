"""The multi-label room: cleanlab's one-vs-rest confident learning, all K
classes at once.

Reading order:

* ``labels.py``: the labels (lists of label lists, N x K 0/1 arrays, CSR
  matrices) as one CSR form, checked;
* ``passes.py``: :class:`~.passes.Problem` and the sweeps over P, each a loop
  over blocks calling one C++ kernel of ``labelsift._core``
  (``src/cpp/multilabel/``): the per-class thresholds, the K 2 x 2 joints
  (plus the confident-learning / predicted-neq-given flags and the prune-key
  histograms), and the per-class prune selections;
* ``counts.py`` / ``find.py``: the bodies of the public functions (the K 2 x 2
  algebra reuses :mod:`labelsift._cl`);
* ``scores.py``: per-class scores and their aggregation;
* ``dataset.py``: cleanlab's summary DataFrames.

The plain oracle is :mod:`labelsift.reference.multilabel`.
"""
