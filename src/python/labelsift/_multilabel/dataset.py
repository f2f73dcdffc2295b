"""cleanlab's multi-label dataset summaries, as pandas DataFrames (pandas is
an optional extra: ``pip install labelsift[pandas]``)."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from .._common.options import resolve_ties
from .find import find


def pandas():
    from .._common.optional import optional
    return optional("pandas", "labelsift.multilabel_classification.dataset (it returns pandas DataFrames)")


def num_examples(labels=None, confident_joint=None) -> int:
    if labels is None and confident_joint is None:
        raise ValueError("num_examples is unknown: pass labels or a confident_joint")
    return len(labels) if labels is not None else int(np.sum(np.asarray(confident_joint)[0]))


def common_multilabel_issues(labels, pred_probs, *, class_names=None, confident_joint=None, ties=None):
    pd = pandas()
    n = num_examples(labels, confident_joint)
    pb, _, flagged = find(labels, pred_probs, confident_joint=confident_joint, ties=resolve_ties(ties))
    cols = defaultdict(list)
    for c in range(pb.k):
        for given, count in ((True, flagged[c, 1]), (False, flagged[c, 0])):
            if class_names is not None:
                cols["Class Name"].append(class_names[c])
            cols["Class Index"].append(c)
            cols["In Given Label"].append(given)
            cols["In Suggested Label"].append(not given)
            cols["Num Examples"].append(np.int64(count))
            cols["Issue Probability"].append(np.int64(count) / n)
    return (pd.DataFrame.from_dict(cols).sort_values(by=["Issue Probability"], ascending=False)
            .reset_index(drop=True))


def rank_classes_by_multilabel_quality(labels=None, pred_probs=None, *, class_names=None, joint=None,
                                       confident_joint=None, ties=None):
    pd = pandas()
    issues = common_multilabel_issues(labels, pred_probs, class_names=class_names, confident_joint=joint, ties=ties)
    n = num_examples(labels, confident_joint)
    per = defaultdict(dict)
    for _, row in issues.iterrows():
        d = per[row["Class Index"]]
        if class_names is not None:
            d["Class Name"] = row["Class Name"]
        if row["In Given Label"]:
            d["Label Issues"] = int(row["Issue Probability"] * n)  # cleanlab truncates
            d["Label Noise"] = row["Issue Probability"]
            d["Label Quality Score"] = 1 - d["Label Noise"]
        else:
            d["Inverse Label Issues"] = int(row["Issue Probability"] * n)
            d["Inverse Label Noise"] = row["Issue Probability"]
    cols = defaultdict(list)
    for c, d in per.items():
        cols["Class Index"].append(c)
        for name, v in d.items():
            cols[name].append(v)
    order = ["Class Name", "Class Index", "Label Issues", "Inverse Label Issues", "Label Noise",
             "Inverse Label Noise", "Label Quality Score"]
    if class_names is None:
        order = order[1:]
    return (pd.DataFrame.from_dict(cols).sort_values(by="Label Quality Score", ascending=True)
            .reset_index(drop=True)[order])


def overall_multilabel_health_score(labels=None, pred_probs=None, *, confident_joint=None, ties=None) -> float:
    n = num_examples(labels)
    mask = find(labels, pred_probs, confident_joint=confident_joint, ties=resolve_ties(ties))[1]
    return 1.0 - np.int64(mask.sum()) / n
