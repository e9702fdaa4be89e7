"""`cnnkit audit` finds what was planted and nothing else; the training's cheap check warns about identical files,
and `dedupe` leaves them out and records it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.cli import main
from tests.conftest import write_image_folder

pytest.importorskip("cleanlab", reason="cnnkit[audit] is not installed")


def smooth_image(rng: np.random.Generator, tint: int, size: int = 48) -> Image.Image:
    """A picture of nothing in particular: smooth random shapes, a little tinted by the class."""
    small = rng.integers(0, 256, (6, 6, 3)).astype(np.uint8)
    small[..., tint % 3] = np.clip(small[..., tint % 3].astype(int) + 40, 0, 255)
    return Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)


def clean_set(root: Path, per_class: int = 12, fmt: dict | None = None) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for k, name in enumerate(("cat", "dog", "fox")):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class if split == "train" else per_class // 3):
                ext = (fmt or {}).get(name, "png")
                smooth_image(rng, k).save(root / split / name / f"{name}_{i:02d}.{ext}",
                                          **({"quality": 90} if ext == "jpg" else {}))
    return root


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def audit_of(data: Path, out: Path, *extra: str) -> dict:
    assert main(["-q", "audit", str(data), "--out", str(out), "--features", "pixels", *extra]) == 0
    assert (out / "audit.html").read_text().startswith("<!DOCTYPE html>")
    return json.loads((out / "audit.json").read_text())


@pytest.mark.slow  # 5 s each: the quick suite keeps the audit's smaller cases
def test_planted_duplicates_are_found_and_nothing_else(tmp_path):
    data = clean_set(tmp_path / "data")
    clean = audit_of(data, tmp_path / "clean")
    assert clean["exact_duplicates"] == [] and clean["near_duplicates"] == []
    shutil.copy(data / "train" / "cat" / "cat_00.png", data / "test" / "cat" / "copy.png")  # leaks into test
    shutil.copy(data / "train" / "dog" / "dog_01.png", data / "train" / "fox" / "relabelled.png")  # two labels
    picture = np.asarray(Image.open(data / "train" / "fox" / "fox_02.png"), dtype=np.int16)
    near = Image.fromarray(np.clip(picture + 4, 0, 255).astype(np.uint8))
    near.save(data / "test" / "fox" / "near.jpg", quality=85)  # re-encoded, a little brighter
    before = tree_digest(data)
    found = audit_of(data, tmp_path / "planted")
    assert tree_digest(data) == before  # the audit only reads
    exact = {frozenset(g["files"]): g for g in found["exact_duplicates"]}
    leak = exact[frozenset({"train/cat/cat_00.png", "test/cat/copy.png"})]
    conflict = exact[frozenset({"train/dog/dog_01.png", "train/fox/relabelled.png"})]
    assert len(exact) == 2 and leak["crosses_splits"] and not leak["crosses_classes"]
    assert conflict["crosses_classes"] and not conflict["crosses_splits"]
    assert [set(g["files"]) for g in found["near_duplicates"]] == [{"train/fox/fox_02.png", "test/fox/near.jpg"}]
    assert found["near_duplicates"][0]["crosses_splits"]
    assert found["summary"]["groups_crossing_splits"] == 2


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_flipped_labels_rank_above_clean_ones(tmp_path):
    data = write_image_folder(tmp_path / "data", ["left", "right", "top"], 30)
    flipped = []
    for k, (source, target) in enumerate((("left", "right"), ("right", "top"), ("top", "left"))):
        moved = data / target / f"flipped_{k}.png"
        (data / source / f"{source}_{k:03d}.png").rename(moved)
        flipped.append(f"{target}/{moved.name}")
    found = audit_of(data, tmp_path / "audit")
    ranked = [s["file"] for s in found["label_suspects"]]
    assert set(flipped) <= set(ranked[:6])  # 3 of 90 flipped: all among the 6 most suspect
    believed = {s["file"]: s["believed"] for s in found["label_suspects"]}
    assert believed["right/flipped_0.png"] == "left"


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_a_multi_label_set_is_audited_by_class_and_wrong_label_sets_rank_first(tmp_path):
    """Label sets from a CSV (`a|b`): each class is judged on its own, and sets missing a class the image shows, or
    naming one it does not, come first."""
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    rows, wrong = [], []
    for i in range(80):
        left, top = i % 2, (i // 2) % 2  # a bright left half and a bright top half, each on its own
        pixels = rng.integers(0, 60, (16, 16)).astype(np.uint8)
        pixels[:, :8] += 150 * left
        pixels[:8, :] += 90 * top
        Image.fromarray(pixels).save(tmp_path / "images" / f"{i:02d}.png")
        names = [n for n, on in (("left", left), ("top", top)) if on]
        if i in (5, 22, 47):  # a class dropped or added by mistake
            names = [n for n in ("left", "top") if n not in names][:1] + names[1:]
            wrong.append(f"images/{i:02d}.png")
        rows.append(f"images/{i:02d}.png,{'|'.join(names)}")
    (tmp_path / "labels.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    found = audit_of(tmp_path / "labels.csv", tmp_path / "audit")
    assert found["multi_label"] and found["classes"] == ["left", "top"]
    ranked = [s["file"] for s in found["label_suspects"]]
    assert set(wrong) <= set(ranked[:5])


@pytest.mark.slow  # 5 s each: the quick suite keeps the audit's smaller cases
def test_a_metadata_trace_is_flagged_and_an_absent_one_is_not(tmp_path):
    absent = audit_of(clean_set(tmp_path / "same"), tmp_path / "a")["metadata"]["trace"]
    present = audit_of(clean_set(tmp_path / "other", fmt={"dog": "jpg"}), tmp_path / "b")["metadata"]["trace"]
    assert not absent["flagged"] and present["flagged"]
    assert present["best_single_features"][0]["feature"] in ("format=JPEG", "format=PNG", "jpeg_quality", "bytes")


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_unreadable_placeholder_and_empty_images_are_listed(tmp_path):
    data = clean_set(tmp_path / "data")
    (data / "train" / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    blank = Image.new("RGB", (20, 20), (200, 200, 200))
    for i in range(3):
        blank.save(data / "train" / "dog" / f"missing_{i}.png")
    found = audit_of(data, tmp_path / "audit")
    assert [u["file"] for u in found["unreadable"]] == ["train/cat/broken.png"]
    assert len(found["placeholders"]) == 1 and len(found["placeholders"][0]["files"]) == 3
    assert {e["file"] for e in found["near_empty"]} == {f"train/dog/missing_{i}.png" for i in range(3)}


@pytest.mark.slow
def test_copies_share_a_split_are_named_and_dedupe_leaves_them_out(tmp_path, capsys):
    data = write_image_folder(tmp_path / "data", ["left", "right"], 12)
    shutil.copy(data / "left" / "left_000.png", data / "left" / "again.png")
    shutil.copy(data / "right" / "right_000.png", data / "left" / "wrong.png")
    Image.open(data / "right" / "right_001.png").save(data / "right" / "resaved.bmp")  # same pixels, other bytes
    args = ["train", str(data), "--model", "tiny_cnn", "--epochs", "1", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "warned")]) == 0
    captured = capsys.readouterr()
    assert "3 groups of copies" in captured.err and "1 labelled differently" in captured.err
    assert "cnnkit audit" in captured.err
    assert "left/wrong.png = right/right_000.png" in captured.out  # the summary names the conflicting copies
    where = {p: name for name, found in json.loads((tmp_path / "warned" / "split.json").read_text())[
        "splits"].items() for p, _ in found}
    for group in (["left/left_000.png", "left/again.png"], ["left/wrong.png", "right/right_000.png"],
                  ["right/right_001.png", "right/resaved.bmp"]):
        assert len({where[p] for p in group}) == 1, group  # never on both sides of a split
    record = json.loads((tmp_path / "warned" / "config.json").read_text())
    assert record["data"]["conflicting"] == [["left/wrong.png", "right/right_000.png"]]
    (data / "right" / "resaved.bmp").unlink()
    assert main([*args, "--out", str(tmp_path / "deduped"), "--dedupe"]) == 0
    record = json.loads((tmp_path / "deduped" / "config.json").read_text())
    dropped = record["data"]["dropped"]
    assert set(dropped) == {"left/left_000.png", "left/wrong.png", "right/right_000.png"}  # first copy of "left" kept
    assert "labelled left and right" in dropped["left/wrong.png"]
    assert dropped["left/left_000.png"] == "a copy of left/again.png"
    kept = {p for split in json.loads((tmp_path / "deduped" / "split.json").read_text())["splits"].values()
            for p, _ in split}
    assert "left/again.png" in kept and not kept & set(dropped)
    assert sum(sum(c.values()) for c in record["data"]["counts"].values()) == 26 - 3
