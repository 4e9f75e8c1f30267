"""The explorer's single source of truth: one :class:`ExplorerState` per explorer.

Views read the state and write user intent into it (a click sets
``selected``); :class:`~flimexplore.widgets.app.Explorer` observes it and
writes results back (``result``, ``detail``, ``user_score``...).  Nothing
here computes, and no view talks to another view directly.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from traitlets import Any as AnyTrait
from traitlets import Bool, Bytes, Enum, Float, HasTraits, Instance, Int, Unicode

from flimexplore.data.masks import normalise_object_label
from flimexplore.engine.settings import CLUSTERINGS, CONSENSUS, POOLS, FlimSettings
from flimexplore.engine.settings import FIELDS as FLIM_FIELDS
from flimexplore.errors import FlimExploreError
from flimexplore.study.config import StudyConfig
from flimexplore.study.readout_table import READOUTS, TRAINED

__all__ = [
    "CLICK_MODES", "ERROR_PLACES", "FLIM_SETTINGS", "NEXT_POLICIES", "SETTINGS", "USER_MODEL", "ExplorerState", "guarded",
]

CLICK_MODES = ("select", "object", "background", "draw object", "draw background")
"""What a click on the heatmap does: select a model, place your object / background marker, or (dragging)
draw a freehand object / background stroke."""
ERROR_PLACES = ("controls", "markers", "detail")
"""Where an error is shown: next to the study settings, your markers, or the detail view."""
FLIM_SETTINGS = FLIM_FIELDS
"""The FLIM encoder settings of the advanced panel (:class:`~flimexplore.engine.settings.FlimSettings`)."""
SETTINGS = (
    "dataset", "n_images", "image", "n_bg", "radius", "splits", "epochs", "seed", "dense", "dense_spacing", "object_label",
    "repeats", "decoders", *FLIM_SETTINGS,
)
"""The state traits that are study settings: changing one makes the shown result out of date."""
USER_MODEL = -2
"""``selected`` value that means "your own marker pair" (inspected like a sampled model)."""
NEXT_POLICIES = ("advised", "error")
"""How "advise next" picks your next marker (:mod:`flimexplore.loop.policies`)."""

F = TypeVar("F", bound=Callable[..., Any])


class ExplorerState(HasTraits):
    """Everything the explorer shows, as observable traits.

    Attributes
    ----------
    dataset, n_images, image, n_bg, radius, splits, epochs, seed, dense, dense_spacing
        Study settings (see :class:`~flimexplore.study.config.StudyConfig`); ``n_images`` 0 means all.
    device : str
        The compute device in use (``cpu`` or ``cuda``).
    preview : ndarray of shape (H, W, 3) or None
        The marked image of the current settings; ``thumbnail`` is it as PNG bytes.
    running : bool
        A study is running.
    done, total : int
        Progress of the running (or last) study, in models.
    status, error : str
        One line about what happens; the last error as a readable message ("" if none).
    warning : str
        Warnings about the data of the current settings (masks read by a guess: lossy, label-like or
        inverted), one per line, naming the files and the option to use ("" if none).
    error_at : {"controls", "markers", "detail"}
        Which control caused ``error`` (the message is shown next to it).
    progress_text : str
        "n / N models, ~t s left" while a study runs.
    result : StudyResult or None
        The last finished (or stopped) study; while a study runs, the models finished so far.
    stale : bool
        The settings differ from those of ``result``: the views show an older study.
    show_test : bool
        Show test (held-out) scores in the detail view.
    split : int
        The object marker shown on the heatmap.
    selected : int
        Model id of the selected marker, -1 for none, :data:`USER_MODEL` for your pair.
    val_image : int
        Which validation image the detail view shows.
    detail : ModelDetail or None
        What the detail view shows about the selected model.
    dense_map : ndarray of shape (H, W) or None
        Painted relevance map of the shown split (dense studies only).
    click_mode : {"select", "object", "background", "draw object", "draw background"}
        What a click (or, for the draw modes, a drag) on the heatmap does.
    stroke_radius : int
        Brush radius of freehand strokes, in image pixels (0: one-pixel lines).
    user_obj, user_bg : tuple of int or None
        Your own object and background marker centres ``(row, col)``.
    user_score : PairScore or None
        Scores of your marker pair and its rank among the sampled markers.
    seeds_path : str
        File used by Save / Load markers (LIDS ``-seeds.txt`` format).
    show_advice : bool
        Show the advice layer on the heatmap (advice map, ``advice_top`` best positions ringed).
    advice : Advice or None
        Advice for the shown object marker, or with ``advice_for="object"`` object positions for the
        selected background marker (:func:`flimexplore.analysis.advice.advise`; training images only),
        with its reliability; when it abstains no position is ringed.
    advice_for : {"background", "object"}
        Which marker the advice layer advises.
    descriptor : str
        Descriptor the analysis panel plots against validation Dice.
    descriptors : dict of str to ndarray or None
        Every descriptor of each finished model, aligned with :meth:`rows`.
    object_label : str
        Mask values that are object for folder datasets, e.g. ``"0,128"``
        (``--object-label``); empty: the default reading of masks.
    user_markers : ndarray of shape (N, 3) or None
        Your whole markers as seeds rows ``(row, col, label)`` when they are
        not one disk per class: a loaded seeds file's scribbles, or freehand
        strokes (drawn on the heatmap).
    repeats : int
        Fits of every model (``--repeats``): with more than one, each marker's Dice is a mean with a 95 %
        interval and the views show the uncertainty.
    decoders : tuple of str
        How the study reads its models out (``--decoders``): ``("trained",)``, or the trained layer and
        LIDS adaptive decoders (:data:`~flimexplore.study.readout_table.READOUTS`), which also scores
        attention.
    decoder : str
        The readout whose Dice the heatmap, the distribution and the detail view show (one of the shown
        result's decoders; ``"trained"`` by default).
    uncertainty : dict or None
        What the repeated fits of a finished study say (:meth:`StudyResult.repeat_summary`: per object
        marker the share of variance explained by position, the markers tied with the best, a verdict
        line); None without repeats.
    kernel_size, kernels_per_marker, channels, pool, pool_size, pool_stride, layers, consensus, stdev_factor, \
clustering, restarts, min_cluster_fraction, cluster_seed
        The FLIM encoder (:class:`~flimexplore.engine.settings.FlimSettings`;
        defaults: the paper's single layer).
    decision_layer : int
        Layer the decision layer reads (1-based); 0 means the last.
    arch_path : str
        LIDS ``arch.json`` the advanced panel loads FLIM settings from.
    next_policy : {"advised", "error"}
        How "advise next" picks your next marker: the probed best candidate, or the centre of the largest
        error region of your markers' model on the marked image.
    next_marker : Marker or None
        The suggested next marker (:class:`flimexplore.loop.drawn.Marker`: class, centre, how), shown on the
        heatmap until accepted or until your markers change.
    next_text : str
        What the suggestion is and why, and what it cost.
    loop_history : tuple of (int, float)
        ``(markers, validation Dice)`` after each scoring of your markers since they were last cleared, for
        the plot of Dice against markers drawn.
    """

    dataset = Unicode("fish")
    n_images = Int(0)
    image = Int(0)
    n_bg = Int(8)
    radius = Int(3)
    splits = Int(2)
    epochs = Int(20)
    seed = Int(0)
    dense = Bool(False)
    dense_spacing = Int(0)
    device = Unicode("")
    preview = AnyTrait(None, allow_none=True)
    thumbnail = Bytes(b"")
    running = Bool(False)
    done = Int(0)
    total = Int(0)
    status = Unicode("")
    error = Unicode("")
    warning = Unicode("")
    error_at = Enum(ERROR_PLACES, default_value="controls")
    progress_text = Unicode("")
    stale = Bool(False)
    show_test = Bool(False)
    result = Instance("flimexplore.study.run.StudyResult", allow_none=True)
    split = Int(0)
    selected = Int(-1)
    val_image = Int(0)
    detail = AnyTrait(None, allow_none=True)
    dense_map = AnyTrait(None, allow_none=True)
    click_mode = Enum(CLICK_MODES, default_value="select")
    stroke_radius = Int(1)
    user_obj = AnyTrait(None, allow_none=True)
    user_bg = AnyTrait(None, allow_none=True)
    user_score = AnyTrait(None, allow_none=True)
    seeds_path = Unicode("")
    show_advice = Bool(False)
    advice = AnyTrait(None, allow_none=True)
    advice_top = Int(5)
    advice_for = Enum(("background", "object"), default_value="background")
    descriptor = Unicode("nearest_mean_dice")
    descriptors = AnyTrait(None, allow_none=True)
    object_label = Unicode("")
    user_markers = AnyTrait(None, allow_none=True)
    repeats = Int(1)
    decoders = AnyTrait((TRAINED,))
    decoder = Enum(READOUTS, default_value=TRAINED)
    uncertainty = AnyTrait(None, allow_none=True)
    kernel_size = Int(FlimSettings.kernel_size)
    kernels_per_marker = Int(FlimSettings.kernels_per_marker)
    channels = Int(FlimSettings.channels)
    pool = Enum(POOLS, default_value=FlimSettings.pool)
    pool_size = Int(FlimSettings.pool_size)
    pool_stride = Int(FlimSettings.pool_stride)
    layers = Int(FlimSettings.layers)
    decision_layer = Int(0)
    consensus = Enum(CONSENSUS, default_value=FlimSettings.consensus)
    stdev_factor = Float(FlimSettings.stdev_factor)
    clustering = Enum(CLUSTERINGS, default_value=FlimSettings.clustering)
    restarts = Int(FlimSettings.restarts)
    min_cluster_fraction = Float(FlimSettings.min_cluster_fraction)
    cluster_seed = Int(FlimSettings.cluster_seed)
    arch_path = Unicode("")
    next_policy = Enum(NEXT_POLICIES, default_value="advised")
    next_marker = AnyTrait(None, allow_none=True)
    next_text = Unicode("")
    loop_history = AnyTrait(())

    def flim(self) -> FlimSettings:
        """The advanced panel's FLIM settings (``decision_layer`` 0 is the last layer)."""
        values = {name: getattr(self, name) for name in FLIM_SETTINGS}
        values["decision_layer"] = values["decision_layer"] or None
        return FlimSettings(**values)

    def set_flim(self, settings: FlimSettings) -> None:
        """Show ``settings`` in the advanced panel (all traits change together)."""
        with self.hold_trait_notifications():
            for name in FLIM_SETTINGS:
                value = getattr(settings, name)
                setattr(self, name, 0 if value is None else value)

    def config(self) -> StudyConfig:
        """The study settings as a :class:`~flimexplore.study.config.StudyConfig`."""
        return StudyConfig(
            dataset=self.dataset.strip(), n_images=self.n_images or None, image=self.image, splits=self.splits,
            n_bg=self.n_bg, radius=self.radius, epochs=self.epochs, seed=self.seed, dense=self.dense,
            dense_spacing=self.dense_spacing or None, object_label=normalise_object_label(self.object_label.strip() or None),
            repeats=self.repeats, decoders=tuple(self.decoders),
        ).with_flim(self.flim())

    def rows(self, split: int | None = None) -> list[dict[str, Any]]:
        """Rows of the current result under the shown readout ``decoder`` (optionally of one split); empty without a result."""
        if self.result is None:
            return []
        rows = self.result.rows if self.decoder == TRAINED or not self.result.readouts else [
            r for r in self.result.readouts if r["decoder"] == self.decoder]
        return [r for r in rows if split is None or r["split"] == split]

    def row(self, model: int) -> dict[str, Any] | None:
        """The results row of one model, or None."""
        return next((r for r in self.rows() if r["model"] == model), None)

    def fits(self, model: int) -> list[float]:
        """Validation Dice of each fit of one model (empty without repeated fits, or under an adaptive decoder)."""
        if self.result is None or self.result.config.repeats < 2 or self.decoder != TRAINED:
            return []
        return [f["val_dice"] for f in self.result.fits if f["model"] == model]

    def split_uncertainty(self, split: int) -> dict[str, Any] | None:
        """What the repeated fits say about one object marker's markers (verdict, ties), or None."""
        u = self.uncertainty
        if not u or self.decoder != TRAINED:  # the repeated fits are the trained layer's
            return None
        found = [x for x in u.get("splits", []) if x.get("split") == split and "verdict" in x]
        return found[0] if found else None

    def report(self, exc: BaseException, log: Callable[[str], None] | None = None, where: str = "controls") -> None:
        """Show an exception as a readable message next to ``where``; unexpected ones also go to ``log``."""
        self.error_at = where
        if isinstance(exc, FlimExploreError):
            self.error = str(exc)
        else:
            self.error = f"{type(exc).__name__}: {exc}"
            if log is not None:
                log("".join(traceback.format_exception(exc)))
        self.status = "error"


def guarded(
    state: ExplorerState, log: Callable[[str], None] | None = None, where: str = "controls"
) -> Callable[[F], F]:
    """Decorate a callback so that any exception lands in ``state.error`` instead of being lost.

    Widget callbacks run inside the kernel's message handlers, where an
    exception is invisible to the user; this turns it into a message in the
    explorer's panel next to ``where`` (and a traceback in ``log`` for unexpected errors).
    """

    def decorate(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - shown to the user, see docstring
                state.report(exc, log, where)
                return None

        return wrapper  # type: ignore[return-value]

    return decorate
