"""One-pass, mergeable confident learning: :class:`ConfidentJointAccumulator`.

Feed batches of ``(example ids, given labels, predicted probabilities)`` in any
order, from any number of workers; merge the accumulators (or
``all_reduce`` them over ``torch.distributed``); call :meth:`result`. The
result equals what the in-memory API returns on the same data with the rows
sorted by example id -- ``get_confident_thresholds``,
``compute_confident_joint``, ``estimate_joint``,
``estimate_py_and_noise_matrices_from_probabilities`` and
``find_label_issues`` (default ``filter_by="prune_by_noise_rate"``) -- and it
*says* whether it could prove that (``exact``, ``num_uncertain``).

What is kept per example (memory bounded independently of K)
---------------------------------------------------------------
* its id and given label ``y``;
* ``g = P[y]``, in the input dtype;
* with ``sketch="adaptive"`` (the default): the first entries of a stable
  descending sort of the row (ties: lower class first; the given label only
  if it is among the top ``top_m``) -- at least ``top_m`` of them, plus
  every class j != y with ``P[j] - P[y] >= level`` (float64), at most
  ``max(max_entries, top_m)`` -- and ``rest``, the largest probability left
  out other than ``P[y]`` (-inf when none is). ``level`` starts at 0 and is
  raised whenever more than ``avg_entries`` entries per example would be
  held: then to the lowest level keeping 0.75 * ``avg_entries`` on average,
  every held row trimmed to exactly what that level keeps (a prefix of the
  same order). Each row is the sketch at the level in force when it came
  (or a later one), and its ``rest`` bounds what it left out, whatever the
  other rows' levels; merged accumulators go on at the higher level.
  ``stats()`` and ``memory_bytes()`` report entries and bytes per row;
* with ``sketch="top_m"``: exactly the ``top_m`` largest probabilities with
  their classes, and ``left_out_max``, the largest probability among the
  classes *not* in the top-m (the given label included if it was left out);
  ``-inf`` when ``top_m >= K``. Memory O(N * top_m).

Below, "the top-m" and ``left_out_max`` stand for the row's kept entries
and ``rest``.

What is proven at :meth:`result`
---------------------------------
Rows are ordered by id (the row order of the in-memory call), then:

* thresholds are always exact (they only need ``g``: summed per class in id
  order with NumPy's pairwise scheme, by the kernel the in-memory path uses);
* the argmax is always exact (the first entry of the top-m);
* a row's confident guess is decided when no left-out class can pass its
  cut (``left_out_max`` below the smallest cut among the classes the sketch
  of that row does not know), or when the known classes already fix it (two
  or more known classes pass: the argmax; exactly one passes and it is the
  argmax);
* the final unflagging test ("the given label is the argmax after adding
  1e-6 to P[y]") is decided unless ``left_out_max`` equals the nudged
  ``P[y]`` exactly;
* ``prune_by_noise_rate`` (for given class k and true class j with
  ``c = pcm[j, k] > 0``: the c rows of class k with the largest margin
  ``P[j] - P[k]`` in the dtype, ties by lower id): a margin is known when j is
  in the row's top-m; otherwise it lies between ``-2e-6 - P[k]`` (the
  validation floor) and ``left_out_max - P[k]`` (both rounded in the dtype,
  which keeps them bounds). A row is definitely selected when fewer than c
  other rows can beat its lowest possible margin, definitely not selected
  when c rows certainly beat its highest one.

If every confident guess is decided (``counts_exact``), the confident joint
and everything computed from it -- calibrated joint, noise matrices, ``py``
-- are exact. A row whose guess or whose final flag cannot be decided is
*uncertain*; ``num_uncertain`` counts them and ``exact`` is
``num_uncertain == 0``: then every field equals the in-memory result. While
some guess is undecided the counts may be off, so a flag is only reported as
decided when it does not depend on the counts at all (the given label wins
the unflagging test, or the class is too small to be pruned).

When the sketch cannot decide
-----------------------------
Calibration can round a prune count ``pcm[j, k]`` above the number of class-k
rows that clearly lean towards j; the last picks then go to rows where both
``P[j]`` and ``P[k]`` are tail values -- an order the sketch does not hold.
This is typical of uniformly random label noise with K in the hundreds.
:meth:`ConfidentJointAccumulator.refine` takes the full rows of the uncertain
examples it names (``result().refine_ids``), e.g. from a second pass over
just those; after it, ``result()`` decides them exactly. Two rounds at most:
when some confident guess is undecided, the first round settles the counts,
the second the selections those counts imply.

Best answer for undecided rows (``label_issues`` is always a full mask): the
in-memory algorithm run on the sketch with every left-out probability taken
as ``min(left_out_max, 0)`` -- so a left-out class never passes its threshold
and never wins a margin it is not proven to win -- and an unbreakable tie in
the unflagging test resolved in favour of the given label (row kept).

Ties: as everywhere in labelsift, exact ties are broken by the lower row
index, which here is the lower example id.

Kernels: per batch, validation (C++ ``validate``) and the sketch (C++
``sketch_rows`` for the adaptive one, ``labelsift._cl.sketch.sketch_rows_numpy``
its definition; C++ ``top_m_rows``, one pass per row, for top-m,
``labelsift._cl.sketch.top_m_numpy`` its NumPy definition and test oracle); at the end, the per-class means use the C++
``class_means`` kernel, exactly as the in-memory path does.
"""
from __future__ import annotations

from ._cl.accumulator import ConfidentJointAccumulator
from ._cl.sketch import NoiseEstimate

__all__ = ["ConfidentJointAccumulator", "NoiseEstimate"]
