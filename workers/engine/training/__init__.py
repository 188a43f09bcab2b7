"""Differentially private training of tabular models (DP-SGD), accounting, artifacts. No Django here."""
