"""The FLIM block: marker-based normalisation, patches, clustering, kernels, encoding.

One FLIM model of the study learns its 16 kernels from the 3x3 patches under
two disk markers of the marked image (one object, one background):

1. *Marker-based normalisation* (field default): per input channel, the mean
   and population standard deviation of the pixels under both markers;
   ``std + 0.01`` is used, as in libift's ``stdev_factor``.
2. *Patches*: the 3x3x3 window around every marked pixel of the normalised
   image, zero outside the image (zero after normalisation, as libift).
3. *Clustering*: 8 kernels per marker by k-means (Euclidean, Lloyd) on that
   marker's patches; the kernels are the centroids (as FLIM 2022 and pyflim).
   k-means starts from a deterministic farthest-point initialisation (the
   patch nearest the marker's mean patch, then repeatedly the patch farthest
   from all chosen ones), so it needs no random seed and gives bit-identical
   kernels whether one model or many are clustered at once.
4. *Kernels* are scaled to unit L2 norm (no mean subtraction, no bias).
5. *Encoding*: convolution (stride 1, zero padding), ReLU, 3x3 average
   pooling with stride 2 (padding 1, zero padding counted, as libift).

The paper's block above is the default; :class:`~flimexplore.engine.settings.FlimSettings`
changes kernel size, kernels per marker, channels (with libift's consensus
step), pooling, clustering and the number of layers.  Layers 2 and 3 are
learned from the same markers the libift way: the marked image goes through
the previous layers with their pooling stride forced to 1, so the marker
pixels keep their coordinates, and that layer input gives the new layer's
marker statistics and patches; inference then uses the real strides
(``apply_intrinsic_atrous`` false, the common libift setting).

Everything here works on a batch of ``B`` models at once; a single model is
simply ``B = 1``.  Tensors are ``torch.float32``; images are ``(N, 3, H, W)``
normalised-Lab tensors (:func:`flimexplore.engine.colour.lab_norm`).

*Several marked images* (FLIM's usual training set): :func:`learn_banks`
takes a list of marked images with each image's marker pixels.  As in
libift, the marker-based normalisation is computed over every marked pixel
of every image, and each class's patches are taken from every image (then
clustered together, the object patches of all images into the object
kernels); images may differ in size.  One image given as a list of one
gives the single-image result bit for bit.

The module is the engine's public face of FLIM; the work lives in
:mod:`~flimexplore.engine.bank` (what a learned encoder is),
:mod:`~flimexplore.engine.learning` (learning it from markers) and
:mod:`~flimexplore.engine.encoding` (applying it to images).
"""

from flimexplore.engine.bank import KERNEL_SIZE, N_KERNELS, STDEV_FACTOR, FlimBank, FlimLayer
from flimexplore.engine.clustering import kmeans
from flimexplore.engine.encoding import apply_layer, encode, encode_layers, encode_reference, pool
from flimexplore.engine.learning import estimate_kernels, learn_banks, marker_statistics, sample_patches

__all__ = [
    "KERNEL_SIZE",
    "N_KERNELS",
    "STDEV_FACTOR",
    "FlimBank",
    "FlimLayer",
    "apply_layer",
    "encode",
    "encode_layers",
    "encode_reference",
    "estimate_kernels",
    "kmeans",
    "learn_banks",
    "marker_statistics",
    "pool",
    "sample_patches",
]
