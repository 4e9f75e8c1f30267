"""What the scores mean: projections of marker patches and features.

- :mod:`~flimexplore.analysis.projections` — t-SNE of marked patches and superpixel features.
- :mod:`~flimexplore.analysis.descriptors` — cheap image-only descriptors of candidate marker positions.
- :mod:`~flimexplore.analysis.model_descriptors` — descriptors of a trained pair's model on its marked image.
- :mod:`~flimexplore.analysis.correlate` — Spearman's rho with a seeded bootstrap interval, verdicts.
- :mod:`~flimexplore.analysis.analyse` — ``flimexplore analyse``: descriptors vs Dice on a finished study.
"""
