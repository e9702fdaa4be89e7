"""A fitted baseline as plain arrays (safetensors) plus a few numbers in config.json: no pickle, ever."""

from __future__ import annotations

import numpy as np

from cnnkit.baselines.handcrafted import handcrafted_features, pixel_features


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
