#!/usr/bin/env python3
"""Build `data_samples/` from the redistributable face photos in `facepool/` (see data_samples/README.md).

    python data_samples/build_samples.py [--facepool ../shared/facepool] [--out data_samples] [--seed 0]

What it writes (everything it owns is deleted and rewritten, so a re-run gives the same files):
  real/london/NNN_EE.jpg        face crops of the Face Research Lab London Set (EE = 03 neutral, 08 smiling)
  real/congress/<ID>.jpg        face crops of every US Congress portrait with a detected face (real only), one per
                                person, split by person: 'congress' (held out), 'congress_val', 'congress_train'
  fake/self_blend/NNN_EE.jpg    a self-blended image of each London crop     (sksha.forgery.self_blend)
  fake/face_swap/NNN_EE.jpg     each London crop with the face of another London sitter of the same split
  masks/<method>/NNN_EE.png     the blend mask of each fake (0-255 = blend weight 0-1)
  video/london_NNN_zoom.mp4     a few seconds of slow zoom-and-pan over one London portrait
  manifest.csv                  one row per image: path,label,method,identity,split,source,mask,expression,partner,landmarks

Rules it follows (facepool/README.md): fakes are made from the London set only (its sitters consented to altered
forms); congress portraits are never manipulated here, and no congress-derived image is ever written (they may be
self-blended in memory only, during training, validation and testing); train/val/test hold disjoint London
identities, and each identity's reals and the fakes made from them sit in the same split.

Congress groups: the portraits are taken in one seeded permutation (drawn after the London split, from the same
generator); the first --congress with a face are the held-out split 'congress' (no training or model selection
sees them), the next --congress-val are 'congress_val' (validation, threshold selection), and the rest (or at most
--congress-train) are 'congress_train'. Growing the later groups never changes the held-out one.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # use this checkout's sksha even if another is installed

from sksha.core import load_image  # noqa: E402
from sksha.faces import crop_face, detect_faces, pick_face  # noqa: E402
from sksha.forgery import face_swap, format_landmarks, self_blend  # noqa: E402

LONDON = {"03": ("frl_london_neutral", "neutral"), "08": ("frl_london_smiling", "smiling")}
CONGRESS = "us_congress_225x275"
COLUMNS = ["path", "label", "method", "identity", "split", "source", "mask", "expression", "partner", "landmarks"]
OWNED = ["real", "fake", "masks", "video", "manifest.csv"]  # what a build deletes and rewrites


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--facepool", type=Path, default=REPO.parent / "shared" / "facepool",
                   help="folder with frl_london_neutral/, frl_london_smiling/, us_congress_225x275/ "
                        "(default: ../shared/facepool relative to the repository)")
    p.add_argument("--out", type=Path, default=HERE, help="output folder (default: this script's folder)")
    p.add_argument("--size", type=int, default=160, help="side of the square face crops in pixels")
    p.add_argument("--margin", type=float, default=1.3, help="crop side = margin x the longer side of the face box")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality of the face crops")
    p.add_argument("--congress", type=int, default=100,
                   help="congress portraits in the held-out split 'congress' (the first ones of the seeded order)")
    p.add_argument("--congress-val", type=int, default=100,
                   help="congress portraits in 'congress_val' (the next ones of the seeded order)")
    p.add_argument("--congress-train", type=int, default=None,
                   help="at most this many congress portraits in 'congress_train' (default: all the rest)")
    p.add_argument("--val", type=int, default=16, help="London identities in the val split")
    p.add_argument("--test", type=int, default=16, help="London identities in the test split")
    p.add_argument("--seed", type=int, default=0, help="seed for splits, partners, fakes and the congress order")
    args = p.parse_args(argv)
    for name in ("congress", "congress_val", "congress_train"):
        value = getattr(args, name)
        if value is not None and value < 0: p.error(f"--{name.replace('_', '-')} must be >= 0, got {value}")
    return args


CONGRESS_SPLITS = ("congress", "congress_val", "congress_train")  # held out, validation, training


def congress_split(n_done: int, n_held: int, n_val: int) -> str:
    "The split of the next face-bearing congress portrait when `n_done` came before it in the seeded order."
    return "congress" if n_done < n_held else "congress_val" if n_done < n_held + n_val else "congress_train"


def check_facepool(root: Path) -> None:
    missing = [d for d in [v[0] for v in LONDON.values()] + [CONGRESS] if not (root / d).is_dir()]
    if missing:
        raise SystemExit(f"facepool folder {root} lacks {missing}; pass --facepool PATH "
                         "(the folder described by facepool/README.md)")


def face_crop(path: Path, size: int, margin: float):
    "Detect the largest face in a photo and cut it out; (crop, landmarks, score) or None when no face."
    image = load_image(path)
    face = pick_face(detect_faces(image, backend="retinaface"), "largest")
    if face is None: return None
    crop, landmarks = crop_face(image, face, margin=margin, size=size)
    return crop, landmarks, face.score


def write_jpeg(path: Path, rgb: np.ndarray, quality: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok: raise RuntimeError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())


def write_mask(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", np.clip(np.rint(mask * 255), 0, 255).astype(np.uint8),
                           [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok: raise RuntimeError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())


def london_splits(info_csv: Path, n_val: int, n_test: int, rng: np.random.Generator) -> dict[str, str]:
    "Identity -> split, identities shuffled within each gender so that every split holds both."
    rows = list(csv.DictReader(open(info_csv, newline="")))
    by_gender: dict[str, list[str]] = {}
    for r in rows: by_gender.setdefault(r["face_gender"], []).append(r["face_id"])
    # deal the genders in turn from shuffled piles (proportionally), so each split holds both
    piles = [list(rng.permutation(sorted(ids))) for _, ids in sorted(by_gender.items())]
    sizes = [len(p) for p in piles]
    order = []
    while any(piles):  # next from the pile that is furthest behind its share
        k = min((i for i, p in enumerate(piles) if p), key=lambda i: (sizes[i] - len(piles[i]) + 1) / sizes[i])
        order.append(str(piles[k].pop()))
    split = {}
    for i, fid in enumerate(order):
        split[fid] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return split


def write_video(path: Path, photo: np.ndarray, seconds: float = 3.0, fps: int = 15, side: int = 256) -> int:
    "A slow zoom-in with a small pan over `photo`, written with OpenCV's mp4v codec; returns the frame count."
    h, w = photo.shape[:2]
    n = int(seconds * fps)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (side, side))
    if not writer.isOpened(): raise RuntimeError(f"OpenCV cannot write mp4v video to {path}")
    for i in range(n):
        t = 0.5 - 0.5 * np.cos(np.pi * i / (n - 1))    # ease in and out
        view = (1.0 - 0.25 * t) * min(h, w)            # zoom from the whole photo to 75 % of it
        cx = w / 2 + 0.04 * w * (t - 0.5)              # drift right ...
        cy = h / 2 - 0.03 * h * t                      # ... and up, towards the face
        s = side / view
        M = np.array([[s, 0, side / 2 - s * cx], [0, s, side / 2 - s * cy]], dtype=np.float32)
        frame = cv2.warpAffine(photo, M, (side, side), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT_101)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    cap, read = cv2.VideoCapture(str(path)), 0
    while cap.read()[0]: read += 1
    cap.release()
    if read != n: raise RuntimeError(f"wrote {n} frames to {path} but OpenCV reads back {read}")
    return n


def main(argv=None) -> int:
    args = parse_args(argv)
    t0 = time.time()
    pool, out = args.facepool.resolve(), args.out.resolve()
    check_facepool(pool)
    rng = np.random.default_rng(args.seed)
    for name in OWNED:  # start clean: only the paths this script owns
        p = out / name
        if p.is_dir(): shutil.rmtree(p)
        elif p.exists(): p.unlink()
    rows: list[dict] = []

    # 1. London reals, split by identity
    split = london_splits(pool / LONDON["03"][0] / "london_info.csv", args.val, args.test, rng)
    gender = {r["face_id"]: r["face_gender"] for r in csv.DictReader(open(pool / LONDON["03"][0] / "london_info.csv"))}
    london = {}  # (face_id, expression code) -> (crop, landmarks)
    for code, (folder, expression) in LONDON.items():
        for fid in sorted(split):
            src = pool / folder / f"{fid}_{code}.jpg"
            found = face_crop(src, args.size, args.margin)
            if found is None:
                print(f"  no face in {src}: skipped"); continue
            crop, lm, _ = found
            london[fid, code] = crop, lm
            rel = f"real/london/{fid}_{code}.jpg"
            write_jpeg(out / rel, crop, args.quality)
            rows.append(dict(path=rel, label=0, method="real", identity=f"london_{fid}", split=split[fid],
                             source=f"{folder}/{src.name}", mask="", expression=expression, partner="",
                             landmarks=format_landmarks(lm)))

    # 2. fakes from the London crops only; each fake stays in its identity's split
    for k, ((fid, code), (crop, lm)) in enumerate(sorted(london.items())):
        folder, expression = LONDON[code]
        base = dict(label=1, identity=f"london_{fid}", split=split[fid], source=f"{folder}/{fid}_{code}.jpg",
                    expression=expression, landmarks=format_landmarks(lm))
        fake, mask = self_blend(crop, lm, np.random.default_rng([args.seed, k, 0]))
        write_jpeg(out / f"fake/self_blend/{fid}_{code}.jpg", fake, args.quality)
        write_mask(out / f"masks/self_blend/{fid}_{code}.png", mask)
        rows.append(dict(base, path=f"fake/self_blend/{fid}_{code}.jpg", method="self_blend",
                         mask=f"masks/self_blend/{fid}_{code}.png", partner=""))
        # partner: another identity of the same split, same gender where possible, same expression
        swap_rng = np.random.default_rng([args.seed, k, 1])
        others = [o for (o, c) in london if c == code and o != fid and split[o] == split[fid]]
        same = [o for o in others if gender[o] == gender[fid]]
        partner = str(swap_rng.choice(sorted(same or others)))
        fake, mask = face_swap(crop, lm, *london[partner, code], swap_rng)
        write_jpeg(out / f"fake/face_swap/{fid}_{code}.jpg", fake, args.quality)
        write_mask(out / f"masks/face_swap/{fid}_{code}.png", mask)
        rows.append(dict(base, path=f"fake/face_swap/{fid}_{code}.jpg", method="face_swap",
                         mask=f"masks/face_swap/{fid}_{code}.png", partner=f"london_{partner}"))

    # 3. congress portraits, real only, one per person: held out / val / train in one seeded order
    portraits = sorted((pool / CONGRESS).glob("*.jpg"))
    n_train = len(portraits) if args.congress_train is None else args.congress_train
    n_total = args.congress + args.congress_val + n_train
    n_congress = 0
    for src in [portraits[i] for i in rng.permutation(len(portraits))]:
        if n_congress >= n_total: break
        found = face_crop(src, args.size, args.margin)
        if found is None:
            print(f"  no face in {src}: skipped"); continue
        crop, lm, _ = found
        rel = f"real/congress/{src.stem}.jpg"
        write_jpeg(out / rel, crop, args.quality)  # the real crop only: never a manipulated congress image
        rows.append(dict(path=rel, label=0, method="real", identity=f"congress_{src.stem}",
                         split=congress_split(n_congress, args.congress, args.congress_val),
                         source=f"{CONGRESS}/{src.name}", mask="", expression="portrait", partner="",
                         landmarks=format_landmarks(lm)))
        n_congress += 1
    short = {s: n for s, n in zip(CONGRESS_SPLITS, (args.congress, args.congress_val, args.congress_train))
             if n is not None and sum(r["split"] == s for r in rows) < n}
    if short: print(f"  warning: fewer face-bearing congress portraits than asked for in {sorted(short)}")

    # 4. the sample video: one test-split London sitter, neutral photo
    vid_id = sorted(f for f in split if split[f] == "test")[0]
    n_frames = write_video(out / f"video/london_{vid_id}_zoom.mp4", load_image(pool / LONDON["03"][0] / f"{vid_id}_03.jpg"))

    # 5. manifest
    order = {"train": 0, "val": 1, "test": 2, "congress": 3, "congress_val": 4, "congress_train": 5}
    rows.sort(key=lambda r: (order[r["split"]], r["method"] != "real", r["method"], r["path"]))
    with open(out / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader(); w.writerows(rows)

    counts: dict[tuple[str, str], int] = {}
    for r in rows: counts[r["split"], r["method"]] = counts.get((r["split"], r["method"]), 0) + 1
    print(f"wrote {len(rows)} images to {out} in {time.time() - t0:.1f} s; video: {n_frames} frames")
    ids = {s: len({r['identity'] for r in rows if r['split'] == s}) for s in order}
    for s in order:
        print(f"  {s:14s} identities {ids[s]:4d}  " +
              "  ".join(f"{m} {counts.get((s, m), 0)}" for m in ("real", "self_blend", "face_swap")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
