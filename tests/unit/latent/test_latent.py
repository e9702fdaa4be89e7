"""Latent vectors, the FAISS index of a run, k-NN votes, t-SNE and the CLI commands on them."""

import shutil

import numpy as np
import pytest
import torch

from cnnkit.cli import main
from cnnkit.run import RunFolder
from cnnkit.evaluation.evaluate import evaluate_run
from cnnkit.inference import Predictor
from cnnkit.latent import index as latent_index
from cnnkit.latent.index import build_faiss_index, knn_vote, recall_at_k, run_index
from cnnkit.latent.tsne import tsne_coordinates
from cnnkit.weights import load_weights, save_weights


def test_latent_vectors_are_the_layer_before_the_classifier(trained_run):
    predictor = Predictor.load(trained_run)
    train = RunFolder(trained_run).load_split("train", predictor.classes, predictor.preprocessing)
    vectors = predictor.embed_arrays(train.images[:5])
    logits = torch.from_numpy(vectors) @ predictor.model.classifier.weight.T.detach() + predictor.model.classifier.bias
    expected = np.log(predictor.predict_arrays(train.images[:5]))
    assert np.allclose(torch.log_softmax(logits, 1).detach().numpy(), expected, atol=1e-4)


def test_a_training_image_finds_itself_first(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    predictor = Predictor.load(run)
    index = run_index(run, predictor, "l2", "flat")
    train = RunFolder(run).load_split("train", predictor.classes, predictor.preprocessing)
    assert index.paths == train.paths and index.index.ntotal == len(train)
    for i in (0, 7, len(train) - 1):
        distances, ids = index.search(predictor.embed_arrays(train.images[i:i + 1]), 3)
        assert ids[0, 0] == i and distances[0, 0] == pytest.approx(0.0, abs=1e-3)
        assert np.all(np.diff(distances[0]) >= 0)
    cosine = run_index(run, predictor, "cosine", "flat")
    distances, ids = cosine.search(predictor.embed_arrays(train.images[3:4]), 2)
    assert ids[0, 0] == 3 and distances[0, 0] == pytest.approx(0.0, abs=1e-4)


def test_the_saved_index_is_reused_then_rebuilt_after_retraining(trained_run, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    run_index(run)
    saved = run / "index" / "l2-flat.faiss"
    assert saved.exists()
    calls = []
    original = latent_index.build_faiss_index
    monkeypatch.setattr(latent_index, "build_faiss_index", lambda *a, **k: calls.append(1) or original(*a, **k))
    run_index(run)
    assert calls == []  # loaded from RUN/index, not rebuilt
    model = load_weights(Predictor.load(run).model, run / "model.safetensors")
    with torch.no_grad():
        model.classifier.weight.add_(0.1)
        model.features[0].weight.mul_(1.5)
    save_weights(model, run / "model.safetensors")  # what retraining does to the run
    rebuilt = run_index(run)
    assert calls == [1]
    saved.write_bytes(b"damaged")  # a broken index file is rebuilt, never trusted
    assert run_index(run).index.ntotal == rebuilt.index.ntotal and calls == [1, 1]
    predictor = Predictor.load(run)
    train = RunFolder(run).load_split("train", predictor.classes, predictor.preprocessing)
    expected = predictor.embed_arrays(train.images[:1])
    assert np.allclose(rebuilt.index.reconstruct(0), expected[0], atol=1e-5)


def test_approximate_index_recall_is_measured():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 32))
    vectors = (centres[rng.integers(0, 20, 4000)] + 0.3 * rng.normal(size=(4000, 32))).astype(np.float32)
    exact, ivf = build_faiss_index(vectors, "l2", "flat"), build_faiss_index(vectors, "l2", "ivf")
    assert recall_at_k(exact, exact, vectors[:100]) == 1.0
    assert 0.5 < recall_at_k(ivf, exact, vectors[:100]) <= 1.0


def test_knn_vote_counts_and_breaks_ties_by_distance():
    labels = np.array([[0, 1, 1], [2, 0, 2], [0, 1, 2]])
    distances = np.array([[0.1, 0.2, 0.3], [1.0, 0.1, 2.0], [0.5, 0.2, 0.9]])
    p = knn_vote(labels, distances, 3)
    assert np.allclose(p.sum(1), 1) and p.argmax(1).tolist() == [1, 2, 1]  # 2 votes; 2 votes; a tie: nearest wins
    assert p[0, 1] == pytest.approx(2 / 3, abs=1e-5)


def test_evaluate_knn_sits_beside_the_head(trained_run, tmp_path):
    from sklearn.neighbors import KNeighborsClassifier

    evaluation = evaluate_run(trained_run, out=tmp_path, knn=3)
    knn = evaluation.metrics["knn"]
    predictor = Predictor.load(trained_run)
    train = RunFolder(trained_run).load_split("train", predictor.classes, predictor.preprocessing)
    test = RunFolder(trained_run).load_split("test", predictor.classes, predictor.preprocessing)
    reference = KNeighborsClassifier(3).fit(predictor.embed_arrays(train.images), train.labels)
    expected = (reference.predict(predictor.embed_arrays(test.images)) == test.labels).mean()
    assert knn["k"] == 3 and knn["accuracy"] == pytest.approx(expected)
    assert "k-NN in the latent space (k=3" in evaluation.report_path.read_text()


def test_tsne_has_one_point_per_image():
    vectors = np.random.default_rng(1).normal(size=(25, 8))
    assert tsne_coordinates(vectors).shape == (25, 2)


def test_features_similar_and_tsne_commands(trained_run, pattern_data, tmp_path, capsys):
    out = tmp_path / "f.npz"
    assert main(["features", str(trained_run), str(pattern_data), "--out", str(out)]) == 0
    with np.load(out, allow_pickle=False) as f:
        assert f["features"].shape[0] == len(f["paths"]) == len(f["labels"]) == 90
        assert set(f["labels"]) == {"left", "right", "top"} and list(f["classes"]) == ["left", "right", "top"]
    query = sorted((pattern_data / "top").glob("*.png"))[0]
    assert main(["similar", str(trained_run), str(query), "-k", "4", "--out", str(tmp_path / "s.png")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()[:1].isdigit()]
    assert len(lines) == 4 and all(" top " in line for line in lines[:2])
    assert (tmp_path / "s.png").stat().st_size > 1000
    assert main(["tsne", str(trained_run), "--out", str(tmp_path / "t.png"), "--thumbnails", "5"]) == 0
    assert (tmp_path / "t.png").stat().st_size > 1000
    assert main(["similar", str(trained_run), str(query), "--index", "ivf", "--out", str(tmp_path / "s2.png")]) == 0
    assert "recall@10" in capsys.readouterr().out


def test_a_crafted_index_header_is_refused_before_faiss_reads_it(trained_run, tmp_path, caplog):
    import struct

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    good = run_index(run)
    saved = run / "index" / "l2-flat.faiss"
    header = saved.read_bytes()[:4] + struct.pack("<i", 1280) + struct.pack("<q", 10**9)  # 5 TB of vectors
    saved.write_bytes(header + b"\0" * 93)  # 109 bytes
    with pytest.raises(ValueError, match="promises 1000000000 vectors"):
        latent_index.check_index_file(saved)
    assert run_index(run).index.ntotal == good.index.ntotal and "damaged" in caplog.text  # rebuilt, not read


def test_an_approximate_index_searches_more_lists_until_its_recall_reaches_the_target():
    from cnnkit.errors import ConfigError
    from cnnkit.latent.index import PQ_MIN_VECTORS, TARGET_RECALL, tune_recall

    rng = np.random.default_rng(0)
    mapping = rng.standard_normal((16, 64)).astype(np.float32) / 4
    vectors = rng.standard_normal((12_000, 16)).astype(np.float32) @ mapping  # no clusters: IVF's hard case
    for kind in ("ivf", "ivfpq"):
        index = build_faiss_index(vectors, "l2", kind)
        untuned = recall_at_k(index, build_faiss_index(vectors, "l2", "flat"), vectors[:200] + 0.01)
        tuned = tune_recall(index, vectors, "l2")
        assert tuned["recall_at_10"] >= TARGET_RECALL and tuned["nprobe"] > 8
        again = recall_at_k(index, build_faiss_index(vectors, "l2", "flat"), vectors[-200:] + 0.01)
        assert again > untuned and again >= TARGET_RECALL - 0.05  # other queries: the tuned index holds up
    with pytest.raises(ConfigError, match="ivfpq"):
        build_faiss_index(vectors[:PQ_MIN_VECTORS - 1], "l2", "ivfpq")


def test_an_index_file_swapped_for_another_runs_is_rebuilt_not_searched(trained_run, tmp_path, caplog):
    """Another run's index (same split, same metric and kind, other weights) copied over this run's: its key in
    l2-flat.json still matches, the file's SHA-256 does not."""
    import hashlib
    import json

    from tests.conftest import network_run

    run, other = tmp_path / "run", network_run("tiny_cnn", trained_run, tmp_path / "other", 16)
    shutil.copytree(trained_run, run)
    own = run_index(run)
    run_index(other)
    shutil.copyfile(other / "index" / "l2-flat.faiss", run / "index" / "l2-flat.faiss")
    rebuilt = run_index(run)
    assert "l2-flat.faiss is damaged (it is not the file l2-flat.json describes: replaced or changed" in caplog.text
    assert np.allclose(rebuilt.index.reconstruct(0), own.index.reconstruct(0))
    meta = json.loads((run / "index" / "l2-flat.json").read_text())
    assert meta["index_sha256"] == hashlib.sha256((run / "index" / "l2-flat.faiss").read_bytes()).hexdigest()
