"""The confident-learning room.

Reading order (a call such as ``find_label_issues(labels, "dump.npy")``):

* ``find.py`` / ``counts.py``: the bodies of the public functions (argument
  checks, the plan of passes);
* ``passes.py``: :class:`~.passes.Problem` (labels + probabilities from the
  conversion point ``labelsift._common.arrays``) and the passes, each a loop
  over blocks calling one C++ kernel of ``labelsift._core`` (``src/cpp/cl/``),
  including the prune selections;
* ``rules.py``: the per-row rules in NumPy (confident guess, unflagging test,
  eligible classes, active prune pairs);
* ``scores.py``: the quality scores;
* ``latent.py``: the K x K algebra (calibration, noise matrices, prune
  counts), plain NumPy, shared with :mod:`labelsift.reference`;
* ``sketch.py``, ``sketch_prune.py``, ``accumulator.py``: the one-pass
  streaming sketch behind :mod:`labelsift.stream`.
"""
