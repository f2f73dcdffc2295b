"""Bad values, types and arguments through the public API."""
from adversarial.harness import error, handled

K = 5
# (name, call with {kw} for extra keywords); y, p from good() unless the case replaces them
FUNCS = {
    "find_label_issues": "labelsift.find_label_issues(y, p{kw})",
    "compute_confident_joint": "labelsift.compute_confident_joint(y, p{kw})",
    "get_confident_thresholds": "labelsift.get_confident_thresholds(y, p{kw})",
    "estimate_joint": "labelsift.estimate_joint(y, p{kw})",
    "num_label_issues": "labelsift.num_label_issues(y, p{kw})",
    "get_label_quality_scores": "labelsift.get_label_quality_scores(y, p{kw})",
    "estimate_py_and_noise": "labelsift.estimate_py_and_noise_matrices_from_probabilities(y, p{kw})",
    "order_label_issues": "labelsift.order_label_issues(np.zeros(len(y), bool), y, p{kw})",
}


def call(fn, kw=""):
    return FUNCS[fn].format(kw=(", " + kw) if kw else "")


CASES = []

# ---- values in pred_probs: every function names the row (and column) ----
_VALUES = [
    ("NaN", "p[17, 3] = np.nan", r"pred_probs\[17, 3\].*NaN"),
    ("inf", "p[17, 3] = np.inf", r"pred_probs\[17, 3\].*infinite"),
    ("-inf", "p[17, 3] = -np.inf", r"pred_probs\[17, 3\].*infinite"),
    ("above 1", "p[17, 3] = 2.0", r"pred_probs\[17, 3\].*outside"),
    ("negative", "p[17, 3] = -0.5", r"pred_probs\[17, 3\].*outside"),
    ("row sums to 0.5", "p[17] *= 0.5", r"row 17 sums to"),
    ("logits", "p[:] = np.log(p + 1e-3)", r"pred_probs\[0, \d\]|row 0 sums"),
    ("a zero row", "p[17] = 0", r"row 17 sums to 0"),
]
for fn in FUNCS:
    for name, edit, pat in _VALUES:
        CASES.append(error(f"{fn}: pred_probs {name}", f"y, p = good()\n{edit}\n{call(fn)}", "ValueError", pat))
for name, edit, pat in _VALUES[:3]:
    CASES.append(error(f"estimate_joint with a confident_joint: pred_probs {name}",
                       f"y, p = good()\ncj = labelsift.compute_confident_joint(y, p)\n{edit}\n"
                       "labelsift.estimate_joint(y, p, confident_joint=cj)", "ValueError", pat))
CASES.append(error("estimate_joint with a confident_joint: pred_probs all NaN",
                   "y, p = good()\ncj = labelsift.compute_confident_joint(y, p)\np[:] = np.nan\n"
                   "labelsift.estimate_joint(y, p, confident_joint=cj)", "ValueError", r"pred_probs\[0, 0\].*NaN"))
CASES.append(error("estimate_joint with a confident_joint: pred_probs of another K",
                   "y, p = good()\ncj = labelsift.compute_confident_joint(y, p)\n"
                   "labelsift.estimate_joint(y, good(k=4)[1], confident_joint=cj)", "ValueError",
                   r"confident_joint is 5 x 5 but pred_probs has 4"))
CASES.append(handled("estimate_joint with a confident_joint and labels=None",
                     "y, p = good()\ncj = labelsift.compute_confident_joint(y, p)\n"
                     "r = labelsift.estimate_joint(None, p, confident_joint=cj)",
                     "abs(r.sum() - 1) < 1e-12"))

# ---- the type and shape of pred_probs ----
_PROBS = [
    ("a string (a missing file)", "p = 'not an array'", "FileNotFoundError", r"pred_probs: no such file: not an array"),
    ("a dict", "p = {'a': 1}", "TypeError", r"pred_probs"),
    ("None", "p = None", "TypeError", r"pred_probs"),
    ("an object array", "p = p.astype(object)", "TypeError", r"pred_probs.*dtype"),
    ("integers", "p = (p * 10).astype(np.int64)", "TypeError", r"pred_probs.*floating"),
    ("complex", "p = p.astype(np.complex128)", "TypeError", r"pred_probs.*dtype"),
    ("bools", "p = p > 0.5", "TypeError", r"pred_probs.*dtype"),
    ("1-D", "p = p[:, 0]", "ValueError", r"pred_probs must be 2-D"),
    ("3-D", "p = p[:, :, None]", "ValueError", r"pred_probs must be 2-D"),
    ("0 rows", "p = p[:0]; y = y[:0]", "ValueError", r"pred_probs is empty"),
    ("one column", "p = np.ones((len(y), 1)); y = np.zeros(len(y), int)", "ValueError", r"at least 2 classes"),
    ("strings", "p = np.array([['0.5', '0.5']] * len(y))", "TypeError", r"pred_probs.*dtype"),
    ("a ragged list", "p = [[0.5, 0.5], [1.0]] + [[0.5, 0.5]] * (len(y) - 2)", "TypeError|ValueError",
     r"pred_probs"),
]
for fn in ("find_label_issues", "compute_confident_joint", "get_label_quality_scores"):
    for name, edit, t, pat in _PROBS:
        CASES.append(error(f"{fn}: pred_probs {name}", f"y, p = good()\n{edit}\n{call(fn)}", t.split("|"), pat))

# ---- labels ----
_LABELS = [
    ("floats", "y = y.astype(float)", "TypeError", r"labels.*integer"),
    ("-1", "y[9] = -1", "ValueError", r"labels\[9\] = -1 is not a class index"),
    ("K", "y[9] = 5", "ValueError", r"labels\[9\] = 5 is not a class index"),
    ("strings", "y = y.astype(str)", "TypeError", r"labels.*strings"),
    ("2-D", "y = y[:, None]", "ValueError", r"labels must be 1-D"),
    ("too short", "y = y[:-1]", "ValueError", r"labels has 199 entries but pred_probs has 200"),
    ("None", "y = None", "TypeError", r"labels"),
    ("uint64 beyond int64", "y = y.astype(np.uint64); y[3] = 2**63 + 5", "ValueError", r"labels\[3\]"),
    ("bools", "y = y > 2", "TypeError", r"labels.*integer"),
    ("a dict", "y = {0: 1}", "TypeError", r"labels"),
]
for fn in ("find_label_issues", "compute_confident_joint", "get_label_quality_scores"):
    for name, edit, t, pat in _LABELS:
        CASES.append(error(f"{fn}: labels {name}", f"y, p = good()\n{edit}\n{call(fn)}", t, pat))
for dt in ("np.uint8", "np.int8", "np.uint16", "np.int32", "np.uint32", "np.uint64"):
    CASES.append(handled(f"labels as {dt}", f"y, p = good()\nr = labelsift.find_label_issues(y.astype({dt}), p)\n"
                         "ref = labelsift.find_label_issues(y, p)", "np.array_equal(r, ref)"))
CASES.append(handled("labels as a list", "y, p = good()\nr = labelsift.find_label_issues(list(y), p)\n"
                     "ref = labelsift.find_label_issues(y, p)", "np.array_equal(r, ref)"))

# ---- find_label_issues' arguments ----
_FIND = [
    ("frac_noise='0.5'", "TypeError", r"frac_noise"),
    ("frac_noise=None", "TypeError", r"frac_noise"),
    ("frac_noise=float('nan')", "ValueError", r"frac_noise"),
    ("frac_noise=-0.1", "ValueError", r"frac_noise"),
    ("frac_noise=1.5", "ValueError", r"frac_noise"),
    ("frac_noise=True", "TypeError", r"frac_noise"),
    ("frac_noise=[0.5]", "TypeError", r"frac_noise"),
    ("min_examples_per_class=None", "TypeError", r"min_examples_per_class"),
    ("min_examples_per_class=float('nan')", "ValueError", r"min_examples_per_class"),
    ("min_examples_per_class=10**30", "ValueError", r"min_examples_per_class"),
    ("min_examples_per_class=-1", "ValueError", r"min_examples_per_class"),
    ("min_examples_per_class=2.5", "ValueError", r"min_examples_per_class"),
    ("min_examples_per_class='1'", "TypeError", r"min_examples_per_class"),
    ("min_examples_per_class=float('inf')", "ValueError", r"min_examples_per_class"),
    ("rank_by_kwargs='abc', return_indices_ranked_by='self_confidence'", "TypeError", r"rank_by_kwargs"),
    ("rank_by_kwargs={'rows': np.arange(3)}, return_indices_ranked_by='self_confidence'", "ValueError",
     r"rank_by_kwargs.*'rows'"),
    ("rank_by_kwargs={'g': 1}, return_indices_ranked_by='normalized_margin'", "ValueError", r"rank_by_kwargs.*'g'"),
    ("rank_by_kwargs={'thresholds': None}, return_indices_ranked_by='self_confidence'", "ValueError",
     r"rank_by_kwargs.*'thresholds'"),
    ("rank_by_kwargs={'adjust_pred_probs': 'yes'}, return_indices_ranked_by='self_confidence'", "TypeError",
     r"adjust_pred_probs"),
    ("rank_by_kwargs=[1], return_indices_ranked_by='self_confidence'", "TypeError", r"rank_by_kwargs"),
    ("return_indices_ranked_by='bogus'", "ValueError", r"return_indices_ranked_by"),
    ("return_indices_ranked_by=1", "ValueError", r"return_indices_ranked_by"),
    ("filter_by='bogus'", "ValueError", r"filter_by"),
    ("filter_by=None", "ValueError", r"filter_by"),
    ("filter_by=['both']", "ValueError|TypeError", r"filter_by"),
    ("verbose='yes'", "TypeError", r"verbose"),
    ("device='cuda:0'", "ValueError", r"device"),
    ("device=0", "ValueError", r"device"),
    ("num_to_remove_per_class=[1, 2]", "ValueError", r"num_to_remove_per_class.*shape"),
    ("num_to_remove_per_class=[1, -2, 0, 0, 0]", "ValueError", r"num_to_remove_per_class\[1\]"),
    ("num_to_remove_per_class=[1, 2.5, 0, 0, 0]", "ValueError", r"num_to_remove_per_class\[1\]"),
    ("num_to_remove_per_class=['a'] * 5", "TypeError", r"num_to_remove_per_class"),
    ("num_to_remove_per_class='abc'", "TypeError", r"num_to_remove_per_class"),
    ("num_to_remove_per_class=[np.nan, 0, 0, 0, 0]", "ValueError", r"num_to_remove_per_class\[0\]"),
    ("num_to_remove_per_class=[10**30, 0, 0, 0, 0]", "ValueError|TypeError", r"num_to_remove_per_class"),
    ("confident_joint=np.full((5, 5), 1e300)", "ValueError", r"confident_joint\[0, 0\].*too large"),
    ("confident_joint=np.full((5, 5), np.nan)", "ValueError", r"confident_joint\[0, 0\].*not finite"),
    ("confident_joint=-np.ones((5, 5))", "ValueError", r"confident_joint\[0, 0\].*negative"),
    ("confident_joint=np.ones((4, 4))", "ValueError", r"confident_joint must have shape \(5, 5\)"),
    ("confident_joint=np.ones((5, 4))", "ValueError", r"confident_joint must have shape"),
    ("confident_joint=np.ones((5, 5, 1))", "ValueError", r"confident_joint must have shape"),
    ("confident_joint=np.full((5, 5), 'a')", "TypeError", r"confident_joint"),
    ("confident_joint='abc'", "TypeError", r"confident_joint"),
    ("confident_joint=np.ones((5, 5), bool)", "TypeError", r"confident_joint"),
    ("confident_joint=np.ones((5, 5), complex)", "TypeError", r"confident_joint"),
    ("confident_joint=np.full((5, 5), np.inf)", "ValueError", r"confident_joint\[0, 0\].*not finite"),
    ("confident_joint=[[1, 2], [3]]", "TypeError|ValueError", r"confident_joint"),
    ("ties='bogus'", "ValueError", r"ties"),
    ("ties=1", "ValueError|TypeError", r"ties"),
    ("multi_label=True", "NotImplementedError", r"multi_label"),
]
for kw, t, pat in _FIND:
    CASES.append(error(f"find_label_issues({kw})", "y, p = good()\n" + call("find_label_issues", kw),
                       t.split("|"), pat))
for filter_by in ("prune_by_class", "both"):
    CASES.append(error(f"find_label_issues(filter_by={filter_by!r}, confident_joint=1e300)",
                       "y, p = good()\n" + call("find_label_issues",
                                                f"filter_by={filter_by!r}, confident_joint=np.full((5, 5), 1e300)"),
                       "ValueError", r"confident_joint\[0, 0\].*too large"))
_FIND_OK = [
    ("frac_noise=np.float32(0.5)", "frac_noise=0.5"),
    ("min_examples_per_class=np.int64(5)", "min_examples_per_class=5"),
    ("min_examples_per_class=5.0", "min_examples_per_class=5"),
    ("num_to_remove_per_class=np.array([1, 2, 0, 3, 1], np.uint8)", "num_to_remove_per_class=[1, 2, 0, 3, 1]"),
    ("num_to_remove_per_class=[1.0, 2.0, 0.0, 3.0, 1.0]", "num_to_remove_per_class=[1, 2, 0, 3, 1]"),
    ("confident_joint=cj.tolist()", "confident_joint=cj"),
    ("confident_joint=cj.astype(np.float32)", "confident_joint=cj"),
    ("verbose=np.bool_(False)", "verbose=False"),
    ("rank_by_kwargs={'adjust_pred_probs': True}, return_indices_ranked_by='self_confidence'",
     "rank_by_kwargs={'adjust_pred_probs': True}, return_indices_ranked_by='self_confidence'"),
]
for kw, ref in _FIND_OK:
    CASES.append(handled(f"find_label_issues({kw})",
                         "y, p = good()\ncj = labelsift.compute_confident_joint(y, p)\n"
                         f"r = {call('find_label_issues', kw)}\nref = {call('find_label_issues', ref)}",
                         "np.array_equal(r, ref)"))

# ---- the other functions' arguments ----
_OTHER = [
    ("compute_confident_joint", "thresholds=['a'] * 5", "TypeError", r"thresholds"),
    ("compute_confident_joint", "thresholds=[0.5] * 4", "ValueError", r"thresholds must have shape \(5,\)"),
    ("compute_confident_joint", "thresholds=[0.5, np.nan, 0.5, 0.5, 0.5]", "ValueError", r"thresholds\[1\]"),
    ("compute_confident_joint", "thresholds='abc'", "TypeError", r"thresholds"),
    ("compute_confident_joint", "thresholds={'a': 1}", "TypeError", r"thresholds"),
    ("compute_confident_joint", "thresholds=np.ones((5, 1))", "ValueError", r"thresholds must have shape"),
    ("compute_confident_joint", "calibrate='yes'", "TypeError", r"calibrate"),
    ("compute_confident_joint", "return_indices_of_off_diagonals='yes'", "TypeError",
     r"return_indices_of_off_diagonals"),
    ("estimate_py_and_noise", "py_method='bogus'", "ValueError", r"py_method"),
    ("estimate_py_and_noise", "py_method=None", "ValueError", r"py_method"),
    ("estimate_py_and_noise", "converge_latent_estimates='no'", "TypeError", r"converge_latent_estimates"),
    ("estimate_py_and_noise", "thresholds=['x'] * 5", "TypeError", r"thresholds"),
    ("num_label_issues", "estimation_method='bogus'", "ValueError", r"estimation method"),
    ("num_label_issues", "estimation_method=None", "ValueError", r"estimation method"),
    ("num_label_issues", "estimation_method='off_diagonal_custom'", "ValueError", r"needs a confident_joint"),
    ("num_label_issues", "estimation_method='off_diagonal_custom', confident_joint=np.full((5, 5), 1e300)",
     "ValueError", r"confident_joint\[0, 0\]"),
    ("num_label_issues", "estimation_method='off_diagonal_custom', confident_joint=np.ones((3, 3))",
     "ValueError", r"confident_joint must have shape \(5, 5\)"),
    ("get_label_quality_scores", "method='bogus'", "ValueError", r"scoring method"),
    ("get_label_quality_scores", "method=None", "ValueError", r"scoring method"),
    ("get_label_quality_scores", "method=['self_confidence']", "ValueError", r"scoring method"),
    ("get_label_quality_scores", "adjust_pred_probs='yes'", "TypeError", r"adjust_pred_probs"),
    ("get_label_quality_scores", "method='confidence_weighted_entropy', adjust_pred_probs=True", "ValueError",
     r"adjust_pred_probs"),
    ("order_label_issues", "rank_by='bogus'", "ValueError", r"scoring method"),
    ("order_label_issues", "rank_by_kwargs={'rows': [1]}", "ValueError", r"rank_by_kwargs.*'rows'"),
    ("order_label_issues", "rank_by_kwargs='x'", "TypeError", r"rank_by_kwargs"),
    ("order_label_issues", "ties='x'", "ValueError", r"ties"),
    ("estimate_joint", "confident_joint=np.full((5, 5), 1e300)", "ValueError", r"confident_joint\[0, 0\]"),
    ("estimate_joint", "confident_joint=np.ones((5, 3))", "ValueError", r"confident_joint must be a square"),
    ("estimate_joint", "confident_joint='x'", "TypeError", r"confident_joint"),
]
for fn, kw, t, pat in _OTHER:
    CASES.append(error(f"{fn}({kw})", "y, p = good()\n" + call(fn, kw), t, pat))
CASES += [
    error("order_label_issues: an integer mask", "y, p = good()\n"
          "labelsift.order_label_issues(np.zeros(len(y), int), y, p)", "ValueError", r"label_issues_mask"),
    error("order_label_issues: a short mask", "y, p = good()\n"
          "labelsift.order_label_issues(np.zeros(len(y) - 1, bool), y, p)", "ValueError", r"label_issues_mask"),
    error("calibrate_confident_joint: 1e300", "y, p = good()\n"
          "labelsift.calibrate_confident_joint(np.full((5, 5), 1e300), y)", "ValueError", r"confident_joint\[0, 0\]"),
    error("calibrate_confident_joint: NaN", "y, p = good()\ncj = labelsift.compute_confident_joint(y, p) * 1.0\n"
          "cj[2, 1] = np.nan\nlabelsift.calibrate_confident_joint(cj, y)", "ValueError", r"confident_joint\[2, 1\]"),
    error("calibrate_confident_joint: labels beyond K", "y, p = good()\ncj = labelsift.compute_confident_joint(y, p)\n"
          "labelsift.calibrate_confident_joint(cj[:3, :3], y)", "ValueError", r"labels\[\d+\] = [34]"),
    error("calibrate_confident_joint: labels None", "y, p = good()\ncj = labelsift.compute_confident_joint(y, p)\n"
          "labelsift.calibrate_confident_joint(cj, None)", "TypeError", r"labels"),
    error("estimate_latent: py_method", "y, p = good()\ncj = labelsift.compute_confident_joint(y, p)\n"
          "labelsift.estimate_latent(cj, y, py_method='x')", "ValueError", r"py_method"),
    error("estimate_latent: converge_latent_estimates", "y, p = good()\ncj = labelsift.compute_confident_joint(y, p)\n"
          "labelsift.estimate_latent(cj, y, converge_latent_estimates='x')", "TypeError", r"converge_latent_estimates"),
    error("estimate_latent: a negative joint", "y, p = good()\n"
          "labelsift.estimate_latent(-np.ones((5, 5)), y)", "ValueError", r"confident_joint\[0, 0\].*negative"),
    error("options(ties='x')", "labelsift.options(ties='x')", "ValueError", r"ties"),
    error("options(bogus=1)", "labelsift.options(bogus=1)", "TypeError", r"bogus"),
    handled("compute_confident_joint(thresholds=list)", "y, p = good()\nt = labelsift.get_confident_thresholds(y, p)\n"
            "r = labelsift.compute_confident_joint(y, p, thresholds=list(t))\n"
            "ref = labelsift.compute_confident_joint(y, p, thresholds=t)", "np.array_equal(r, ref)"),
    handled("compute_confident_joint(thresholds=inf)", "y, p = good()\n"
            "r = labelsift.compute_confident_joint(y, p, thresholds=np.full(5, np.inf), calibrate=False)",
            "r.shape == (5, 5) and np.isfinite(r).all()"),
]

# ---- enormous but valid: K x K memory is stated up front ----
CASES += [
    error("find_label_issues: K = 200,000, N = 10", "rng = np.random.default_rng(0)\n"
          "p = np.zeros((10, 200_000)); p[np.arange(10), np.arange(10)] = 1\ny = np.arange(10)\n"
          "labelsift.find_label_issues(y, p)", "MemoryError", r"K = 200000.*GiB", timeout=30),
    error("compute_confident_joint: K = 200,000, N = 10", "p = np.zeros((10, 200_000)); "
          "p[np.arange(10), np.arange(10)] = 1\ny = np.arange(10)\nlabelsift.compute_confident_joint(y, p)",
          "MemoryError", r"K = 200000.*GiB", timeout=30),
    handled("get_label_quality_scores: K = 200,000, N = 10 (no K x K work)",
            "p = np.zeros((10, 200_000)); p[np.arange(10), np.arange(10)] = 1\ny = np.arange(10)\n"
            "r = labelsift.get_label_quality_scores(y, p)", "np.array_equal(r, np.ones(10))", timeout=30),
]
