"""A fitted baseline as plain arrays (safetensors) plus a few numbers in config.json: no pickle, ever."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnkit.baselines.features import handcrafted_features, pixel_features
from cnnkit.data.preprocess import Preprocessing
from cnnkit.errors import ConfigError
from cnnkit.inference import Predictor

METHODS = ("knn", "linear", "handcrafted")


def method_inputs(method: str, images: np.ndarray) -> np.ndarray:
    """What a method classifies: pixels (knn, linear) or hand-crafted features."""
    return handcrafted_features(images) if method == "handcrafted" else pixel_features(images)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class BaselineModel:
    """Stateless given its arrays: k-NN votes, or a softmax of a linear map, after optional standardisation.

    ``params``: {"classifier": "knn", "k": 5, "p": 2} or {"classifier": "linear"}; ``arrays``: "x", "y" (k-NN),
    "coef", "intercept" (linear), "mean", "scale" (standardised inputs).
    """

    def __init__(self, method: str, params: dict, arrays: dict[str, np.ndarray], num_classes: int):
        self.method, self.params, self.arrays, self.num_classes = method, params, arrays, num_classes
        if params["classifier"] == "knn":
            from sklearn.neighbors import KNeighborsClassifier

            self._knn = KNeighborsClassifier(n_neighbors=int(params["k"]), p=int(params["p"]))
            self._knn.fit(arrays["x"], arrays["y"])

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        x = method_inputs(self.method, images)
        if "mean" in self.arrays:
            x = (x - self.arrays["mean"]) / self.arrays["scale"]
        if self.params["classifier"] == "linear":
            return _softmax(x @ self.arrays["coef"].T + self.arrays["intercept"])
        out = np.zeros((len(x), self.num_classes), dtype=np.float64)
        if len(x):
            out[:, self._knn.classes_] = self._knn.predict_proba(x)
        return out

    @property
    def size(self) -> int:
        """Stored numbers (the training set itself, for k-NN)."""
        return int(sum(a.size for a in self.arrays.values()))


class BaselinePredictor(Predictor):
    """A ``Predictor`` for baseline runs, so that predict, evaluate and compare read them like CNN runs."""

    def __init__(self, baseline: BaselineModel, classes: list[str], preprocessing: Preprocessing,
                 run_dir: Path | None = None):
        self.baseline = baseline
        self.classes = list(classes)
        self.preprocessing = preprocessing
        self.run_dir = run_dir
        self.threshold = None
        self.augment = None

    @classmethod
    def from_run(cls, run_dir: Path, config: dict) -> BaselinePredictor:
        from cnnkit.weights import read_safetensors

        arrays = read_safetensors(Path(run_dir) / "model.safetensors", framework="numpy")
        spec = config["model"]
        model = BaselineModel(spec["method"], spec["params"], arrays, len(config["classes"]))
        return cls(model, config["classes"], Preprocessing.from_dict(config["preprocessing"]), Path(run_dir))

    def predict_arrays(self, images: np.ndarray, batch_size: int = 1024, tta: int = 1) -> np.ndarray:
        if tta != 1:
            raise ConfigError("Test-time augmentation applies to CNN runs, not to baselines.")
        parts = [self.baseline.predict_proba(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, len(self.classes)), np.float32)

    def embed_arrays(self, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
        raise ConfigError("Baseline runs have no latent space; use a CNN run for features, similar, tsne or --knn.")

    @property
    def num_parameters(self) -> int:
        return self.baseline.size
