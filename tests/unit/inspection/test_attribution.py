"""What the inspection shows is what the network holds and does: filters equal the weights, and the attributions of
a network that only sees one quadrant stay in that quadrant."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnkit.data.preprocess import Preprocessing
from cnnkit.inspection.attribution import grad_cam, integrated_gradients, occlusion
from cnnkit.inspection.figures import filter_grid, filters_png, overlay
from cnnkit.inspection.network import ScoreModel, first_convolution, stage_outputs
from cnnkit.models import create_model

GREY = Preprocessing((32, 32), 3, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def test_the_filter_grid_holds_the_first_convolution_s_weights():
    network = create_model("simple_cnn", 3, 3, (32, 32))
    name, conv = first_convolution(network)
    weight = conv.weight.detach().numpy()
    out, channels, kh, kw = weight.shape
    grid = filter_grid(weight)
    columns = int(np.ceil(np.sqrt(out)))
    assert grid.shape == (int(np.ceil(out / columns)) * (kh + 1) - 1, columns * (kw + 1) - 1, channels)
    for k in range(out):
        r, c = divmod(k, columns)
        np.testing.assert_array_equal(grid[r * (kh + 1):r * (kh + 1) + kh, c * (kw + 1):c * (kw + 1) + kw],
                                      weight[k].transpose(1, 2, 0))
    assert np.isnan(grid[kh]).all()  # the line between the first two rows of tiles
    assert name == "features.0" and filters_png(weight, name).startswith(b"\x89PNG")


def one_quadrant_network() -> torch.nn.Module:
    """tiny_cnn (3x3 convolution, 2x2 pooling, dense) whose class 0 looks only at the top-left quadrant of its
    16x16 feature map (through positive weights) and whose class 1 looks at nothing: only the top-left 16x16 input
    pixels (plus the 3x3 convolution's border) can move its scores."""
    torch.manual_seed(0)
    network = create_model("tiny_cnn", 2, 3, (32, 32)).eval()
    with torch.no_grad():
        conv = first_convolution(network)[1]
        conv.weight.abs_()
        conv.bias.zero_()
        weight = network.classifier.weight.view(2, -1, 16, 16)
        weight.abs_()
        weight[:, :, 8:, :] = 0
        weight[:, :, :, 8:] = 0
        weight[1] = 0
        network.classifier.bias.zero_()
        x = (torch.from_numpy(bright_image()).permute(2, 0, 1)[None].float() / 255 - 0.5) / 0.25
        weight[0] *= 2.0 / network(x)[0, 0]  # a logit of 2 on the bright image: its probability is not saturated
    return network


def bright_image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(160, 256, (32, 32, 3), dtype=np.uint8)


def test_grad_cam_of_a_network_that_sees_one_quadrant_lights_that_quadrant():
    network = one_quadrant_network()
    cam = grad_cam(ScoreModel(network, GREY), bright_image()[None], [0])[0]
    assert cam.shape == (32, 32) and cam.max() == pytest.approx(1.0)
    assert cam[:16, :16].min() > 0  # the quadrant
    assert cam[18:].max() == 0 and cam[:, 18:].max() == 0  # beyond it (bilinear upsampling blurs one pixel)
    nothing = grad_cam(ScoreModel(network, GREY), bright_image()[None], [1])[0]
    assert nothing.max() == 0  # class 1 has no evidence anywhere


def test_occlusion_over_the_decisive_region_drops_the_score():
    network = one_quadrant_network()
    drop = occlusion(ScoreModel(network, GREY, "probabilities"), bright_image(), 0, window=4)
    assert drop[:16, :16].min() > 0  # greying any part of the quadrant lowers the class's probability
    assert np.abs(drop[20:]).max() < 1e-7 and np.abs(drop[:, 20:]).max() < 1e-7  # windows that miss it: nothing
    with torch.no_grad():
        x = torch.from_numpy(bright_image()).permute(2, 0, 1)[None].float() / 255
        hidden = x.clone()
        hidden[..., :16, :16] = 0.5
        model = ScoreModel(network, GREY, "probabilities")
        assert (model(x) - model(hidden))[0, 0] > drop.max()  # hiding the whole quadrant costs more than any window


def test_integrated_gradients_add_up_to_the_score_and_stay_in_the_quadrant():
    network = one_quadrant_network()
    attribution, error = integrated_gradients(ScoreModel(network, GREY), bright_image(), 0, steps=64,
                                              fill=(0.5, 0.5, 0.5))
    model = ScoreModel(network, GREY)
    with torch.no_grad():
        x = torch.from_numpy(bright_image()).permute(2, 0, 1)[None].float() / 255
        gain = float(model(x)[0, 0] - model(torch.full_like(x, 0.5))[0, 0])
    assert attribution.sum() == pytest.approx(gain, rel=0.02) and error < 0.02 * abs(gain)
    assert np.abs(attribution[17:]).max() == 0 and np.abs(attribution[:, 17:]).max() == 0


def test_stages_end_where_the_map_shrinks_and_the_last_is_the_feature_map():
    network = create_model("vgg_small", 3, 3, (32, 32)).eval()
    x = torch.rand(1, 3, 32, 32)
    stages = stage_outputs(network, x)
    sizes = [tuple(a.shape[-2:]) for _, a in stages]
    assert sizes == sorted(set(sizes), reverse=True)  # one stage per resolution, shrinking
    with torch.no_grad():
        torch.testing.assert_close(stages[-1][1], network.forward_features(x)[0])


def test_overlay_blends_the_map_over_the_image():
    image = np.zeros((4, 4, 1), np.uint8)
    heat = np.zeros((4, 4))
    heat[0, 0] = 1.0
    blended = overlay(image, heat, alpha=1.0)
    assert blended.shape == (4, 4, 3) and blended[0, 0, 0] > 100 and blended[1, 1, 0] == 0  # jet: red at 1, blue at 0
