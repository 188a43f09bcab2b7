"""Anonymisation engine: generalisation hierarchies, the optimal lattice search for k-anonymity, l-diversity and
t-closeness with a suppression limit, re-identification risk, and an independent check. No Django."""
