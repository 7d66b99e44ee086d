"""The document's metrics against values computed by hand on small inputs (the working is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.models.research import classification_metrics as cm
from services.models.research import saliency_metrics as sm
from services.models.research.retrieval_metrics import recall_at_k


def test_auc_accuracy_f1() -> None:
    # Positive/negative pairs: 0.35 < 0.4 is the one of four ranked wrongly -> 3/4.
    assert cm.auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert cm.accuracy([1, 0, 1, 1], [1, 1, 1, 0]) == pytest.approx(0.5)
    # class 1: P = 2/2, R = 2/3 -> F1 0.8; class 0: P = 2/3, R = 2/2 -> 0.8; macro 0.8.
    assert cm.f1([0, 1, 1, 0, 1], [0, 1, 0, 0, 1]) == pytest.approx(0.8)
    mean, columns = cm.per_subtask(np.array([[0, 1], [1, 1], [0, 0]]), np.array([[0, 1], [1, 0], [0, 0]]), "accuracy")
    assert columns == pytest.approx([1.0, 2 / 3]) and mean == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="both classes"):
        cm.auc([1, 1], [0.2, 0.3])


def test_nss_cc_sim_kl() -> None:
    # NSS: values 0..3, mean 1.5, sample std sqrt(5/3); the fixated value 3 -> 1.5 / 1.29099.
    assert sm.nss(np.array([[0, 1], [2, 3]]), np.array([[0, 0], [0, 1]])) == pytest.approx(1.5 / math.sqrt(5 / 3))
    # CC: deviations (-1.5, -.5, .5, 1.5) and (-1.5, .5, -.5, 1.5): 4 / 5.
    assert sm.cc(np.array([[1, 2], [3, 4]]), np.array([[1, 3], [2, 4]])) == pytest.approx(0.8)
    # SIM: [0, .25, .25, .5] and [.5, 0, 0, .5] intersect in 0.5.
    assert sm.sim(np.array([[0, 1], [1, 2]]), np.array([[1, 0], [0, 1]])) == pytest.approx(0.5)
    # KL: uniform prediction, ground truth half on two pixels: 2 · 0.5 · ln(0.5 / 0.25) = ln 2.
    assert sm.kl(np.ones((2, 2)), np.array([[1, 0], [0, 1]])) == pytest.approx(math.log(2))
    assert sm.kl(np.array([[1, 0], [0, 1]]), np.array([[1, 0], [0, 1]])) == pytest.approx(0.0, abs=1e-9)


def test_auc_judd_and_shuffled_auc() -> None:
    saliency = np.array([[0.1, 0.4], [0.35, 0.8]])  # rescaled to [0, 3/7, 0.357, 1]
    fixations = np.array([[0, 0], [1, 1]])
    # Judd: thresholds 1 (1 pixel above: tp .5, fp 0) and .357 (3 above: tp 1, fp (3 - 2) / 2 = .5);
    # curve (0,0) (0,.5) (.5,1) (1,1): area .375 + .5.
    assert sm.auc_judd(saliency, fixations) == pytest.approx(0.875)
    # Shuffled: negatives are the values at the other image's fixations, 3/7 and 0; thresholds 1.0 .. 0.0 by
    # 0.1 give (fp, tp) (0, .5) down to 0.5, (.5, .5) at 0.4, (.5, 1) at 0.3 .. 0.1, (1, 1) at 0: area .25 + .5.
    other = np.array([[1, 1], [0, 0]])
    assert sm.auc_shuffled(saliency, fixations, other) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="no fixation"):
        sm.nss(saliency, np.zeros((2, 2)))


def test_recall_at_k() -> None:
    # Two images, three captions (0, 0, 1). Image 0's best own caption ranks 1st, image 1's ranks 3rd;
    # caption 0 finds its image first, captions 1 and 2 find theirs second.
    similarity = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.1]])
    got = recall_at_k(similarity, [0, 0, 1], ks=(1, 2, 3))
    assert got["i2t_r@1"] == pytest.approx(0.5) and got["i2t_r@3"] == pytest.approx(1.0)
    assert got["t2i_r@1"] == pytest.approx(1 / 3) and got["t2i_r@2"] == pytest.approx(1.0)
