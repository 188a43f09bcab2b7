"""Post-market monitoring engine (EU AI Act Art. 72): drift, data quality, performance, fairness and privacy monitors
of a deployed model, one window at a time. No Django: plain inputs, JSON-serialisable results.

- ``reference.build_reference``: the training-time reference (aggregates only), stored with the model version.
- ``sketch.WindowSketch``: a window's mergeable counts, folded in batch by batch, stored as JSON.
- ``drift``: exact drift statistics (equal to scipy) and their counterparts from a sketch, with documented bounds.
- ``quality``: schema and data-quality expectations derived from the reference.
- ``performance``: performance with Wilson intervals, and fairness per group with the evaluation engine's metrics.
- ``monitors``: the monitoring plan (``default_plan``, ``validate_plan``) and ``evaluate_window``.
"""
