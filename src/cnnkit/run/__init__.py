"""The run folder, the unit of work: its typed record (``config.json``), split, weights and outputs."""

from cnnkit.run.folder import CONFIG_FILE, METRICS_FILE, SPLIT_FILE, WEIGHTS_FILE, RunFolder
from cnnkit.run.record import Decision, ModelSpec, RunRecord, TrainedRun, TrainingResult

__all__ = ["CONFIG_FILE", "METRICS_FILE", "SPLIT_FILE", "WEIGHTS_FILE", "Decision", "ModelSpec", "RunFolder",
           "RunRecord", "TrainedRun", "TrainingResult"]
