"""Embedded example data.

``cifar10_test()``: out-of-sample predicted probabilities (10000 x 10,
float64) and given labels (uint16) of the CIFAR-10 test set, with the
crowd-sourced verdicts on the examples confident learning flagged. From the
public cleanlab/label-errors release, Apache License 2.0 (see LICENSE and
NOTICE beside this file).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class LabelledPredictions:
    labels: np.ndarray  # (N,) given labels
    pred_probs: np.ndarray  # (N, K) out-of-sample predicted probabilities
    class_names: tuple
    reviewed: np.ndarray  # indices that humans reviewed
    confirmed_errors: np.ndarray  # reviewed indices judged mislabelled (< 3 of 5 chose given or both)


def cifar10_test() -> LabelledPredictions:
    """The CIFAR-10 test set's predictions, given labels and human verdicts."""
    labels = np.load(_HERE / "cifar10_labels.npy", allow_pickle=False)
    pred_probs = np.load(_HERE / "cifar10_pred_probs.npy", allow_pickle=False)
    records = json.loads((_HERE / "cifar10_mturk.json").read_text())
    reviewed = np.array(sorted(r["id"] for r in records), dtype=np.int64)
    confirmed = np.array(
        sorted(r["id"] for r in records if r["mturk"]["given"] + r["mturk"]["both"] < 3), dtype=np.int64
    )
    return LabelledPredictions(labels, pred_probs, CIFAR10_CLASSES, reviewed, confirmed)
