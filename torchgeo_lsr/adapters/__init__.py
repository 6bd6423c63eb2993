"""Weak-supervision adapters: turn negative, partial, ranked and coarse labels into priors.

Each setting reduces to a prior for the losses of :mod:`torchgeo_lsr.losses`, then a few
lines of :func:`fit_on_prior` (or :func:`fit_on_rankings`):

* :mod:`.partial`: negative labels and candidate sets (paper §4.1);
* :mod:`.rankings`: ordered pairs with a joint prior over label pairs (§4.2, eq. 5);
* :mod:`.coarse`: coarse labels with an optional teacher (§4.5);
* :mod:`.clustering`: criterion (7), the self-similarity prior (8)-(9), cluster naming (§E.1);
* :mod:`.single_image`: fit one image to a painted prior (Fig. 1);
* :mod:`.training`: the plain training loop.

.. versionadded:: 0.1
"""

from .clustering import (
    ClusterImageResult,
    ClusteringLoss,
    SelfSimilarityPrior,
    apply_assignment,
    assign_clusters,
    box_mean,
    cluster_image,
    clustering_criterion,
    self_similarity_prior,
)
from .coarse import coarse_label_prior, fine_to_coarse, fit_teacher, make_teacher
from .partial import negative_label_prior, negative_labels, partial_label_prior
from .rankings import (
    RankingLoss,
    pair_order_prior,
    ranking_denominators,
    ranking_effective_priors,
    ranking_loss,
    ranking_marginals,
    ranking_posterior,
    ranking_prior,
)
from .single_image import (
    SingleImageResult,
    fit_single_image,
    image_to_tensor,
    make_single_image_model,
    prior_from_painting,
)
from .training import (
    TrainingHistory,
    fit_on_prior,
    fit_on_rankings,
    make_loss,
    predict_probs,
)

__all__ = [
    "ClusterImageResult",
    "ClusteringLoss",
    "RankingLoss",
    "SelfSimilarityPrior",
    "SingleImageResult",
    "TrainingHistory",
    "apply_assignment",
    "assign_clusters",
    "box_mean",
    "cluster_image",
    "clustering_criterion",
    "coarse_label_prior",
    "fine_to_coarse",
    "fit_on_prior",
    "fit_on_rankings",
    "fit_single_image",
    "fit_teacher",
    "image_to_tensor",
    "make_loss",
    "make_single_image_model",
    "make_teacher",
    "negative_label_prior",
    "negative_labels",
    "pair_order_prior",
    "partial_label_prior",
    "predict_probs",
    "prior_from_painting",
    "ranking_denominators",
    "ranking_effective_priors",
    "ranking_loss",
    "ranking_marginals",
    "ranking_posterior",
    "ranking_prior",
    "self_similarity_prior",
]
