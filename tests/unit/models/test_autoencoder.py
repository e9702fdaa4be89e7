import pytest
import torch

from cnnkit.errors import ModelError
from cnnkit.models import Network, create_model, is_autoencoder, list_models
from cnnkit.models.summary import summary

AUTOENCODERS = [name for name in list_models() if is_autoencoder(name)]


def test_both_autoencoders_are_registered_and_classifiers_are_not_autoencoders():
    assert AUTOENCODERS == ["conv_autoencoder", "denoising_autoencoder"]
    assert not is_autoencoder("simple_cnn") and not is_autoencoder("efficientnet_lite0")


@pytest.mark.parametrize("name", AUTOENCODERS)
@pytest.mark.parametrize("size", [(16, 16), (26, 40), (8, 8)])
def test_autoencoder_contract(name: str, size: tuple[int, int]):
    """The feature half of the Network contract (code map, code vector, pre-logits = the vector), and forward gives
    an image of the input's shape in [0, 1]; there is no classifier to use or reset."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, in_channels=2, image_size=size, code_size=6, filters=(4, 8)).eval()
    assert isinstance(model, Network) and model.reconstructs and not model.frozen
    x = torch.randn(2, 2, *size)
    code_map = model.forward_features(x)
    assert code_map.shape == (2, 6, 1, 1) and model.num_features == model.head_hidden_size == 6
    code = model.pool(code_map)
    assert code.shape == (2, 6)
    assert torch.equal(model.forward_head(code_map, pre_logits=True), code)
    image = model(x)
    assert image.shape == x.shape and 0 <= image.min() and image.max() <= 1
    assert torch.allclose(model.decode(code), image) and torch.allclose(model.decode(code_map), image)
    with pytest.raises(ModelError, match="no classifier"):
        model.head(code)
    with pytest.raises(ModelError, match="no classifier"):
        model.reset_classifier(2)


def test_code_size_and_filters_set_the_bottleneck_and_summary_follows_the_decoder():
    model = create_model("conv_autoencoder", 1, 1, (32, 32), code_size=12, filters=(8, 16, 32))
    result = summary(model, (1, 32, 32))
    assert result.layers[-1].output_shape == (1, 32, 32)  # the reconstruction
    assert any(layer.output_shape == (12, 1, 1) for layer in result.layers)  # the code
    with pytest.raises(ModelError, match="code_size"):
        create_model("conv_autoencoder", 1, 1, (32, 32), code_size=0)


def test_the_denoising_autoencoder_declares_its_corruption():
    plain = create_model("conv_autoencoder", 1, 1, (16, 16))
    denoising = create_model("denoising_autoencoder", 1, 1, (16, 16), noise=0.2, mask=0.3)
    assert (plain.input_noise, plain.input_mask) == (0.0, 0.0)
    assert (denoising.input_noise, denoising.input_mask) == (0.2, 0.3)
    with pytest.raises(ModelError, match="mask"):
        create_model("denoising_autoencoder", 1, 1, (16, 16), mask=1.0)
