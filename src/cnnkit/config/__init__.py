"""Settings, declared once: the dataclasses every command and the Python API take (no heavy imports here)."""

from cnnkit.config.commands import (AnomalyConfig, AuditConfig, DecisionConfig, EvaluateConfig, ExportConfig,
                                    InspectConfig, PatchConfig, PredictConfig, PreviewConfig, ScanConfig, SearchConfig,
                                    ServeConfig, TsneConfig)
from cnnkit.config.label import LabelConfig
from cnnkit.config.points import PointsConfig
from cnnkit.config.suggest import SuggestConfig
from cnnkit.config.parse import parse_head, parse_options, parse_size
from cnnkit.config.training import BaselineConfig, DataConfig, TrainConfig
from cnnkit.config.tuning import LrFindConfig

__all__ = ["AnomalyConfig", "AuditConfig", "BaselineConfig", "DataConfig", "DecisionConfig", "EvaluateConfig",
           "ExportConfig", "InspectConfig", "LabelConfig", "LrFindConfig", "PatchConfig", "PointsConfig", "PredictConfig", "PreviewConfig",
           "ScanConfig", "SearchConfig", "ServeConfig", "SuggestConfig", "TrainConfig", "TsneConfig", "parse_head",
           "parse_options", "parse_size"]
