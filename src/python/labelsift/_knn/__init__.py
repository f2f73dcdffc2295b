"""The k-NN neighbourhood room (behind :mod:`labelsift.knn`).

Reading order (a call such as ``knn.find_issues(X, labels)``):

* ``labelsift/knn.py``: the public functions, thin;
* ``features.py``: feature matrices (arrays, memmaps, ``.npy`` paths) checked
  and handed on in a dtype the kernels read;
* ``search.py``: the exact search -- float32 GEMM tiles (NumPy matmul) whose
  epilogue keeps k + r candidates per row (C++, ``src/cpp/knn/``), a float64
  re-rank, the rounding-error certificate and the exhaustive fallback;
* ``graph.py``: user-supplied neighbour lists (indices, distances, SciPy CSR
  graphs) and Datalab's exact-duplicate correction of the graph;
* ``counts.py``: neighbour label counts, agreement, kNN pred_probs;
* ``datalab.py``: Datalab's outlier, near-duplicate and non-IID checks and
  ``find_issues``.
"""
