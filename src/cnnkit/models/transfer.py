"""Backbones from timm with a new head, for transfer learning and fine-tuning.

``TransferNet`` = a feature-extraction network (any timm model, its classifier removed, globally average-pooled)
followed by a head: dropout, an optional hidden dense layer, and a linear classifier. It keeps the ``Network``
contract: ``forward_features`` gives the backbone's feature map, ``pool`` its pooled vector (what the feature cache
stores), ``head`` the rest.

``feature_stages`` 2 or 3 adds the maps of the stages before the last (timm's ``feature_info`` levels at strides 16
and 8 for EfficientNet) to the feature map, each resampled by area to the last stage's grid, so that its global
average is exactly the concatenation of every stage's: textures that the last stage pools away stay visible to the
head, and the network is still one module (export, predict and serve need nothing else).

``concat_backbones`` (timm names) adds whole backbones beside the first (scikit-learn's ``FeatureUnion`` of
feature extractors): each sees the same input, its map is resampled by area onto the first's grid and concatenated,
so the pooled vector is every backbone's pooled features in order, the first's unchanged. The model name stays the
first backbone's, and with it the run's input size, crop and normalisation (the EfficientNet-Lite weights all take
[-1, 1]). The feature cache keeps each backbone's features under that backbone's own key (``member_networks``), so a
concatenation costs only the features it has not seen.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from cnnkit.errors import ModelError
from cnnkit.models.network import Network

HEAD_OPTIONS = {"dropout": 0.2, "hidden": 0, "flip_average": False, "feature_stages": 1, "concat_backbones": ()}
MAX_FEATURE_STAGES = 3  # the last stage and the two before it


def is_timm_model(name: str) -> bool:
    import timm

    return timm.is_model(name)


class TransferNet(Network):
    """``backbone`` (pooled features) -> ``head`` (dropout, [dense, ReLU, dropout], classifier).

    ``set_trainable_stages(n)`` freezes the backbone except its last ``n`` stages (0: all frozen; -1: none).
    Frozen layers, and the batch-norm statistics of the whole backbone while any of it is frozen (or always, with
    ``keep_batch_norm_frozen``, as fine-tuning sets it), stay in inference mode when the network trains: with small
    data, re-estimating them does more harm than good.
    """

    keep_batch_norm_frozen = False

    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float = 0.2, hidden: int = 0,
                 flip_average: bool = False, feature_stages: int = 1, extra_backbones: tuple[nn.Module, ...] = ()):
        super().__init__()
        self.backbone = backbone
        self.extra_backbones = nn.ModuleList(extra_backbones)  # no tensors in the state dict when empty
        self.extra_names: tuple[str, ...] = ()  # their timm names (``build_transfer_net`` sets them)
        self.flip_average = bool(flip_average)
        self.stage_widths = stage_widths(backbone)
        available = min(len(stage_widths(b)) for b in (backbone, *extra_backbones))
        if not 1 <= feature_stages <= available:
            raise ModelError(f"Expected feature_stages in 1..{available} for this backbone (the last "
                             f"stage and up to {available - 1} before it). Received: "
                             f"feature_stages={feature_stages}")
        self.feature_stages = int(feature_stages)
        self.num_features = sum(sum(stage_widths(b)[:feature_stages]) for b in (backbone, *extra_backbones))
        self.num_classes = num_classes
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        width = self.num_features
        if hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = hidden
        self.neck = nn.Sequential(*layers)
        self.head_hidden_size = width
        self.classifier = nn.Linear(width, num_classes)
        self.trainable_stages = -1

    has_backbone = True

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's feature map (N, num_features, H', W'), with the ``feature_stages`` before the last
        resampled onto it; with ``flip_average``, the mean of the image's map and its mirror image's map mirrored back
        (pooled, the mean of both pooled features: what the solved head chose when flips proved label-preserving)."""
        return self.stage_features(x, self.feature_stages)

    def stage_features(self, x: torch.Tensor, stages: int) -> torch.Tensor:
        """``forward_features`` with the last ``stages`` stages (the feature cache asks for all of them at once)."""
        features = self._union_map(x, stages)
        if self.flip_average:
            features = (features + self._union_map(x.flip(-1), stages).flip(-1)) / 2
        return features

    def _union_map(self, x: torch.Tensor, stages: int) -> torch.Tensor:
        first = stage_map(self.backbone, x, stages)
        if not len(self.extra_backbones):
            return first
        size = first.shape[-2:]
        return torch.cat([first, *(area_resample(stage_map(b, x, stages), size) for b in self.extra_backbones)], 1)

    def member_networks(self) -> list[TransferNet]:
        """One network per backbone (sharing its modules), each with this one's stages and flip averaging: the
        feature cache keeps each backbone's features under its own key. Just ``[self]`` for one backbone."""
        if not len(self.extra_backbones):
            return [self]
        return [TransferNet(b, 1, flip_average=self.flip_average, feature_stages=self.feature_stages).eval()
                for b in (self.backbone, *self.extra_backbones)]

    def backbone_state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors of every backbone (the first's under its own names, the others' under ``extra_backbones.``):
        what pretrained weights fill."""
        extra = {f"extra_backbones.{k}": v for k, v in self.extra_backbones.state_dict().items()}
        return {**self.backbone.state_dict(), **extra}

    def load_backbone_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        prefix = "extra_backbones."
        self.backbone.load_state_dict({k: v for k, v in state.items() if not k.startswith(prefix)})
        self.extra_backbones.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's own pooling (timm's ``forward_head(pre_logits=True)``): (N, num_features)."""
        return self.backbone.forward_head(x, pre_logits=True)

    def head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.neck(x)
        return x if pre_logits else self.classifier(x)

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier = nn.Linear(self.classifier.in_features, num_classes)

    def stages(self) -> list[list[nn.Parameter]]:
        """The backbone's parameters in stages, input to output (timm's coarse groups: stem, blocks, ...)."""
        from timm.models import group_parameters

        named = dict(self.backbone.named_parameters())
        groups = group_parameters(self.backbone, self.backbone.group_matcher(coarse=True))
        return [[named[n] for n in names] for _, names in sorted(groups.items())]

    def set_trainable_stages(self, n: int) -> None:
        stages = self.stages()
        n = len(stages) if n < 0 else min(n, len(stages))
        for i, params in enumerate(stages):
            for p in params:
                p.requires_grad_(i >= len(stages) - n)
        for p in self.extra_backbones.parameters():  # the other backbones train only when everything does
            p.requires_grad_(n == len(stages))
        for p in [*self.neck.parameters(), *self.classifier.parameters()]:
            p.requires_grad_(True)
        self.trainable_stages = -1 if n == len(stages) else n
        self.train(self.training)

    def train(self, mode: bool = True) -> TransferNet:
        super().train(mode)
        if mode and (self.trainable_stages != -1 or self.keep_batch_norm_frozen):
            if self.trainable_stages != -1:
                self.extra_backbones.eval()
            if self.frozen:
                self.backbone.eval()
            else:
                for module in [*self.backbone.modules(), *self.extra_backbones.modules()]:
                    if isinstance(module, _BatchNorm):
                        module.eval()
        return self


def stage_map(backbone: nn.Module, x: torch.Tensor, stages: int) -> torch.Tensor:
    """The backbone's last map with the maps of the ``stages`` - 1 stages before it resampled onto its grid."""
    if stages == 1:
        return backbone.forward_features(x)
    levels = len(backbone.feature_info)
    last, earlier = backbone.forward_intermediates(x, indices=list(range(levels - stages, levels - 1)))
    size = last.shape[-2:]
    return torch.cat([last, *(area_resample(m, size) for m in reversed(earlier))], 1)


def stage_widths(backbone: nn.Module) -> tuple[int, ...]:
    """The widths of the pooled features of the last stage and of up to two before it (last first): only the last
    where the backbone cannot give its intermediate maps (timm's ``forward_intermediates``)."""
    info = getattr(backbone, "feature_info", None)
    if not hasattr(backbone, "forward_intermediates") or not info or len(info) < 2:
        return (backbone.num_features,)
    earlier = [int(level["num_chs"]) for level in info[:-1]][::-1]
    return (backbone.num_features, *earlier[:MAX_FEATURE_STAGES - 1])


def area_resample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``x`` (N, C, H, W) resampled to ``size`` by area: each output cell the mean of the input over its area,
    fractions of pixels included, so the global mean is kept exactly (adaptive pooling's overlapping bins do not keep
    it where the sizes do not divide). Two matrix products, exported to ONNX as such."""
    rows, columns = (_area_weights(int(n), int(m), x) for n, m in zip(x.shape[-2:], size))
    return torch.einsum("nchw,hi,wj->ncij", x, rows, columns)


def _area_weights(n: int, m: int, like: torch.Tensor) -> torch.Tensor:
    """(n, m): the share of input cell i in output cell j, times m (input and output cover [0, 1])."""
    edges_in = torch.arange(n + 1, dtype=torch.float64) / n
    edges_out = torch.arange(m + 1, dtype=torch.float64) / m
    overlap = (torch.minimum(edges_in[1:, None], edges_out[None, 1:])
               - torch.maximum(edges_in[:-1, None], edges_out[None, :-1])).clamp(min=0)
    return (overlap * m).to(dtype=like.dtype, device=like.device)


def timm_backbone(name: str) -> nn.Module:
    """The timm model ``name`` without its classifier, globally average-pooled; random weights."""
    import timm

    try:
        return timm.create_model(name, pretrained=False, num_classes=0, global_pool="avg")
    except Exception as e:  # timm raises many kinds for models that cannot be built this way
        raise ModelError(f"timm could not build {name!r} as a feature extractor: {e}") from None


def backbone_names(concat_backbones) -> tuple[str, ...]:
    """``concat_backbones`` as a tuple of names: from a tuple or list (a record's JSON), or one name."""
    names = (concat_backbones,) if isinstance(concat_backbones, str) else tuple(concat_backbones or ())
    if not all(isinstance(n, str) and n for n in names):
        raise ModelError(f"Expected concat_backbones as timm model names, e.g. efficientnet_lite1,efficientnet_lite2. "
                         f"Received: concat_backbones={concat_backbones!r}")
    return names


def build_transfer_net(name: str, num_classes: int, in_channels: int = 3, dropout: float = 0.2,
                       hidden: int = 0, flip_average: bool = False, feature_stages: int = 1,
                       concat_backbones=()) -> TransferNet:
    if in_channels != 3:
        raise ModelError(f"Backbone {name!r} takes 3-channel images; grayscale images are repeated to 3 channels.")
    if not 0 <= dropout < 1 or hidden < 0:
        raise ModelError(f"Expected head dropout in [0, 1) and hidden >= 0. Received: dropout={dropout}, "
                         f"hidden={hidden}")
    if isinstance(feature_stages, bool) or int(feature_stages) != feature_stages:
        raise ModelError(f"Expected feature_stages as a whole number. Received: feature_stages={feature_stages!r}")
    names = backbone_names(concat_backbones)
    model = TransferNet(timm_backbone(name), num_classes, dropout=float(dropout), hidden=int(hidden),
                        flip_average=bool(flip_average), feature_stages=int(feature_stages),
                        extra_backbones=tuple(timm_backbone(other) for other in names))
    model.extra_names = names
    return model


def backbone_config(name: str) -> dict:
    """timm's pretrained config of ``name``: input size, interpolation, crop, mean and std."""
    import timm

    cfg = timm.models.get_pretrained_cfg(name) or {}
    cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    return {"input_size": tuple(cfg.get("input_size", (3, 224, 224))),
            "interpolation": cfg.get("interpolation", "bilinear"), "crop_pct": float(cfg.get("crop_pct", 0.875)),
            "mean": tuple(cfg.get("mean", (0.485, 0.456, 0.406))), "std": tuple(cfg.get("std", (0.229, 0.224, 0.225)))}
