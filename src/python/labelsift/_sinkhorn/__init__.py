"""The Sinkhorn self-labelling room (behind :mod:`labelsift.sinkhorn`).

Reading order (a call such as ``self_label(scores, kind="logits")``):

* ``labelsift/sinkhorn.py``: the public functions (argument checks, which
  loop with which start and stop rule);
* ``inputs.py``: scores, marginals, row weights and warm starts, checked and
  converted (on top of ``labelsift._common.arrays``; torch tensors through
  ``labelsift._common.tensors``);
* ``engine.py``: the loop, one fused C++ pass per iteration
  (``labelsift._core.sk_pass``, ``src/cpp/sinkhorn/``), and its result;
* ``potentials.py``: the O(K) updates and the stop rules between passes,
  plain NumPy, shared with :mod:`labelsift.reference.sinkhorn`.
"""
