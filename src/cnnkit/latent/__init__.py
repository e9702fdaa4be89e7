"""The latent space: the vectors before the classifier, retrieval with FAISS, k-NN votes and t-SNE maps."""
