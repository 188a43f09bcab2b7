"""Explanations of trained tabular models: exact linear Shapley values and Integrated Gradients on the logit,
global aggregates with permutation importance, reason codes for one person, and the counterfactual probe of a
sensitive attribute. No Django here; every function takes a model, its PreprocessSpec and a frame."""
