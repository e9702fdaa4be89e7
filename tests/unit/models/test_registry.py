import pytest
import torch

from cnnkit.errors import ConfigError, ModelError
from cnnkit.models import Network, create_model, is_autoencoder, list_models, model_options

SMALL = [name for name in list_models() if name != "vgg16"]
CLASSIFIERS = [name for name in SMALL if not is_autoencoder(name)]  # autoencoders: test_autoencoder.py
TINY_TIMM = "test_efficientnet"  # timm's own test network: a backbone with the real code paths, tiny


@pytest.mark.parametrize("name", [*CLASSIFIERS, TINY_TIMM])
def test_network_contract(name: str):
    """Every registered model and a timm backbone: forward_features gives the map, forward_head(map, pre_logits)
    pools and classifies, pool and head compose to it, reset_classifier; one contract for all."""
    torch.manual_seed(0)
    channels = 3 if name == TINY_TIMM else 1
    model = create_model(name, num_classes=5, in_channels=channels, image_size=(32, 32)).eval()
    assert isinstance(model, Network)
    x = torch.randn(2, channels, 32, 32)
    logits = model(x)
    assert logits.shape == (2, 5)
    features = model.forward_features(x)
    assert features.ndim == 4 and features.shape[:2] == (2, model.num_features)  # a map, as timm's
    assert torch.allclose(model.forward_head(features), logits)
    assert torch.allclose(model.head(model.pool(features)), logits)
    embedding = model.forward_head(features, pre_logits=True)
    assert embedding.shape == (2, model.head_hidden_size)
    assert not model.frozen
    model.reset_classifier(3)
    assert model(x).shape == (2, 3)


@pytest.mark.parametrize("name", SMALL)
def test_cnnkits_own_networks_train_whole(name: str):
    model = create_model(name, num_classes=2, in_channels=1, image_size=(32, 32))
    model.set_trainable_stages(-1)
    with pytest.raises(ModelError, match="trains whole"):
        model.set_trainable_stages(0)


def test_vgg16_builds_on_meta_device():
    with torch.device("meta"):
        model = create_model("vgg16", num_classes=1000)
    assert sum(p.numel() for p in model.parameters()) == 138_357_544


def test_unknown_model_and_option_errors():
    with pytest.raises(ModelError, match="Unknown model 'resnet9000'. Available: conv_autoencoder, "
                                         "denoising_autoencoder, lenet5"):
        create_model("resnet9000", 2)
    with pytest.raises(ModelError, match=r"no option\(s\) \['colour'\]"):
        create_model("simple_cnn", 2, colour="red")
    with pytest.raises(ConfigError, match="'activation' parameter of lenet5 must be one of"):
        create_model("lenet5", 2, 1, activation="swish")


def test_too_small_input_is_a_model_error():
    with pytest.raises(ModelError, match="does not fit model 'lenet5'"):
        create_model("lenet5", 10, 1, (8, 8))


def test_options_change_the_network():
    assert model_options("simple_cnn")["batch_norm"] is True
    plain = create_model("simple_cnn", 2, 3, (16, 16), batch_norm=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in create_model("simple_cnn", 2, 3, (16, 16)).modules())


def test_weight_init_schemes():
    torch.manual_seed(0)
    kaiming = create_model("simple_cnn", 2, 3, (16, 16), init="kaiming")
    xavier = create_model("simple_cnn", 2, 3, (16, 16), init="xavier")
    w_k, w_x = kaiming.neck[2].weight, xavier.neck[2].weight  # dense 1024 -> 128
    fan_in, fan_out = w_k.shape[1], w_k.shape[0]
    assert abs(w_k.std().item() - (2 / fan_in) ** 0.5) < 0.1 * (2 / fan_in) ** 0.5
    assert abs(w_x.std().item() - (2 / (fan_in + fan_out)) ** 0.5) < 0.1 * (2 / (fan_in + fan_out)) ** 0.5
    assert (kaiming.neck[2].bias == 0).all()
    with pytest.raises(ConfigError, match="'init' parameter"):
        create_model("simple_cnn", 2, init="lecun")
