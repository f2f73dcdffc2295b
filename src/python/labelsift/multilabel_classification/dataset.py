"""Multi-label dataset summaries, as ``cleanlab.multilabel_classification.dataset``
(pandas DataFrames; pandas is imported on first use).

Quirks of cleanlab 2.9.0 reproduced on purpose, so the DataFrames are equal:

* ``common_multilabel_issues`` sorts by ``Issue Probability`` with pandas'
  default (unstable) quicksort, so rows with equal probabilities come in
  pandas' order;
* ``rank_classes_by_multilabel_quality`` computes ``Label Issues`` as
  ``int(Issue Probability * N)`` (truncation: it can be one less than the
  count), and passes its ``joint`` argument on as ``confident_joint`` (its own
  ``confident_joint`` only sets N).
"""
from __future__ import annotations

from .._multilabel import dataset as _ds


def common_multilabel_issues(labels=list, pred_probs=None, *, class_names=None, confident_joint=None, ties=None):
    """Per class two rows: (In Given Label=True, In Suggested Label=False) with
    the count of flagged examples that have the class, and (False, True) with
    those that do not; sorted by ``Issue Probability`` (count / N) descending."""
    return _ds.common_multilabel_issues(labels, pred_probs, class_names=class_names,
                                        confident_joint=confident_joint, ties=ties)


def rank_classes_by_multilabel_quality(labels=None, pred_probs=None, *, class_names=None, joint=None,
                                       confident_joint=None, ties=None):
    """One row per class: Label Issues, Inverse Label Issues, Label Noise,
    Inverse Label Noise, Label Quality Score (= 1 - Label Noise), ascending by quality."""
    return _ds.rank_classes_by_multilabel_quality(labels, pred_probs, class_names=class_names, joint=joint,
                                                  confident_joint=confident_joint, ties=ties)


def overall_multilabel_health_score(labels=None, pred_probs=None, *, confident_joint=None, ties=None) -> float:
    """1 - (examples with a label issue) / N."""
    return _ds.overall_multilabel_health_score(labels, pred_probs, confident_joint=confident_joint, ties=ties)


def multilabel_health_summary(labels=None, pred_probs=None, *, class_names=None, num_examples=None,
                              confident_joint=None, verbose=True, ties=None) -> dict:
    """{"overall_multilabel_health_score", "classes_by_multilabel_quality",
    "common_multilabel_issues"}; ``verbose`` prints the tables."""
    classes = rank_classes_by_multilabel_quality(labels, pred_probs, class_names=class_names,
                                                 confident_joint=confident_joint, ties=ties)
    issues = common_multilabel_issues(labels, pred_probs, class_names=class_names,
                                      confident_joint=confident_joint, ties=ties)
    score = overall_multilabel_health_score(labels, pred_probs, confident_joint=confident_joint, ties=ties)
    if verbose:
        n = num_examples if num_examples is not None else _ds.num_examples(labels)
        print(f"Dataset health summary ({n:,} examples)\n\nOverall Class Quality and Noise across your dataset\n"
              f"{classes.to_string()}\n\nCommon multilabel issues\n{issues.to_string()}\n\n"
              f"Overall multilabel health score: {score}")
    return {"overall_multilabel_health_score": score, "classes_by_multilabel_quality": classes,
            "common_multilabel_issues": issues}
