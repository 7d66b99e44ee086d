"""The classification metrics the source document reports (3.1.3 "Evaluation Protocol"): AUC and accuracy
for the Facebook Hateful Memes dataset, accuracy and F1 for Memotion7k tasks a–c and MultiOFF. scikit-learn
computes them; for Memotion7k's multi-output tasks (b: four binary labels, c: four intensity scales) each
subtask is scored alone and the scores are averaged, as the SemEval-2020 task did. F1 is macro-averaged
over classes, as MemeFier's published evaluation does."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score


def auc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve of binary labels against positive-class scores."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        raise ValueError("AUC needs both classes among the labels")
    return float(roc_auc_score(labels, np.asarray(scores, np.float64)))


def accuracy(labels: Sequence[int] | np.ndarray, predictions: Sequence[int] | np.ndarray) -> float:
    return float(accuracy_score(np.asarray(labels), np.asarray(predictions)))


def f1(labels: Sequence[int] | np.ndarray, predictions: Sequence[int] | np.ndarray, average: str = "macro") -> float:
    return float(f1_score(np.asarray(labels), np.asarray(predictions), average=average, zero_division=0))


def per_subtask(
    labels: np.ndarray, predictions: np.ndarray, metric: str = "f1"
) -> tuple[float, list[float]]:
    """Scores each column (subtask) of [N, K] labels/predictions alone; returns (mean, per-column)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.ndim != 2 or labels.shape != predictions.shape:
        raise ValueError(f"expected two [N, K] arrays, got {labels.shape} and {predictions.shape}")
    score = f1 if metric == "f1" else accuracy
    columns = [score(labels[:, k], predictions[:, k]) for k in range(labels.shape[1])]
    return float(np.mean(columns)), columns
