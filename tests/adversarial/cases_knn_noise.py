"""k-NN search, Datalab's checks, HOC, SimiFeat and multi-label: bad input."""
from adversarial.harness import error, handled

_X = "rng = np.random.default_rng(0)\nX = rng.normal(size=(200, 8))\ny = rng.integers(0, 4, 200)\n"
CASES = []
for name, call, t, pat in [
    ("search: NaN features", "X[3, 2] = np.nan\nlabelsift.knn.search(X, k=5)", "ValueError", r"features\[3, 2\]|NaN"),
    ("search: inf features", "X[3, 2] = np.inf\nlabelsift.knn.search(X, k=5)", "ValueError", r"features|inf"),
    ("search: 1-D features", "labelsift.knn.search(X[:, 0], k=5)", "ValueError", r"features.*2-D|shape"),
    ("search: k=0", "labelsift.knn.search(X, k=0)", "ValueError", r"\bk\b"),
    ("search: k too large", "labelsift.knn.search(X, k=200)", "ValueError", r"k=200"),
    ("search: k='5'", "labelsift.knn.search(X, k='5')", "TypeError", r"\bk\b"),
    ("search: bad metric", "labelsift.knn.search(X, k=5, metric='manhattan')", "ValueError", r"metric"),
    ("search: string features", "labelsift.knn.search(X.astype(str), k=5)", "TypeError", r"features"),
    ("search: mismatched database", "labelsift.knn.search(X, X[:, :4], k=5)", "ValueError", r"features"),
    ("search: n_jobs='x'", "labelsift.knn.search(X, k=5, n_jobs='x')", "TypeError", r"n_jobs"),
    ("find_issues: labels too short", "labelsift.knn.find_issues(X, y[:-1])", "ValueError", r"labels"),
    ("hoc: labels too short", "labelsift.noise.hoc(X, y[:-1], rounds=2, sample_size=100, steps=5)", "ValueError",
     r"labels"),
    ("hoc: negative label", "y[0] = -1\nlabelsift.noise.hoc(X, y, rounds=2, sample_size=100, steps=5)",
     "ValueError", r"labels"),
    ("hoc: rounds=0", "labelsift.noise.hoc(X, y, rounds=0)", "ValueError", r"rounds"),
    ("hoc: steps='x'", "labelsift.noise.hoc(X, y, steps='x')", "TypeError", r"steps"),
    ("simifeat: bad method", "labelsift.noise.simifeat(X, y, method='bogus')", "ValueError", r"method"),
    ("simifeat: k=0", "labelsift.noise.simifeat(X, y, k=0)", "ValueError", r"\bk\b"),
    ("multi-label: label beyond K", "p = rng.random((200, 4))\nlabelsift.multilabel_classification.filter"
     ".find_label_issues([[5]] + [[0]] * 199, p)", "ValueError", r"labels"),
    ("multi-label: nested too deep", "p = rng.random((200, 4))\nlabelsift.multilabel_classification.filter"
     ".find_label_issues([[[0]]] * 200, p)", "ValueError|TypeError", r"labels"),
    ("multi-label: probability above 1", "p = rng.random((200, 4)); p[7, 1] = 1.5\n"
     "labelsift.multilabel_classification.filter.find_label_issues([[0]] * 200, p)", "ValueError",
     r"pred_probs\[7, 1\]"),
    ("multi-label: 1-D pred_probs", "p = rng.random(200)\nlabelsift.multilabel_classification.filter"
     ".find_label_issues([[0]] * 200, p)", "ValueError", r"pred_probs"),
    ("multi-label: lengths differ", "p = rng.random((200, 4))\nlabelsift.multilabel_classification.filter"
     ".find_label_issues([[0]] * 199, p)", "ValueError", r"labels"),
]:
    CASES.append(error(name, _X + call, t, pat))
CASES += [
    handled("find_issues: labels of any type, as Datalab maps them to classes",
            _X + "a = labelsift.knn.find_issues(X, y.astype(float), as_frame=False)\n"
            "b = labelsift.knn.find_issues(X, np.array(['c%d' % v for v in y]), as_frame=False)",
            "np.array_equal(a['is_label_issue'], b['is_label_issue'])"),
    handled("search: n_jobs=100000 is clamped", _X + "i, d = labelsift.knn.search(X, k=5, n_jobs=100000)\n"
            "i1, d1 = labelsift.knn.search(X, k=5, n_jobs=1)", "np.array_equal(i, i1)", warns=r"n_jobs=100000"),
    handled("search: duplicated rows exclude only themselves", _X + "Z = np.vstack([X, X])\n"
            "i, d = labelsift.knn.search(Z, k=1, metric='l2')",
            "all(i[j, 0] == (j + 200) % 400 for j in range(400))"),
]
