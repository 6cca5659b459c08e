"""The pieces of :class:`~ganstyle.core.trainer.Trainer` that are not the training step itself.

* :mod:`.config` — :class:`TrainConfig`, every training option, declared once;
* :mod:`.checkpoint` — checkpoint folders: write atomically, prune, read, RNG states;
* :mod:`.run_log` — ``losses.csv`` (+ TensorBoard) rows averaged over steps and ranks;
* :mod:`.report` — ``run_info.json`` and the facts of the exported model's card;
* :mod:`.distributed` — process group, barrier, rank-sync check under ``torchrun``.
"""
