"""Classical baselines on the same split as the CNNs: k-NN on pixels, a linear softmax, hand-crafted features."""
