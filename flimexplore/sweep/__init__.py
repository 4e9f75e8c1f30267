"""The paper's protocol as one resumable run: every (dataset, marked image) study.

:func:`run_sweep` runs the studies in this process or on an executor
(``concurrent.futures`` or a Dask cluster, see
:func:`~flimexplore.sweep.executors.dask_client`) and writes one study folder
per task plus ``sweep.csv`` and ``sweep.json``.
"""

from flimexplore.sweep.executors import DaskMissingError, dask_client
from flimexplore.sweep.plan import SweepTask, parse_images, plan_sweep
from flimexplore.sweep.report import StudyView, read_sweep, study_views
from flimexplore.sweep.run import SweepProgress, SweepResult, run_sweep, run_sweep_all

__all__ = [
    "DaskMissingError",
    "SweepProgress",
    "SweepResult",
    "StudyView",
    "SweepTask",
    "dask_client",
    "parse_images",
    "plan_sweep",
    "read_sweep",
    "run_sweep",
    "run_sweep_all",
    "study_views",
]
