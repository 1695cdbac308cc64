"""pydl.train: the training loop and what goes with it (lectures 7-8).

==========================  ===========================================================
``Trainer``                 fit / evaluate / predict; validation, metrics, schedules per
                            batch or epoch, gradient clipping, checkpoints with exact
                            resume, JSON-lines log, learning curves, progress bar
``EarlyStopping``           stop when the monitored metric stops improving
``accuracy``, ``topk_...``  metrics
``Ensemble``                average the predictions of several models / checkpoints
``grid_search``, ...        hyper-parameter search: grid, random (log-uniform), coarse to fine
``check_initial_loss``      the seeds' recipe: initial loss ~ log(C), overfit a small
``overfit_small_sample``    sample, learning-rate range test
``lr_range_test``
``runs``                    runs by name (model, data, optimizer, schedule, augmentation):
                            what ``pydl train`` / ``eval`` / ``demo`` call
==========================  ===========================================================
"""
from .callbacks import EarlyStopping, ProgressBar, RunLog, plot_curves
from .ensemble import Ensemble, load_ensemble
from .metrics import MeanMetric, accuracy, correct_topk, topk_accuracy
from .recipe import check_initial_loss, lr_range_test, overfit_small_sample
from .search import Choice, IntUniform, LogUniform, SearchResult, Uniform, coarse_to_fine, grid_search, random_search
from .trainer import Trainer, get_rng_state, set_rng_state
from . import runs

__all__ = ["Choice", "EarlyStopping", "Ensemble", "IntUniform", "LogUniform", "MeanMetric", "ProgressBar", "RunLog",
           "SearchResult", "Trainer", "Uniform", "accuracy", "check_initial_loss", "coarse_to_fine", "correct_topk",
           "get_rng_state", "grid_search", "load_ensemble", "lr_range_test", "overfit_small_sample", "plot_curves",
           "random_search", "runs", "set_rng_state", "topk_accuracy"]
