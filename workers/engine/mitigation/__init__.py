"""Bias mitigation: group-specific thresholds (post-processing, as fairlearn's ThresholdOptimizer) and the
exponentiated-gradient reduction (Agarwal et al. 2018, as fairlearn's ExponentiatedGradient). No Django here."""
