"""Data-subject rights on stored tables, without Django: the pseudonym index, row selection and rewrites."""
