"""Pseudo-fake generators and datasets (sksha.forgery): masks, locality, seeds, the consent rule, item contract."""
import numpy as np
import pytest
import torch

from sksha.forgery import (METHODS, FixedPseudoFakeDataset, OnlineSelfBlendDataset, PairedSampler, check_face,
                           face_swap, is_consented, load_face, london_reals, make_forgery, parse_landmarks,
                           self_blend)
from sksha.datasets import load_manifest


@pytest.fixture(scope="module")
def train_rows():
    return london_reals("train")


@pytest.fixture(scope="module")
def congress_row():
    return next(r for r in load_manifest() if r["split"] == "congress")


def two_faces(rows):
    a = rows[0]
    b = next(r for r in rows if r["identity"] != a["identity"])
    return a, b


@pytest.mark.parametrize("method", METHODS)
def test_mask_range_and_locality(train_rows, method):
    a, b = two_faces(train_rows)
    face, _ = load_face(a)
    for seed in range(10):
        fake, mask = make_forgery(method, a, seed, partner=b if method == "face_swap" else None)
        assert fake.shape == face.shape and fake.dtype == np.uint8
        assert mask.shape == face.shape[:2] and mask.dtype == np.float32
        assert 0 <= mask.min() and mask.max() <= 1 and mask.max() > 0
        diff = np.abs(fake.astype(int) - face).max(2)
        assert diff[mask == 0].max() == 0                  # unchanged where nothing was blended
        assert diff[mask >= mask.max() / 2].mean() > 1      # and changed where it was


@pytest.mark.parametrize("method", METHODS)
def test_seeds_reproducible(train_rows, method):
    a, b = two_faces(train_rows)
    kw = dict(partner=b) if method == "face_swap" else {}
    one, two = make_forgery(method, a, 123, **kw), make_forgery(method, a, 123, **kw)
    assert np.array_equal(one.image, two.image) and np.array_equal(one.mask, two.mask)
    g1, g2 = np.random.default_rng(9), np.random.default_rng(9)
    assert np.array_equal(make_forgery(method, a, g1, **kw).image, make_forgery(method, a, g2, **kw).image)
    assert not np.array_equal(make_forgery(method, a, 1, **kw).mask, make_forgery(method, a, 2, **kw).mask)


def test_self_blend_stays_mild(train_rows):
    "Regression on the recipe's mild jitter: the mean change inside the mask is ~13 grey levels, not tens."
    changes = []
    for i in range(40):
        face, lm = load_face(train_rows[i % len(train_rows)])
        fake, mask = self_blend(face, lm, i)
        changes.append((np.abs(fake.astype(float) - face).mean(2) * mask).sum() / mask.sum())
    assert 6 < np.mean(changes) < 22, np.mean(changes)


def test_congress_only_self_blended_in_memory(train_rows, congress_row):
    "Congress portraits: self-blends (in memory) yes; face swaps, stored fakes and anything else no."
    assert not is_consented(congress_row)
    assert make_forgery("self_blend", congress_row, rng=0).image.shape == load_face(congress_row)[0].shape
    assert len(OnlineSelfBlendDataset([congress_row])) == 2                         # training pairs may use them
    with pytest.raises(ValueError, match="never manipulated"): make_forgery("face_swap", congress_row, partner=train_rows[0])
    with pytest.raises(ValueError, match="never manipulated"):
        make_forgery("face_swap", train_rows[0], partner=congress_row)
    with pytest.raises(ValueError, match="never manipulated"): FixedPseudoFakeDataset(train_rows[:4] + [congress_row])
    fake_row = next(r for r in load_manifest() if r["method"] != "real")
    with pytest.raises(ValueError, match="never manipulated|may not be manipulated"): make_forgery("self_blend", fake_row)
    stranger = {**train_rows[0], "source": "holiday/uncle.jpg"}                   # a photo nobody cleared
    with pytest.raises(ValueError, match="may not be manipulated"): OnlineSelfBlendDataset([stranger])


def test_swap_partners_are_other_london_identities(train_rows):
    with pytest.raises(ValueError, match="partner"): make_forgery("face_swap", train_rows[0])
    with pytest.raises(ValueError, match="another identity"):
        make_forgery("face_swap", train_rows[0], partner=train_rows[0])
    ds = FixedPseudoFakeDataset(train_rows[:10], image_size=32)
    for k, row in enumerate(ds.rows):
        p = ds.partner(k)
        assert is_consented(p) and p["identity"] != row["identity"] and p["identity"].startswith("london_")


def test_bad_inputs(train_rows):
    face, lm = load_face(train_rows[0])
    with pytest.raises(ValueError, match="RGB uint8"): check_face(face[..., 0], lm)
    with pytest.raises(ValueError, match="5 \\(x, y\\) points"): self_blend(face, lm[:4])
    with pytest.raises(ValueError, match="crop's pixel coordinates"): self_blend(face, lm * 10)
    with pytest.raises(ValueError, match="10 numbers"): parse_landmarks("1 2")
    with pytest.raises(ValueError, match="METHODS"): make_forgery("deepfakes", train_rows[0])
    with pytest.raises(ValueError, match="congress"): london_reals("congress")
    with pytest.raises(ValueError, match="empty"): OnlineSelfBlendDataset([])
    with pytest.raises(ValueError, match="even"): PairedSampler(range(3))
    with pytest.raises(ValueError, match="unknown"): FixedPseudoFakeDataset(train_rows[:4], methods=("morph",))
    with pytest.raises(ValueError, match="2 identities"): FixedPseudoFakeDataset(train_rows[:1])
    other = np.zeros((40, 40, 3), np.uint8)
    with pytest.raises(ValueError, match="RGB uint8"): face_swap(face, lm, other.astype(float), lm)


def check_item(item, size):
    assert set(item) >= {"image", "label", "method", "identity", "video", "path"}
    assert item["image"].shape == (3, size, size) and item["image"].dtype == torch.float32
    assert -1 <= item["image"].min() and item["image"].max() <= 1
    assert item["label"].dtype == torch.float32 and item["label"].item() == float(item["method"] != "real")
    assert item["video"].startswith(item["method"] + "/")


def test_online_dataset(train_rows):
    ds = OnlineSelfBlendDataset(train_rows[:6], image_size=48)
    assert len(ds) == 12
    for i in range(4): check_item(ds[i], 48)
    assert [ds[i]["method"] for i in range(4)] == ["real", "self_blend", "real", "self_blend"]
    torch.manual_seed(0); a = ds[1]["image"]
    torch.manual_seed(0); b = ds[1]["image"]
    assert torch.equal(a, b)                               # repeatable under a torch seed ...
    assert not torch.equal(ds[1]["image"], ds[1]["image"])  # ... and fresh on every call
    loader = torch.utils.data.DataLoader(ds, batch_size=4, sampler=PairedSampler(ds, torch.Generator().manual_seed(0)))
    batch = next(iter(loader))
    assert batch["image"].shape == (4, 3, 48, 48) and batch["label"].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert batch["identity"][0] == batch["identity"][1]


def test_fixed_dataset_reproducible(train_rows):
    rows = london_reals("val")[:6]
    a, b = FixedPseudoFakeDataset(rows, 40, seed=3), FixedPseudoFakeDataset(rows, 40, seed=3)
    c = FixedPseudoFakeDataset(rows, 40, seed=4)
    assert len(a) == 18
    for i in range(len(a)):
        check_item(a[i], 40)
        assert torch.equal(a[i]["image"], b[i]["image"])
    assert not torch.equal(a[1]["image"], c[1]["image"])
    only = FixedPseudoFakeDataset(rows, 40, methods=("face_swap",))
    assert [only[i]["method"] for i in range(4)] == ["real", "face_swap", "real", "face_swap"]
