import csv

import torch

from ganstyle.core.training.run_log import LOSS_KEYS, LossLog


def test_rows_average_the_steps_since_the_last_row(tmp_path):
    log = LossLog(torch.device("cpu"))
    log.add({"content": torch.tensor(1.0), "style": torch.tensor(4.0)})
    log.add({"content": torch.tensor(3.0), "style": torch.tensor(2.0), "loss_d": torch.tensor(0.5)})
    assert log.average() == {"content": 2.0, "style": 3.0, "loss_d": 0.5}
    assert log.average() == {}  # nothing added since


def test_resuming_drops_rows_after_the_checkpoint(tmp_path):
    log = LossLog(torch.device("cpu"))
    log.open(tmp_path, step=0)
    for step in (1, 2, 3):
        log.write({"content": float(step)}, step=step, images=2 * step, elapsed_s=0.5 * step)
    log.close()
    log.open(tmp_path, step=2)
    log.write({"content": 9.0}, step=3, images=6, elapsed_s=1.0)
    log.close()
    with open(tmp_path / "losses.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "images", "elapsed_s", *LOSS_KEYS]
    assert [(r["step"], r["content"]) for r in rows] == [("1", "1"), ("2", "2"), ("3", "9")]
