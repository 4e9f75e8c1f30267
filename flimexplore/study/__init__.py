"""One marked image of a dataset: settings, prepared data, the study runner, its results folder.

- :mod:`~flimexplore.study.config` — :class:`StudyConfig`, the frozen settings.
- :mod:`~flimexplore.study.context` — the split, the marked image and tensors, prepared once.
- :mod:`~flimexplore.study.run` — :func:`run_study`, a generator of progress events.
- :mod:`~flimexplore.study.store` — the resumable, atomic results folder.
- :mod:`~flimexplore.study.readouts` — the other readouts of a study's models: adaptive decoders, attention.

The package's public names are re-exported lazily by :mod:`flimexplore`.
"""
