"""The FLIM engine: tensors in, tensors out (torch); no files, no user interface.

- :mod:`~flimexplore.engine.colour` — the reference code's normalised Lab colour space.
- :mod:`~flimexplore.engine.flim` — FLIM filter learning from marker patches and encoding.
- :mod:`~flimexplore.engine.decision` — the decision layer (batch norm + 1x1 convolution) and its training.
- :mod:`~flimexplore.engine.batched` — many models trained and scored together, under a memory bound.
- :mod:`~flimexplore.engine.reference` — the plain ``nn.Module`` path, one model at a time.
- :mod:`~flimexplore.engine.scores` — Dice, Jaccard, sensitivity, specificity (NumPy).
- :mod:`~flimexplore.engine.otsu` — Otsu thresholds of many rows and the LIDS binarisation of saliency maps.
- :mod:`~flimexplore.engine.streaming` — features of image sets streamed through many models in bounded chunks.
- :mod:`~flimexplore.engine.decoders` — the training-free adaptive decoders of the LIDS code and their counts.
- :mod:`~flimexplore.engine.attention` — evidence maps of heads and decoders scored against the object.
- :mod:`~flimexplore.engine.readouts` — every readout's counts and attention scores from one encoding pass.
"""
