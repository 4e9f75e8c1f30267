"""What predicts a marker pair's Dice? ``flimexplore analyse`` on a finished study.

For every model of a study folder (``results.csv``, ``config.json``,
``models/*.npz``, see :mod:`flimexplore.study.store`) this recomputes

- the image-only descriptors of its marker pair
  (:func:`flimexplore.analysis.descriptors.position_descriptors`: marked
  image and its mask only),
- the model-based descriptors (:mod:`flimexplore.analysis.model_descriptors`:
  the stored model on the marked image), and
- the paper's RQ2 measure of Fig. 4c, the separation of the model's
  features at superpixel centres of the VALIDATION images — this reads
  validation masks, which is fine for analysis and never done by advice,

then Spearman's rho of each with the validation Dice over all models and
per split (per object marker; per background marker with ``--vary
object``), with seeded bootstrap 95 % intervals, and a plain-words verdict
on the paper's claims: Fig. 4c (feature separation correlates with Dice),
Fig. 4b (marked-patch separation does not), and, for ``--vary object``
studies, "object markers on the object border help".

Descriptors are related to the trained layer's Dice.  A study run with
other readouts (``study --decoders``, ``--attention``) also gets a
``readouts`` section (:mod:`flimexplore.analysis.readouts`): each
readout's attention scores against Dice, and the agreement of the
readouts' per-marker Dice, with the same seeded bootstrap intervals.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from flimexplore.analysis.correlate import N_BOOT, Correlation, bootstrap_spearman, verdict
from flimexplore.analysis.descriptors import DESCRIPTORS, position_descriptors
from flimexplore.analysis.model_descriptors import MODEL_DESCRIPTORS, model_descriptors, validation_separation
from flimexplore.analysis.readouts import readout_report
from flimexplore.errors import OutputError
from flimexplore.study.config import StudyConfig
from flimexplore.study.context import StudyContext
from flimexplore.study.readout_table import TRAINED
from flimexplore.study.run import Progress
from flimexplore.study.store import atomic_write_bytes, read_results

__all__ = ["DESCRIPTOR_DOCS", "VALIDATION_MEASURES", "analyse", "iter_analyse", "load_study"]

VALIDATION_MEASURES = ("val_superpixel_silhouette", "val_superpixel_fisher")

DESCRIPTOR_DOCS = {
    "bg_std": "colour std under the background disk (texture)",
    "bg_gradient": "gradient energy under the background disk (edges)",
    "bg_entropy": "lightness entropy under the background disk",
    "bg_context": "gradient energy within 3r of the background centre (texture nearby)",
    "obj_std": "colour std under the object disk",
    "obj_gradient": "gradient energy under the object disk",
    "obj_entropy": "lightness entropy under the object disk",
    "colour_distance": "Lab distance between the object and background disks' mean colours",
    "texture_distance": "distance between the disks' per-channel colour std",
    "bg_border_distance": "signed distance of the background centre to the object border (+ outside)",
    "obj_border_distance": "signed distance of the object centre to the object border (- inside)",
    "obj_bg_distance": "distance between the two centres",
    "patch_fisher": "Fisher ratio of the normalised 3x3 marked patches (paper Fig. 4b)",
    "nearest_mean_dice": "Dice on the marked image of a nearest-mean classifier of the two disks",
    "feature_fisher_marked": "Fisher ratio of the model's FLIM features, object vs background pixels of the marked image",
    "feature_silhouette_marked": "silhouette of the model's FLIM features on the marked image",
    "fit_dice_marked": "Dice of the model's decision layer on its own marked image (best epoch)",
    "obj_distance_to_border": "distance of the object centre to the object border (--vary object studies)",
    "val_superpixel_silhouette": "silhouette of the model's features at validation superpixel centres (Fig. 4c; reads validation masks)",
    "val_superpixel_fisher": "Fisher ratio of the model's features at validation superpixel centres (Fig. 4c; reads validation masks)",
}


def load_study(folder: str | os.PathLike[str]) -> tuple[StudyConfig, dict[str, Any], list[dict[str, Any]], dict[int, dict[str, NDArray]]]:
    """Read a study folder without changing it.

    Returns
    -------
    config, identity, rows, arrays
        Settings, the data's identity, ``results.csv`` rows and each model's parameters by id.

    Raises
    ------
    OutputError
        If the folder is not a finished flimexplore study (the message says what is missing).
    """
    folder = Path(folder)
    cfg_path, csv_path = folder / "config.json", folder / "results.csv"
    if not cfg_path.is_file() or not csv_path.is_file():
        raise OutputError(f"{folder} is not a study folder: it needs config.json and results.csv (run flimexplore study --out {folder})")
    try:
        record = json.loads(cfg_path.read_text())
        config = StudyConfig.from_dict(_tuples(record["config"]))
        identity = dict(record["identity"])
        rows = read_results(csv_path)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise OutputError(f"cannot read the study in {folder}: {err}") from err
    arrays: dict[int, dict[str, NDArray]] = {}
    for f in sorted((folder / "models").glob("*.npz")):
        try:
            with np.load(f) as z:
                for j, m in enumerate(z["model"]):
                    arrays[int(m)] = {k: z[k][j] for k in z.files if k != "model"}
        except (OSError, ValueError, KeyError) as err:
            raise OutputError(f"cannot read model file {f}: {err}") from err
    missing = [r["model"] for r in rows if r["model"] not in arrays]
    if not rows or missing:
        raise OutputError(
            f"{folder} holds {len(rows)} results but no stored parameters for models {missing[:5]}; "
            "finish the study (rerun the same flimexplore study command) before analysing it"
        )
    return config, identity, rows, arrays


def _tuples(config: dict[str, Any]) -> dict[str, Any]:
    """JSON turns tuples into lists; the settings are tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}


def _image_descriptors(ctx: StudyContext, rows: list[dict[str, Any]]) -> dict[str, NDArray[np.float64]]:
    """Image-only descriptors of every row's pair, computed one object marker at a time."""
    out = {k: np.full(len(rows), np.nan) for k in DESCRIPTORS}
    groups: dict[tuple[int, int], list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault((r["obj_row"], r["obj_col"]), []).append(i)
    for obj, idx in groups.items():
        bg = np.array([[rows[i]["bg_row"], rows[i]["bg_col"]] for i in idx])
        d = position_descriptors(ctx.image, ctx.mask, np.array(obj), bg, ctx.config.radius)
        for k in DESCRIPTORS:
            out[k][idx] = d[k]
    return out


def iter_analyse(
    study_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    device: str = "auto",
    n_boot: int = N_BOOT,
    seed: int = 0,
    max_val_images: int | None = None,
) -> Generator[Progress, None, dict[str, Any]]:
    """Analyse a finished study, yielding progress; returns the report (what ``analysis.json`` holds).

    Parameters
    ----------
    study_dir : path-like
        A finished study folder.
    out : path-like, optional
        Writes ``analysis.json``, ``descriptors.csv`` (every model's
        descriptors and Dice) and ``analysis.png`` there.
    device : str, optional
    n_boot : int, optional
        Bootstrap resamples per interval.
    seed : int, optional
        Seeds the bootstrap and the silhouette's pixel samples.
    max_val_images : int, optional
        Use only the first validation images for the Fig. 4c measure (speed).

    Raises
    ------
    OutputError
        If ``study_dir`` is not a finished study, its data changed since, or ``out`` cannot be written.
    """
    t0 = time.perf_counter()
    config, identity, rows, arrays = load_study(study_dir)
    joined = rows if rows and "decoder" in rows[0] else []  # one row per model and readout
    # the trained layer's rows; the user's own markers (split -1) are not a disk pair
    rows = [r for r in rows if r["split"] >= 0 and r.get("decoder", TRAINED) == TRAINED]
    ctx = StudyContext(config, device)
    if identity.get("data_sha256") not in (None, ctx.fingerprint):
        raise OutputError(f"the data of the study in {study_dir} changed since it ran (data_sha256 differs); rerun the study")
    total = len(rows)
    yield Progress(0, total, f"analysing {total} models of {study_dir}")
    values = _image_descriptors(ctx, rows)
    for k in MODEL_DESCRIPTORS + VALIDATION_MEASURES:
        values[k] = np.full(total, np.nan)
    for i, r in enumerate(rows):
        a = arrays[r["model"]]
        d = model_descriptors(ctx, a, seed=seed) | validation_separation(ctx, a, max_val_images, seed=seed)
        for k, v in d.items():
            values[k][i] = v
        if (i + 1) % 10 == 0 or i + 1 == total:
            yield Progress(i + 1, total, f"descriptors of {i + 1} models")
    dice = np.array([r["val_dice"] for r in rows])
    if config.vary == "object":
        values["obj_distance_to_border"] = np.abs(values["obj_border_distance"])
    report = _report(config, rows, values, dice, n_boot, seed)
    if joined:
        report["readouts"] = readout_report([r for r in joined if r["split"] >= 0], n_boot, seed)
    report |= {"study": str(study_dir), "seconds": round(time.perf_counter() - t0, 2), "device": str(ctx.device)}
    if out is not None:
        _write(Path(out), report, rows, values, dice)
    return report


def _report(config: StudyConfig, rows: list[dict[str, Any]], values: dict[str, NDArray], dice: NDArray, n_boot: int, seed: int) -> dict[str, Any]:
    splits = sorted({r["split"] for r in rows})
    split_of = np.array([r["split"] for r in rows])
    fixed = "bg" if config.vary == "object" else "obj"
    entries: dict[str, Any] = {}
    for name, x in values.items():
        c = bootstrap_spearman(x, dice, n_boot=n_boot, seed=seed)
        per = []
        for s in splits:
            sel = split_of == s
            first = rows[int(np.argmax(sel))]
            cs = bootstrap_spearman(x[sel], dice[sel], n_boot=n_boot, seed=seed)
            per.append({"split": int(s), f"{fixed}_row": first[f"{fixed}_row"], f"{fixed}_col": first[f"{fixed}_col"]} | cs.to_dict())
        entries[name] = {
            "doc": DESCRIPTOR_DOCS.get(name, ""),
            "reads": "validation images and masks" if name in VALIDATION_MEASURES else
                     "the stored model, marked image and its mask" if name in MODEL_DESCRIPTORS else "marked image and its mask",
            "all": c.to_dict(),
            "per_split": per,
        }
    correlated = sorted(
        (n for n, e in entries.items() if e["all"]["lo"] is not None and (e["all"]["lo"] > 0 or e["all"]["hi"] < 0)),
        key=lambda n: -abs(entries[n]["all"]["rho"]),
    )
    claims = {
        "rq2_fig4c_feature_separation": {
            "paper": "the separation of FLIM features at superpixel centres of the validation set correlates with Dice",
            "measured_by": "val_superpixel_silhouette (also val_superpixel_fisher)",
            "note": "this measure reads validation masks; it is analysis, not advice",
            **verdict(_corr(entries, "val_superpixel_silhouette"), "positive", "silhouette of validation superpixel features vs Dice"),
            "fisher": verdict(_corr(entries, "val_superpixel_fisher"), "positive", "Fisher ratio of validation superpixel features vs Dice")["says"],
        },
        "rq2_fig4b_patch_separation": {
            "paper": "the separation of the marked patches does not predict Dice",
            "measured_by": "patch_fisher",
            **verdict(_corr(entries, "patch_fisher"), "none", "Fisher ratio of the marked patches vs Dice"),
        },
    }
    if config.vary == "object":
        claims["object_markers_on_the_border_help"] = {
            "paper": "object markers on the object border give higher Dice",
            "measured_by": "obj_distance_to_border (claim: negative rho)",
            **verdict(_corr(entries, "obj_distance_to_border"), "negative", "distance of the object marker to the object border vs Dice"),
        }
    else:
        claims["object_markers_on_the_border_help"] = {
            "paper": "object markers on the object border give higher Dice",
            "verdict": "not measured",
            "says": "this study varies the background marker; run flimexplore study --vary object and analyse that study.",
        }
    return {
        "n_models": len(rows),
        "vary": config.vary,
        "config": config.to_dict(),
        "n_boot": n_boot,
        "seed": seed,
        "descriptors": entries,
        "correlated_with_dice": correlated,
        "claims": claims,
    }


def _corr(entries: dict[str, Any], name: str) -> Correlation:
    a = entries[name]["all"]
    nan = float("nan")
    return Correlation(
        a["rho"] if a["rho"] is not None else nan, a["lo"] if a["lo"] is not None else nan,
        a["hi"] if a["hi"] is not None else nan, a["n"], a["level"],
    )


def _write(out: Path, report: dict[str, Any], rows: list[dict[str, Any]], values: dict[str, NDArray], dice: NDArray) -> None:
    from flimexplore.figures.analysis_png import analysis_png

    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / "analysis.json", json.dumps(report, indent=2, sort_keys=False).encode())
        text = io.StringIO()
        w = csv.writer(text, lineterminator="\n")
        names = list(values)
        w.writerow(["model", "split", "obj_row", "obj_col", "bg_row", "bg_col", "val_dice", *names])
        for i, r in enumerate(rows):
            w.writerow([r["model"], r["split"], r["obj_row"], r["obj_col"], r["bg_row"], r["bg_col"], f"{dice[i]:.6f}",
                        *(f"{values[n][i]:.6g}" for n in names)])
        atomic_write_bytes(out / "descriptors.csv", text.getvalue().encode())
        names_sorted = sorted(names, key=lambda n: _abs_rho(report, n))
        all_ = [report["descriptors"][n]["all"] for n in names_sorted]
        panels = [
            ("val_superpixel_silhouette", "Fig. 4c: validation feature separation"),
            ("patch_fisher", "Fig. 4b: marked-patch separation"),
            ("obj_distance_to_border", "object marker's distance to the border") if "obj_distance_to_border" in values
            else ((report["correlated_with_dice"] or ["fit_dice_marked"])[0], "strongest descriptor"),
        ]
        scatter = []
        for name, title in panels:
            c = report["descriptors"][name]["all"]
            rho = "n/a" if c["rho"] is None else f"{c['rho']:+.2f} [{c['lo']:+.2f}, {c['hi']:+.2f}]"
            scatter.append({"x": values[name], "y": dice, "group": np.array([r["split"] for r in rows]),
                            "xlabel": name, "title": f"{title}\nrho = {rho}"})
        png = analysis_png(
            names_sorted,
            np.array([np.nan if a["rho"] is None else a["rho"] for a in all_]),
            np.array([np.nan if a["lo"] is None else a["lo"] for a in all_]),
            np.array([np.nan if a["hi"] is None else a["hi"] for a in all_]),
            scatter,
            title=f"What predicts validation Dice? {report['n_models']} models, vary {report['vary']}",
        )
        atomic_write_bytes(out / "analysis.png", png)
    except OSError as err:
        raise OutputError(f"cannot write the analysis into {out}: {err.strerror or err}") from err


def _abs_rho(report: dict[str, Any], name: str) -> float:
    rho = report["descriptors"][name]["all"]["rho"]
    return -1.0 if rho is None else abs(rho)


def analyse(study_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, **kwargs: Any) -> dict[str, Any]:
    """Analyse a finished study to the end (see :func:`iter_analyse`); returns the report."""
    gen = iter_analyse(study_dir, out, **kwargs)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
