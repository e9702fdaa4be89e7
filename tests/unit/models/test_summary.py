import pytest
import torch
from torch import nn

from cnnkit.models import create_model
from cnnkit.models.summary import summary


def test_lenet5_textbook_parameter_count():
    result = summary("lenet5", (1, 32, 32))
    assert result.total_params == 61_706 and result.trainable_params == 61_706
    per_layer = [layer.params for layer in result.layers if layer.params]
    assert per_layer == [156, 2_416, 48_120, 10_164, 850]
    assert [layer.output_shape for layer in result.layers if layer.kind == "Conv2d"] == [(6, 28, 28), (16, 10, 10)]


def test_vgg16_textbook_parameter_count_without_memory():
    result = summary("vgg16", (3, 224, 224), num_classes=1000)
    assert result.total_params == 138_357_544
    assert result.layers[-1].output_shape == (1000,)


def test_receptive_fields_of_stacked_3x3_convolutions_and_pooling():
    result = summary("vgg16", (3, 224, 224), num_classes=1000)
    convs_and_pools = [(l.rf_size[0], l.rf_jump[0]) for l in result.layers if l.kind in ("Conv2d", "MaxPool2d")]
    assert convs_and_pools[:6] == [(3, 1), (5, 1), (6, 2), (10, 2), (14, 2), (16, 4)]
    assert convs_and_pools[-1] == (212, 32)  # pool5 of VGG16, the published figure
    assert result.layers[-1].rf_size is None  # dense layers see the whole input


def test_summary_text_is_capturable_and_keras_like():
    lines = []
    summary("lenet5", (1, 32, 32), print_fn=lines.append)
    text = lines[0]
    for expected in ("Layer (type)", "Output Shape", "Param #", "(None, 6, 28, 28)", "5x5 / 1", "16x16 / 4",
                     "Total params: 61,706", "Trainable params: 61,706", "Non-trainable params: 0"):
        assert expected in text


def test_frozen_parameters_count_as_non_trainable():
    model = create_model("lenet5", 10, 1)
    for p in model.features.parameters():
        p.requires_grad_(False)
    result = summary(model, (1, 32, 32))
    assert result.non_trainable_params == 156 + 2_416 and result.trainable_params == 61_706 - 2_572


def _gradient_receptive_field(features: nn.Sequential, upto: int, shape: tuple[int, int, int]) -> int:
    """Reference: the input rows that reach the centre unit of layer ``upto`` (positive weights, avg pools)."""
    x = torch.rand(1, *shape, requires_grad=True)
    out = features[: upto + 1](x)
    h, w = out.shape[-2:]
    out[0, :, h // 2, w // 2].sum().backward()
    rows = torch.nonzero(x.grad[0].abs().sum(dim=(0, 2)) > 0).flatten()
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize("name, shape", [("lenet5", (1, 32, 32)), ("vgg_small", (3, 64, 64))])
def test_receptive_fields_match_gradient_reference(name, shape):
    model = create_model(name, 10, shape[0], shape[1:])
    features = model.features
    for i, layer in enumerate(features):  # max pooling routes gradient to one input: use the average instead
        if isinstance(layer, nn.MaxPool2d):
            features[i] = nn.AvgPool2d(layer.kernel_size, layer.stride)
    with torch.no_grad():
        for p in features.parameters():
            p.abs_()
    model.eval()  # batch norm on running statistics: each output depends on its window only
    result = summary(model, shape)
    for i, layer in enumerate(result.layers[: len(features)]):
        if layer.kind in ("Conv2d", "AvgPool2d", "MaxPool2d"):
            assert layer.rf_size[0] == _gradient_receptive_field(features, i, shape), layer.name
