"""Training: :class:`Trainer` (AMP, clipping, schedulers, NaN guard, exact resume), its
:class:`TrainConfig`, relative-error metrics, the resumable sampler and safetensors checkpoints;
multi-operator pretraining and fine-tuning (:func:`fit_multi`, :func:`pretrain`, :func:`finetune`,
:class:`FamilyBatchSampler`).

The quickstart's bare loop lives in :mod:`neuralops.train.demo_cli`.
"""

from neuralops.data.timewindow import AllToAll as All2AllPairs
from neuralops.train._build import NonFiniteLossError
from neuralops.train.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    read_trainer_state,
    save_checkpoint,
)
from neuralops.train.config import TrainConfig
from neuralops.train.family_sampler import FamilyBatchSampler, FamilyDataset
from neuralops.train.logger import MetricsLogger
from neuralops.train.metrics import MeanMetric, rel_h1, rel_l1_median, rel_l2
from neuralops.train.multiop import LRGroups, evaluate_families, finetune, fit_multi, pretrain
from neuralops.train.sampler import ResumableSampler
from neuralops.train.trainer import Trainer

__all__ = [
    "All2AllPairs",
    "CheckpointError",
    "FamilyBatchSampler",
    "FamilyDataset",
    "LRGroups",
    "MeanMetric",
    "MetricsLogger",
    "NonFiniteLossError",
    "ResumableSampler",
    "TrainConfig",
    "Trainer",
    "evaluate_families",
    "finetune",
    "fit_multi",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "pretrain",
    "read_trainer_state",
    "rel_h1",
    "rel_l1_median",
    "rel_l2",
    "save_checkpoint",
]
