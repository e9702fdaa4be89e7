"""What a model expects of its images, decided in one place (``models.data_config``) as timm keeps it with the
weights: cnnkit's own networks take the data's way, a timm backbone its pretrained config's."""

from __future__ import annotations

import pytest

from cnnkit.data.decode import INTERPOLATIONS
from cnnkit.errors import ConfigError, ModelError
from cnnkit.models import ModelDataConfig, create_model, data_config
from cnnkit.models.inputs import FALLBACK_IMAGE_SIZE, RESAMPLING
from cnnkit.models.pretrained import LITE0_NORMALIZATION
from cnnkit.models.transfer import backbone_config


def test_cnnkits_own_networks_take_the_datas_way():
    assert data_config("simple_cnn") == ModelDataConfig(None)
    assert data_config("simple_cnn").build_size == FALLBACK_IMAGE_SIZE
    assert data_config("lenet5", channels=1) == ModelDataConfig((32, 32), 1)
    assert data_config("simple_cnn", image_size=(48, 64)).build_size == (48, 64)


def test_a_backbone_takes_its_pretrained_config_and_its_weights_normalization():
    timm_cfg = backbone_config("efficientnet_lite0")
    data = data_config("efficientnet_lite0", pretrained=True)
    assert data.backbone and data.channels == 3 and data.image_size == timm_cfg["input_size"][1:]
    assert data.crop_pct == timm_cfg["crop_pct"] and data.interpolation == timm_cfg["interpolation"]
    assert data.normalization == LITE0_NORMALIZATION  # the packaged weights expect [-1, 1]
    assert data_config("efficientnet_lite0").normalization is None  # from scratch: the train split's statistics
    resnet = backbone_config("resnet18")
    assert data_config("resnet18", pretrained=True).normalization == (resnet["mean"], resnet["std"])


def test_wrong_settings_and_names_are_refused():
    with pytest.raises(ConfigError, match="Backbones take 3 channels"):
        data_config("efficientnet_lite0", channels=1)
    with pytest.raises(ModelError, match="Unknown model 'no_such_net'"):
        data_config("no_such_net")


def test_resampling_names_are_those_images_are_decoded_with():
    assert set(RESAMPLING) == set(INTERPOLATIONS)


def test_a_model_builds_at_its_data_configs_size():
    import torch

    with torch.device("meta"):
        model = create_model("simple_cnn", 2, 3, data_config("simple_cnn").build_size)
        assert model(torch.zeros(1, 3, *FALLBACK_IMAGE_SIZE)).shape == (1, 2)
