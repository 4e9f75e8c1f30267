"""What the scores mean: projections of marker patches and features.

- :mod:`~flimexplore.analysis.projections` — t-SNE of marked patches and superpixel features.
- :mod:`~flimexplore.analysis.descriptors` — cheap image-only descriptors of candidate marker positions.
"""
