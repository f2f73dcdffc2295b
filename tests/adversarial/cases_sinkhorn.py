"""Sinkhorn self-labelling: bad scores, marginals and arguments."""
from adversarial.harness import error, handled

_S = "rng = np.random.default_rng(0)\ns = rng.normal(size=(300, 6))\nfrom labelsift import sinkhorn\n"
CASES = []
for fn, call in [("self_label", "sinkhorn.self_label(s{kw})"), ("swav_codes", "sinkhorn.swav_codes(s{kw})")]:
    for name, edit, t, pat in [
        ("NaN scores", "s[5, 2] = np.nan", "ValueError", r"scores\[5, 2\]|NaN"),
        ("inf scores", "s[5, 2] = np.inf", "ValueError", r"scores\[5, 2\]|infinite|inf"),
        ("1-D scores", "s = s[:, 0]", "ValueError", r"scores.*2-D|shape"),
        ("3-D scores", "s = s[:, :, None]", "ValueError", r"scores.*2-D|shape"),
        ("string scores", "s = 'abc'", "TypeError|ValueError|FileNotFoundError", r"scores"),
        ("object scores", "s = s.astype(object)", "TypeError", r"scores"),
        ("0 rows", "s = s[:0]", "ValueError", r"scores|empty|0 rows"),
    ]:
        CASES.append(error(f"sinkhorn.{fn}: {name}", _S + edit + "\n" + call.format(kw=""), t, pat))
for kw, t, pat in [
    ("marginals=[0.5, 0.5]", "ValueError", r"marginals"),
    ("marginals=[-0.1, 0.3, 0.2, 0.2, 0.2, 0.2]", "ValueError", r"marginals"),
    ("marginals=[0.1] * 6", "ValueError", r"marginals"),
    ("marginals=[np.nan] * 6", "ValueError", r"marginals"),
    ("marginals='abc'", "TypeError|ValueError|FileNotFoundError", r"marginals"),
    ("lam=-1", "ValueError", r"lam"),
    ("lam=0", "ValueError", r"lam"),
    ("lam=float('nan')", "ValueError", r"lam"),
    ("lam='25'", "TypeError|ValueError", r"lam"),
    ("n_iter=-1", "ValueError", r"n_iter"),
    ("n_iter=2.5", "ValueError|TypeError", r"n_iter"),
    ("n_iter='3'", "ValueError|TypeError", r"n_iter"),
    ("tol=-1", "ValueError", r"tol"),
    ("tol='x'", "ValueError|TypeError", r"tol"),
    ("tol=float('nan')", "ValueError", r"tol"),
    ("kind='bogus'", "ValueError", r"kind"),
    ("n_jobs='x'", "TypeError", r"n_jobs"),
    ("n_jobs=0", "ValueError", r"n_jobs"),
    ("row_weights=[1.0] * 3", "ValueError", r"row_weights"),
    ("device='cuda'", "ValueError", r"device"),
]:
    CASES.append(error(f"sinkhorn.self_label({kw})", _S + f"sinkhorn.self_label(s, {kw})", t, pat))
for fn in ("self_label", "swav_codes"):
    CASES.append(handled(f"sinkhorn.{fn}: integer scores are read as float64", _S +
                         f"r = sinkhorn.{fn}((s * 10).astype(int))\nref = sinkhorn.{fn}((s * 10).astype(int).astype(float))",
                         "np.array_equal(r, ref)"))
CASES += [
    error("sinkhorn.self_label(kind='probs') of logits", _S + "sinkhorn.self_label(s, kind='probs')", "ValueError",
          r"scores|probabilit"),
    handled("sinkhorn.self_label: a dead class", _S + "s[:, 3] = -1e4\nr = sinkhorn.self_label(s)",
            "r.shape == (300,) and r.min() >= 0 and r.max() < 6"),
    handled("sinkhorn.self_label: lam=100", _S + "r = sinkhorn.self_label(s, lam=100.0)",
            "r.shape == (300,) and r.min() >= 0 and r.max() < 6"),
    handled("sinkhorn.self_label: N = 1", _S + "r = sinkhorn.self_label(s[:1])", "r.shape == (1,)"),
    handled("sinkhorn.self_label: n_jobs=100000 is clamped", _S + "r = sinkhorn.self_label(s, n_jobs=100000)\n"
            "ref = sinkhorn.self_label(s, n_jobs=1)", "np.array_equal(r, ref)", warns=r"n_jobs=100000"),
    handled("sinkhorn.swav_codes: huge scores stay finite", _S + "q = sinkhorn.swav_codes(s * 1e4)",
            "np.isfinite(q).all() and np.allclose(q.sum(1), 1)"),
    error("sinkhorn.rebalance: prior of the wrong length", "y = np.random.default_rng(0).dirichlet(np.ones(4), 50)\n"
          "from labelsift import sinkhorn\nsinkhorn.rebalance(y, [0.5, 0.5])", "ValueError", r"target_prior"),
    error("sinkhorn.rebalance: NaN probabilities", "y = np.random.default_rng(0).dirichlet(np.ones(4), 50)\n"
          "y[3, 1] = np.nan\nfrom labelsift import sinkhorn\nsinkhorn.rebalance(y, [0.25] * 4)", "ValueError",
          r"pred_probs|NaN"),
]
