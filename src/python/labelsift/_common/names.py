"""The vocabulary of the confident-learning API (cleanlab's names), defined once."""

FILTER_BY = (
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "low_normalized_margin",
    "low_self_confidence",
)
PRUNE_METHODS = ("prune_by_noise_rate", "prune_by_class", "both")
SCORE_METHODS = ("self_confidence", "normalized_margin", "confidence_weighted_entropy")
ESTIMATION_METHODS = ("off_diagonal", "off_diagonal_calibrated", "off_diagonal_custom")
