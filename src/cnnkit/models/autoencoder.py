"""Convolutional autoencoders: an encoder squeezes the image into a code of ``code_size`` numbers, a decoder gives
the image back. Trained without labels to reconstruct their input; the code is the run's latent vector (features,
similar, t-SNE, k-NN) and the reconstruction error scores how unusual an image is (``cnnkit anomaly``).

``denoising_autoencoder`` is the same network whose training input is corrupted (Gaussian noise, masked pixels)
while the target stays clean: the code must keep what noise cannot explain.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnkit.errors import ModelError
from cnnkit.models._registry import register_model
from cnnkit.models.network import Network, feature_shape


def _norm(channels: int, batch_norm: bool) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels)] if batch_norm else []


def _down(in_channels: int, out_channels: int, batch_norm: bool) -> list[nn.Module]:
    """A strided 3x3 conv halving the side (rounded up), (batch norm), ReLU."""
    return [nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=not batch_norm),
            *_norm(out_channels, batch_norm), nn.ReLU()]


def _up(in_channels: int, out_channels: int, batch_norm: bool) -> list[nn.Module]:
    """A 4x4 transposed conv doubling the side, (batch norm), ReLU."""
    return [nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=not batch_norm),
            *_norm(out_channels, batch_norm), nn.ReLU()]


class ConvAutoencoder(Network):
    """``encoder`` (conv blocks, then one conv as large as what is left of the image: the code map
    (N, code_size, 1, 1)) and ``decoder`` (its mirror, ending in a sigmoid: pixels in [0, 1]).

    The Network contract's feature half holds: ``forward_features`` is the code map, ``pool`` the code vector and
    ``head(vector, pre_logits=True)`` the vector itself, so the latent commands work unchanged. ``forward(x)`` is the
    reconstruction (``decode(forward_features(x))``): an autoencoder has no classifier. Inputs are standardised
    images, as for every cnnkit network; the reconstruction is the image in [0, 1].
    ``input_noise`` and ``input_mask``: the corruption its training applies to the input (a denoising autoencoder).
    """

    reconstructs = True

    def __init__(self, encoder: nn.Sequential, decoder: nn.Sequential, code_size: int, num_classes: int,
                 image_size: tuple[int, int], input_noise: float = 0.0, input_mask: float = 0.0):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.num_features = self.head_hidden_size = self.code_size = code_size
        self.num_classes = num_classes
        self.image_size = tuple(image_size)
        self.input_noise, self.input_mask = float(input_noise), float(input_mask)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x, 1)

    def head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if not pre_logits:
            raise ModelError("An autoencoder has no classifier: its head stops at the code (pre_logits=True).")
        return x

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """The image (N, C, H, W) in [0, 1] from a code map (N, code_size, 1, 1) or code vectors (N, code_size)."""
        out = self.decoder(code.reshape(len(code), self.code_size, 1, 1))
        return out[..., : self.image_size[0], : self.image_size[1]]  # the decoder's sides are rounded up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        raise ModelError("An autoencoder has no classifier to reset; train a classifier on its codes instead.")


def build_autoencoder(name: str, num_classes: int, in_channels: int, image_size: tuple[int, int], code_size: int,
                      filters: tuple[int, ...], batch_norm: bool, noise: float = 0.0,
                      mask: float = 0.0) -> ConvAutoencoder:
    """Encoder: a strided conv per entry of ``filters``, then a conv covering what is left (the code). Decoder: a
    transposed conv back to that grid, a doubling transposed conv per filter in reverse, a 3x3 conv to the image's
    channels, a sigmoid."""
    if code_size < 1 or not filters or min(filters) < 1:
        raise ModelError(f"Expected `code_size` >= 1 and model option filters of positive widths. Received: "
                         f"code_size={code_size}, filters={filters}")
    if not (0.0 <= noise <= 1.0 and 0.0 <= mask < 1.0):
        raise ModelError(f"Expected model options noise in [0, 1] and mask in [0, 1) (`model_options` noise=..., "
                         f"mask=...). Received: noise={noise}, mask={mask}")
    layers: list[nn.Module] = []
    channels = in_channels
    for width in filters:
        layers += _down(channels, width, batch_norm)
        channels = width
    grid = tuple(feature_shape(nn.Sequential(*layers), in_channels, image_size, name)[1:])
    encoder = nn.Sequential(*layers, nn.Conv2d(channels, code_size, grid))
    up: list[nn.Module] = [nn.ConvTranspose2d(code_size, channels, grid), *_norm(channels, batch_norm), nn.ReLU()]
    for width in reversed(filters):
        up += _up(channels, width, batch_norm)
        channels = width
    decoder = nn.Sequential(*up, nn.Conv2d(channels, in_channels, 3, padding=1), nn.Sigmoid())
    return ConvAutoencoder(encoder, decoder, code_size, num_classes, image_size, noise, mask)


@register_model()
def conv_autoencoder(num_classes: int = 1, in_channels: int = 3, image_size: tuple[int, int] = (32, 32),
                     code_size: int = 32, filters: tuple[int, ...] = (16, 32),
                     batch_norm: bool = False) -> ConvAutoencoder:
    """Convolutional autoencoder: image -> code of code_size numbers -> image; trained without labels (cnnkit
    anomaly scores its reconstruction error)."""
    return build_autoencoder("conv_autoencoder", num_classes, in_channels, image_size, code_size, tuple(filters),
                             batch_norm)


@register_model()
def denoising_autoencoder(num_classes: int = 1, in_channels: int = 3, image_size: tuple[int, int] = (32, 32),
                          code_size: int = 32, filters: tuple[int, ...] = (16, 32), batch_norm: bool = False,
                          noise: float = 0.1, mask: float = 0.1) -> ConvAutoencoder:
    """Denoising autoencoder: trained to give the clean image back from one with Gaussian noise (std noise, in
    [0, 1] pixel units) and a share mask of its pixels set to 0."""
    return build_autoencoder("denoising_autoencoder", num_classes, in_channels, image_size, code_size,
                             tuple(filters), batch_norm, noise, mask)
