"""What the Trainer does around the loop: early stopping, the progress bar, the JSON-lines
run log and the learning-curve plot.

The seeds (lecture 8) read learning curves to diagnose a run: training loss that does not
fall (learning rate too low or a bug), training accuracy far above validation accuracy
(over-fitting: more regularisation or data), both close together (under-fitting: a bigger
model). Early stopping keeps the weights of the best validation epoch instead of the last.
"""
import json
import math
import os
import sys
import time

__all__ = ["EarlyStopping", "ProgressBar", "RunLog", "plot_curves"]


class EarlyStopping:
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    mode: "min" (losses), "max" (accuracies) or "auto" (max when the name contains "acc").

    >>> stop = EarlyStopping("val_loss", patience=2)
    >>> [stop.step(v) for v in (1.0, 0.9, 0.95, 0.91)]
    [False, False, False, True]
    >>> stop.best, stop.best_epoch
    (0.9, 2)
    """

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0, mode="auto"):
        if mode == "auto":
            mode = "max" if "acc" in monitor or "top" in monitor else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min', 'max' or 'auto', got {mode!r}")
        if int(patience) < 1:
            raise ValueError(f"EarlyStopping: patience must be at least 1, got {patience}")
        self.monitor, self.patience, self.min_delta, self.mode = monitor, int(patience), abs(float(min_delta)), mode
        self.best, self.best_epoch, self.wait, self.epochs_seen, self.stopped = None, 0, 0, 0, False

    def improved(self, value):
        if self.best is None or math.isnan(self.best):
            return not math.isnan(value)
        return value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta

    def step(self, value):
        """Record one epoch's value; True when training should stop."""
        value = float(value)
        self.epochs_seen += 1
        if self.improved(value):
            self.best, self.best_epoch, self.wait = value, self.epochs_seen, 0
        else:
            self.wait += 1
        self.stopped = self.wait >= self.patience
        return self.stopped

    def state_dict(self):
        return {k: getattr(self, k) for k in ("best", "best_epoch", "wait", "epochs_seen", "stopped")}

    def load_state_dict(self, state):
        for k, v in state.items():
            setattr(self, k, v)


def _fmt(logs):
    parts = []
    for k, v in logs.items():
        if k in ("epoch", "time", "event"):
            continue
        if isinstance(v, float):
            parts.append(f"{k} {v:.4g}" if "lr" in k else f"{k} {v:.4f}")
    return "  ".join(parts)


class ProgressBar:
    """A tqdm bar over each epoch's batches when tqdm is installed (``pip install tqdm``), else
    nothing per batch; one summary line per epoch either way. ``enabled=False`` is silent."""

    def __init__(self, enabled=True, file=None):
        self.enabled = enabled
        self.file = file
        self._bar = None
        import importlib.util

        self.has_tqdm = importlib.util.find_spec("tqdm") is not None

    def _out(self):
        return self.file if self.file is not None else sys.stdout

    def start_epoch(self, epoch, epochs, total):
        if self.enabled and self.has_tqdm:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=f"epoch {epoch}/{epochs}", unit="batch", leave=False,
                             file=self.file if self.file is not None else sys.stderr, dynamic_ncols=True)

    def update(self, n=1, **postfix):
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix({k: f"{v:.4f}" for k, v in postfix.items()}, refresh=False)

    def end_epoch(self, logs):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.enabled:
            print(f"epoch {logs['epoch']:>3}  {_fmt(logs)}  ({logs.get('time', 0.0):.1f} s)", file=self._out(),
                  flush=True)

    def write(self, message):
        if self.enabled:
            print(message, file=self._out(), flush=True)

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class RunLog:
    """A JSON-lines log: one JSON object per line (``{"event": "epoch", "epoch": 3, ...}``),
    appended and flushed as the run goes, readable while it runs (``tail -f``) and after a crash.
    """

    def __init__(self, path):
        self.path = os.fspath(path)

    def write(self, record):
        record = dict(record)
        record.setdefault("wall_time", round(time.time(), 3))
        with open(self.path, "a") as f:
            f.write(json.dumps(record, default=_json_default) + "\n")
            f.flush()

    def read(self):
        """All records, oldest first (a half-written last line from a crash is skipped)."""
        if not os.path.exists(self.path):
            return []
        records = []
        with open(self.path) as f:
            for line in f:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return records

    def truncate_after(self, epoch):
        """Drop epoch records after ``epoch`` (a resumed run redoes those epochs)."""
        kept = [r for r in self.read() if not (r.get("event") == "epoch" and r.get("epoch", 0) > epoch)]
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            for r in kept:
                f.write(json.dumps(r, default=_json_default) + "\n")
        os.replace(tmp, self.path)


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def plot_curves(history, path, title=None, val_label="validation"):
    """Save the learning curves of ``history`` (loss and accuracy per epoch, training and
    validation) as a PNG at ``path``. Needs matplotlib (``pip install "pydl[viz]"``);
    without it, returns a note saying so instead of the path.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return "learning curves not plotted: matplotlib is not installed (pip install \"pydl[viz]\")"
    epochs = history.get("epoch", [])
    metrics = [m for m in ("loss", "accuracy") if any(history.get(f"{s}_{m}") for s in ("train", "val"))]
    if not epochs or not metrics:
        return "learning curves not plotted: no epochs recorded"
    fig = Figure(figsize=(5 * len(metrics), 3.6), dpi=100)
    FigureCanvasAgg(fig)
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        for split, style in (("train", "-o"), ("val", "-s")):
            values = history.get(f"{split}_{metric}") or []
            pts = [(e, v) for e, v in zip(epochs, values) if v is not None and not math.isnan(v)]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, markersize=3,
                        label="training" if split == "train" else val_label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    return os.fspath(path)
