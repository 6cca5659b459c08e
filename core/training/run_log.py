"""The loss log of a run: ``losses.csv`` (+ TensorBoard events when installed).

Each row is the average of every step's losses since the previous row, over all processes.
Losses are kept as tensors between rows (no ``.item()`` per step: that would wait for the GPU
every step).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import torch

from ..io import atomic_write_bytes
from .distributed import all_reduce_sum

LOSS_KEYS = ("loss_g", "content", "style", "tv", "tone", "pixel", "warp", "adv_g", "loss_d", "d_real", "d_fake")


class LossLog:
    """Averages per-step losses (:meth:`add`, :meth:`average`) and writes rows (:meth:`write`)
    to ``losses.csv`` once :meth:`open` has been called (only the main process opens it)."""

    def __init__(self, device: torch.device, world_size: int = 1):
        self.device, self.world_size = device, world_size
        self._pending: list[dict[str, torch.Tensor]] = []
        self._csv_file = self._csv = self._tensorboard = None

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        self._pending.append(losses)

    def average(self) -> dict[str, float]:
        """The mean of each loss over the steps added since the last call, on all processes."""
        packed = torch.zeros(2, len(LOSS_KEYS), dtype=torch.float64, device=self.device)  # sums, counts
        for losses in self._pending:
            for i, k in enumerate(LOSS_KEYS):
                if k in losses:
                    packed[0, i] += losses[k]
                    packed[1, i] += 1
        self._pending = []
        sums, counts = all_reduce_sum(packed, self.world_size).tolist()
        return {k: float(s / c) for k, s, c in zip(LOSS_KEYS, sums, counts) if c > 0}

    def open(self, run_dir: Path, step: int) -> None:
        """Open ``run_dir/losses.csv`` for appending; rows after ``step`` (logged after the
        checkpoint a run resumes from) are dropped."""
        path = run_dir / "losses.csv"
        header = ["step", "images", "elapsed_s", *LOSS_KEYS]
        rows = []
        if path.exists():
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= step]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(path, text.getvalue().encode())
        self._csv_file = open(path, "a", newline="")
        self._csv = csv.DictWriter(self._csv_file, fieldnames=header, extrasaction="ignore")
        try:
            from torch.utils.tensorboard import SummaryWriter
            self._tensorboard = SummaryWriter(str(run_dir / "tensorboard"), purge_step=step or None)
        except (ImportError, ModuleNotFoundError):
            self._tensorboard = None  # TensorBoard is optional; the CSV always exists

    def write(self, row: dict[str, float], *, step: int, images: int, elapsed_s: float) -> None:
        if self._csv_file is None:
            return
        self._csv.writerow({"step": step, "images": images, "elapsed_s": f"{elapsed_s:.2f}",
                            **{k: f"{v:.6g}" for k, v in row.items()}})
        self._csv_file.flush()
        if self._tensorboard is not None:
            for k, v in row.items():
                self._tensorboard.add_scalar(f"loss/{k}", v, step)

    def close(self) -> None:
        if self._csv_file is not None:
            self._csv_file.close()
            self._csv_file = None
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None
