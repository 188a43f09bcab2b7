"""Robustness of a trained model: accuracy and fairness under noise, category flips, missing values and adversarial
examples, and the policy's robustness gates. No Django here; ``gates`` imports no torch, so the web side may validate
and read a policy's robustness gates with it."""
