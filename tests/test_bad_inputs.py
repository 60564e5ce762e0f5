"""Bad inputs through the real command line (issue 13): every command fails early, clearly and safely.

One table per command. Each case gives the arguments, the exit status it must end with, the words its last line on
stderr must contain (the input and the fix), and files that must come out unchanged. Every case must print no
Python traceback, and its message must be one line that starts with `sksha COMMAND:`.

All table cases run in ONE subprocess, the `DRIVER` below: it imports `sksha.cli.main` once (torch takes seconds to
import on two cores) and calls it per case exactly as the `sksha` console script does, with the case's stdout and
stderr captured; an exception that escapes `main` is printed as the interpreter would print it, so a traceback fails
the case. Ctrl-C cases run the `sksha` console script itself and send it a real SIGINT.
"""
import csv
import hashlib
import json
import os
import pickle
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from sksha.datasets import DatasetIndex, load_manifest, save_index
from sksha.faces import camera_move_video

DRIVER = r'''
import contextlib, io, json, os, sys, traceback
from sksha.cli import main
cases, results = json.load(open(sys.argv[1])), []
for case in cases:
    out, err = io.StringIO(), io.StringIO()
    saved_env = dict(os.environ); os.environ.update(case.get("env", {}))
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: code = main(case["argv"])
        except SystemExit as e: code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException: traceback.print_exc(); code = 1      # what the interpreter would show a user
    os.environ.clear(); os.environ.update(saved_env)
    results.append({"code": code, "out": out.getvalue(), "err": err.getvalue()})
json.dump(results, open(sys.argv[2], "w"))
'''

ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", SKSHA_TEST="1", PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
ENV.pop("SKSHA_DEBUG", None)
NO_CUDA = not torch.cuda.is_available()


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest() if Path(path).is_file() else "missing"


def flip_middle(file: Path, n: int = 64) -> None:
    "Flip `n` bytes in the middle of a file: it still parses, it is not the file that was saved."
    data = bytearray(file.read_bytes())
    mid = len(data) // 2
    for i in range(mid, mid + n): data[i] ^= 0xFF
    file.write_bytes(bytes(data))


class Evil:
    "A pickle that runs a command when unpickled: sksha must never unpickle a file it is given."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (os.system, (f"touch {self.marker}",))


# ---- the world the cases run in: a tiny trained checkpoint, inputs, and broken copies -------------------------

TRAIN = ["ci", "--set", "model.arch=tiny", "--set", "train.device=cpu", "--set", "train.progress=false",
         "--set", "train.batch_size=4", "--set", "train.val_every=2", "--set", "train.ckpt_every=1",
         "--set", "train.keep_last=2", "--set", "data.kind=index"]


def faces(split: str, n: int) -> list:
    rows = load_manifest(split)
    return [r for lab in (0, 1) for r in [r for r in rows if r["label"] == lab][: n // 2]]


@pytest.fixture(scope="session")
def world(tmp_path_factory, ci_model_and_config):
    "Everything the tables need, built once: a tiny checkpoint trained on real faces (2 steps) and bad inputs."
    from sksha.train import save_checkpoint, train
    w = tmp_path_factory.mktemp("bad_inputs")
    rows = [dict(r, split="train") for r in faces("train", 8)] + [dict(r, split="val") for r in faces("val", 4)]
    index = save_index(DatasetIndex(rows, {"dataset": "samples", "detector": "retinaface"}), w / "index.csv")
    args = TRAIN[1:]
    overrides = [a for a in args if a != "--set"] + [f"data.index={index}"]
    train("ci", overrides + [f"train.out_dir={w / 'run'}", "train.steps=2"])
    run = w / "run"
    marker = w / "UNPICKLED"                                    # must never exist
    # checkpoints that are broken in one way each (copies of the good one)
    good = run / "checkpoints" / "step_000002"
    for name in ("flipped", "pickled", "notobj", "profile", "random", "nan"):
        shutil.copytree(good, w / f"ck_{name}")
    flip_middle(w / "ck_flipped" / "model.safetensors")
    (w / "ck_pickled" / "model.safetensors").write_bytes(pickle.dumps(Evil(marker)))
    meta = json.loads((w / "ck_pickled" / "checkpoint.json").read_text()); meta.pop("sha256")   # an older checkpoint
    (w / "ck_pickled" / "checkpoint.json").write_text(json.dumps(meta))
    (w / "ck_notobj" / "checkpoint.json").write_text("[1, 2, 3]")
    from safetensors.torch import load_file, save_file
    tensors = load_file(str(w / "ck_nan" / "model.safetensors")); tensors["head.weight"][0, 0] = float("nan")
    save_file(tensors, str(w / "ck_nan" / "model.safetensors"))          # NaN weights in a checkpoint without a digest
    meta = json.loads((w / "ck_nan" / "checkpoint.json").read_text()); meta.pop("sha256")
    (w / "ck_nan" / "checkpoint.json").write_text(json.dumps(meta))
    meta = json.loads((good / "checkpoint.json").read_text())
    (w / "ck_random" / "checkpoint.json").write_text(json.dumps(dict(meta, data={"kind": "random"})))
    model, cfg = ci_model_and_config                            # the real ci network: its model_config is recorded
    import dataclasses
    shutil.rmtree(w / "ck_profile")
    save_checkpoint(w / "ck_profile", model, {"config": cfg, "model_config": dataclasses.asdict(model.config), "step": 1,
                                              "data": {"kind": "index"}})
    meta = json.loads((w / "ck_profile" / "checkpoint.json").read_text()); meta["config"]["profile"] = "cpu-demo"
    (w / "ck_profile" / "checkpoint.json").write_text(json.dumps(meta))
    (w / "model.pt").write_bytes(pickle.dumps(Evil(marker)))
    # inputs for predict
    photos = w / "photos"; photos.mkdir()
    test_rows = faces("test", 2)
    shutil.copy(test_rows[0]["path"], photos / "real.jpg"); shutil.copy(test_rows[1]["path"], photos / "fake.jpg")
    odd = w / "odd"; odd.mkdir()
    (odd / "empty.jpg").touch()                                  # 0 bytes
    (odd / "noise.jpg").write_bytes(os.urandom(3000))           # not an image
    face = cv2.imread(test_rows[0]["path"])
    cv2.imwrite(str(odd / "grey.png"), cv2.cvtColor(cv2.cvtColor(face, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR))
    cv2.imwrite(str(odd / "tiny.png"), cv2.resize(face, (20, 20)))
    full = camera_move_video(cv2.cvtColor(face, cv2.COLOR_BGR2RGB), w / "full.avi", num_frames=24, size=(160, 120))
    (odd / "truncated.avi").write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    # files that are not what they claim
    (w / "a_file").write_text("I am a file, not a folder\n")
    (w / "binary.csv").write_bytes(bytes(range(256)) * 8)
    (w / "maybe.csv").write_text(f"path,label,split\n{rows[0]['path']},0,train\n{rows[1]['path']},maybe,train\n")
    one_class = [dict(r, split="train") for r in faces("train", 8)] + [dict(r, split="val") for r in faces("val", 4) if r["label"] == 1]
    save_index(DatasetIndex(one_class, {"dataset": "one-class"}), w / "one_class_val.csv")
    gone = [dict(r, split="train") for r in faces("train", 8)] + [dict(r, split="val") for r in faces("val", 4)]
    gone[3] = dict(gone[3], path=str(w / "deleted_face.png"))
    save_index(DatasetIndex(gone, {"dataset": "gone"}), w / "missing_file.csv")
    (w / "evil.yaml").write_text(f'profile: !!python/object/apply:os.system ["touch {marker}"]\n')
    (w / "binary.yaml").write_bytes(b"\xff\xfe\x00\x01" * 100)
    (w / "previous.csv").write_text("an earlier result that must survive\n")
    (w / "out_dir.csv").mkdir()
    # runs left in a bad state: a save killed half-way, a damaged last checkpoint, all checkpoints damaged
    for name in ("killed", "corrupt_last", "all_corrupt"): shutil.copytree(run, w / name)
    (w / "killed" / "checkpoints" / ".step_000003.k1ll3d").mkdir()
    (w / "killed" / "checkpoints" / ".step_000003.k1ll3d" / "model.safetensors").write_bytes(b"\0" * 1000)
    (w / "killed" / "checkpoints" / ".last.json.x7f2.tmp").write_text('{"fol')
    flip_middle(w / "corrupt_last" / "checkpoints" / "step_000002" / "model.safetensors")
    for step in ("step_000001", "step_000002"): flip_middle(w / "all_corrupt" / "checkpoints" / step / "model.safetensors")
    # extract-faces and index inputs
    (w / "videos").mkdir(); shutil.copy(full, w / "videos" / "clip.avi")
    (w / "no_videos").mkdir(); (w / "no_videos" / "notes.txt").write_text("no video here")
    lopsided = w / "lopsided"
    for i in range(4):
        (lopsided / "real" / f"r{i}").mkdir(parents=True); shutil.copy(rows[0]["path"], lopsided / "real" / f"r{i}" / "0.jpg")
    (lopsided / "fake" / "swap" / "k0").mkdir(parents=True); shutil.copy(rows[-1]["path"], lopsided / "fake" / "swap" / "k0" / "0.jpg")
    folder = w / "folder"
    for i, r in enumerate(faces("test", 24)):
        d = folder / ("real" if r["label"] == 0 else "fake/swap") / f"v{i}"
        d.mkdir(parents=True); shutil.copy(r["path"], d / "0.jpg")
    (w / "ffpp").mkdir()
    return dict(w=w, run=run, index=index, marker=marker, good=good, photos=photos, odd=odd, train_args=TRAIN + [
        "--set", f"data.index={index}"])


def case(argv, code, *names, guard=(), env=None, traceback=False, check=None):
    "One row of a table: run `sksha ARGV`; expect `code` (or one of a tuple) and `names` in the last stderr line."
    return dict(argv=[str(a) for a in argv], code=code, names=[str(n) for n in names], guard=[str(g) for g in guard],
                env=env or {}, traceback=traceback, check=check)


def tables(world) -> dict:
    w, run, good, photos, odd = world["w"], world["run"], world["good"], world["photos"], world["odd"]
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]   # nothing listens there
    OFFLINE = {"TORCH_HOME": str(w / "empty_torch_home"), "https_proxy": f"http://127.0.0.1:{port}", "no_proxy": ""}
    T = world["train_args"]
    P = ["predict", photos, "--device", "cpu", "--quiet", "--crops"]
    return {
        "predict": [
            case(P + ["--checkpoint", w / "ck_flipped"], 1, "ck_flipped", "model.safetensors is corrupt", "SHA-256"),
            case(P + ["--checkpoint", w / "model.pt"], 2, "model.pt", "is a file", "never loaded"),
            case(P + ["--checkpoint", w / "ck_pickled"], 1, "ck_pickled", "not a safetensors file"),
            case(P + ["--checkpoint", w / "ck_notobj"], 1, "ck_notobj", "checkpoint.json", "not the object"),
            case(P + ["--checkpoint", w / "ck_profile"], 1, "ck_profile", "disagrees with itself", "profile='cpu-demo'"),
            case(P + ["--checkpoint", w / "ck_nan"], 1, "ck_nan", "not finite (NaN or inf)", "head.weight", check="old_warned"),
            case(P + ["--checkpoint", w / "ck_random"], 2, "ck_random", "data.kind=random", "--allow-untrained"),
            case(P + ["--checkpoint", w / "nowhere"], 2, "nowhere", "does not exist", "sksha train"),
            case(P + ["--checkpoint", run, "--csv", photos / "real.jpg"], 2, "--csv", "real.jpg", "one of the inputs",
                 guard=[photos / "real.jpg"]),
            case(P + ["--checkpoint", run, "--csv", photos], 2, "--csv", "is a folder"),
            case(P + ["--checkpoint", run, "--csv", w / "a_file" / "out.csv"], 2, "a_file", "is a file, so nothing",
                 guard=[w / "a_file"]),
            case(P + ["--checkpoint", run, "--json", "/proc/sksha.json"], 2, "--json", "/proc"),
            case(P + ["--checkpoint", run, "--csv", "/dev/full"], 2, "--csv", "/dev"),
            case(P + ["--checkpoint", run, "--csv", w / "previous.csv", "--json", w / "previous.csv"], 2, "both name",
                 guard=[w / "previous.csv"]),
            case(P + ["--checkpoint", run, "--frames", "-5"], 2, "--frames -5"),
            case(P + ["--checkpoint", run, "--threshold", "2"], 2, "--threshold 2"),
            case(P + ["--checkpoint", run, "--csv", w / "previous.csv", "--json", "/sys/x.json"], 2, "/sys",
                 guard=[w / "previous.csv"]),
            case(["predict", odd / "empty.jpg", odd / "noise.jpg", "--checkpoint", run, "--quiet", "--csv", w / "odd.csv"],
                 1, "2 of 2 inputs could not be scored", "2 unreadable", check="odd"),
            case(["predict", odd / "grey.png", odd / "tiny.png", "--checkpoint", run, "--quiet", "--crops", "--csv",
                  w / "noted.csv"], 0, "2 scored with a warning", check="noted"),
            case(["predict", odd / "truncated.avi", "--checkpoint", run, "--quiet", "--frames", "8", "--detector", "haar",
                  "--json", w / "video.json"], 0, "1 scored with a warning", check="video"),
            case(P + ["--checkpoint", run, "--frames", "0", "--debug"], 2, "--frames 0", traceback=True),
        ],
        "train": [
            case(["train", *T, "--set", "optim.lr=-1"], 2, "optim.lr=-1.0: must be a number > 0"),
            case(["train", "ci", "--set", f"data.index={world['index']}"], 2, "data.index=", "data.kind='random'",
                 "--set data.kind=index"),
            case(["train", w / "evil.yaml"], 2, "evil.yaml", "!!python/object/apply:os.system", "remove the tag"),
            case(["train", w / "binary.yaml"], 2, "binary.yaml", "not UTF-8"),
            case(["train", *T, "--set", f"train.out_dir=!!python/object/apply:os.system [touch {world['marker']}]"], 2,
                 "--set train.out_dir=", "YAML tag"),
            case(["train", *T, "--set", f"model.weights={w / 'model.pt'}", "--set", "model.arch=sksha",
                  "--set", f"train.out_dir={w / 'r0'}"], 2, "model.weights", "model.pt"),
            case(["train", *T, "--set", "model.weights=imagenet", "--set", "model.arch=sksha",
                  "--set", f"train.out_dir={w / 'r_imagenet'}"], 2, "model.weights=imagenet", "looks offline",
                 "model.weights=/path/to/xception-43020ad28.pth", env=OFFLINE, check="no_dir:r_imagenet"),
            case(["train", *T, "--set", f"train.out_dir={w / 'a_file'}"], 2, "train.out_dir", "a_file", "is a file",
                 guard=[w / "a_file"]),
            case(["train", *T, "--set", "train.out_dir=/proc/sksha_run"], 2, "train.out_dir", "/proc"),
            case(["train", *T, "--set", f"data.index={w / 'maybe.csv'}", "--set", f"train.out_dir={w / 'r1'}"], 1,
                 "maybe.csv, line 3, column 'label': 'maybe' is not a label", "use 0 (real) or 1 (fake)"),
            case(["train", *T, "--set", f"data.index={w / 'binary.csv'}", "--set", f"train.out_dir={w / 'r2'}"], 1,
                 "binary.csv", "not UTF-8 text"),
            case(["train", *T, "--set", f"data.index={w / 'one_class_val.csv'}", "--set", f"train.out_dir={w / 'r3'}"], 1,
                 "split 'val'", "one_class_val.csv", "only fake faces", check="no_run:r3"),
            case(["train", *T, "--set", f"data.index={w / 'missing_file.csv'}", "--set", f"train.out_dir={w / 'r4'}"], 1,
                 "1 of the 8 image files", "deleted_face.png", "do not exist", check="no_run:r4"),
            case(["train", *T, "--set", f"data.index={w / 'nowhere.csv'}"], 2, "data.index", "nowhere.csv", "no such file"),
            case(["train", *T, "--set", "train.steps=0"], 2, "train.steps=0: must be a positive integer"),
            case(["train", *T, "--set", "train.stepz=3"], 2, "train.stepz", "valid keys"),
            case(["train", "no-such-profile"], 2, "no-such-profile", "shipped profile"),
            case(["train", *T, "--set", "train.device=cuda"] if NO_CUDA else ["train", "no-such-profile"], 2,
                 "cuda" if NO_CUDA else "no-such-profile"),
            case(["train", *T, "--set", f"train.out_dir={w / 'killed'}", "--set", "train.steps=3"], 0,
                 "finished at step 3", check="killed"),
            case(["train", *T, "--set", f"train.out_dir={w / 'corrupt_last'}", "--set", "train.steps=3"], 0,
                 "finished at step 3", check="corrupt_last"),
            case(["train", *T, "--set", f"train.out_dir={w / 'all_corrupt'}", "--set", "train.steps=3"], 1,
                 "step_000002", "no intact earlier checkpoint", "train.out_dir"),
        ],
        "extract-faces": [
            case(["extract-faces", w / "videos", w / "crops1", "--frames", "-5"], 2, "--frames -5", check="no_dir:crops1"),
            case(["extract-faces", w / "videos", w / "a_file"], 2, "OUT_DIR", "a_file", "is a file", guard=[w / "a_file"]),
            case(["extract-faces", w / "videos", "/proc/sksha_faces"], 2, "OUT_DIR", "/proc"),
            case(["extract-faces", w / "videos", w / "videos"], 2, "OUT_DIR", "one of the inputs"),
            case(["extract-faces", w / "nowhere", w / "crops2"], 2, "nowhere", "no video or folder"),
            case(["extract-faces", w / "videos", w / "crops3", "--size", "3"], 2, "--size 3"),
            case(["extract-faces", w / "videos", w / "crops4", "--workers", "0"], 2, "--workers 0"),
            case(["extract-faces", w / "videos", w / "crops5", "--stride", "0"], 2, "--stride 0"),
            case(["extract-faces", w / "no_videos", w / "crops6", "--quiet"], 1, "no video files found", "no_videos"),
        ],
        "index": [
            case(["index", "folder", w / "lopsided", w / "previous.csv", "--detector", "x"], 1, "holds only real faces",
                 "nothing was written", guard=[w / "previous.csv"]),
            case(["index", "ffpp", w / "ffpp", w / "ffpp.csv", "--detector", "x"], 1, "train.json", "--split-dir",
                 check="no_python_names"),
            case(["index", "folder", w / "folder", w / "out_dir.csv"], 2, "OUT.csv", "is a folder"),
            case(["index", "folder", w / "folder", "/proc/sksha.csv"], 2, "OUT.csv", "/proc"),
            case(["index", "deepfakebench", w / "binary.csv", w / "dfb.csv", "--detector", "x"], 1, "binary.csv", "not UTF-8"),
            case(["index", "folder", w / "folder", w / "x.csv", "--val-fraction", "1.5"], 2, "--val-fraction 1.5"),
            case(["index", "folder", w / "folder", w / "x.csv", "--split-dir", w], 2, "--split-dir", "does not apply"),
            case(["index", "folder", w / "folder", w / "folder.csv", "--detector", "x"], 0, "next: sksha train",
                 check="index_ok"),
        ],
        "evaluate": [
            case(["evaluate", run, "--n-boot", "-5"], 2, "--n-boot -5"),
            case(["evaluate", w / "nowhere", "--device", "cpu"], 2, "nowhere", "no checkpoint found"),
            case(["evaluate", w / "ck_flipped", "--device", "cpu", "--out", w / "e.json"], 1, "ck_flipped", "SHA-256"),
            case(["evaluate", run, "--device", "cpu", "--out", w / "out_dir.csv"], 2, "--out", "is a folder"),
            case(["evaluate", run, "--device", "cpu", "--out", "/proc/e.json"], 2, "--out", "/proc"),
            case(["evaluate", run, "--protocol", "cross-dataset", "--test", f"x={w / 'nowhere.csv'}"], 2, "nowhere.csv",
                 "no such file"),
            case(["evaluate", run, "--protocol", "cross-dataset", "--test", f"x={w / 'binary.csv'}", "--device", "cpu",
                  "--out", w / "e2.json"], 1, "binary.csv", "not UTF-8"),
            case(["evaluate", "--protocol", "cross-manipulation", run], 2, "NAME=PATH"),
            case(["evaluate", run, "--level", "sometimes"], 2, "--level", "invalid choice"),
        ],
        "bench": [
            case(["bench", "--profile", "ci", "--batch-size", "0"], 2, "--batch-size must be >= 1"),
            case(["bench", "--profile", "nope"], 2, "--profile", "invalid choice"),
            case(["bench", "--profile", "ci", "--width", "0"], 2, "width"),
            case(["bench", "--profile", "ci", "--device", "cuda" if NO_CUDA else "tpu"], 2, "cuda" if NO_CUDA else "tpu"),
            case(["bench", "--profile", "ci", "--threads", "-2"], 2, "--threads -2"),
            case(["bench", "--profile", "ci", "--variant", "baseline", "--mode", "infer", "--batch-size", "1",
                  "--warmup", "0", "--repeats", "1", "--json", "/proc/sksha_bench.json"], 2, "--json /proc/sksha_bench.json"),
            case(["bench", "--profile", "ci", "--compile", "--warmup", "0"], 2, "--compile needs --warmup"),
            case(["bench", "--profile", "ci", "--variant", "baseline", "--weights", "imagenet"], 2, "weights='imagenet'",
                 "looks offline", "--weights /path/to/xception-43020ad28.pth", env=OFFLINE),
        ],
        "demo": [
            case(["demo", "--profile", "ci", "--minutes", "-1", "--out", w / "d1"], 2, "--minutes"),
            case(["demo", "--profile", "ci", "--steps", "0", "--out", w / "d2"], 2, "--steps"),
            case(["demo", "--profile", "laptop"], 2, "--profile", "invalid choice"),
            case(["demo", "--profile", "ci", "--out", w / "a_file"], 2, "--out", "a_file", "is a file", guard=[w / "a_file"]),
            case(["demo", "--profile", "ci", "--out", "/proc/sksha_demo"], 2, "--out", "/proc"),
            case(["demo", "--profile", "ci", "--robustness-levels", "x", "--out", w / "d3"], 2, "--robustness-levels"),
            case(["demo", "--profile", "ci", "--gradcam", "-1", "--out", w / "d4"], 2, "--gradcam -1"),
            case(["demo", "--profile", "ci", "--device", "cuda" if NO_CUDA else "tpu", "--out", w / "d5"], 2, "--device"),
        ],
    }


@pytest.fixture(scope="session")
def ran(world, tmp_path_factory):
    "Run every table case (one subprocess); return {command: [(case, result, guard digests before)]}."
    all_tables = tables(world)
    flat = [c for rows in all_tables.values() for c in rows]
    before = [{g: digest(g) for g in c["guard"]} for c in flat]
    d = tmp_path_factory.mktemp("driver")
    (d / "cases.json").write_text(json.dumps(flat))
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(d / "cases.json"), str(d / "results.json")], env=ENV,
                          cwd=world["w"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((d / "results.json").read_text())
    out, i = {}, 0
    for name, rows in all_tables.items():
        out[name] = [(c, results[i + k], before[i + k]) for k, c in enumerate(rows)]
        i += len(rows)
    return out


def last_line(err: str) -> str:
    lines = [l for l in re.split(r"[\r\n]", err) if l.strip()]
    return lines[-1] if lines else ""


def check_case(command: str, c: dict, r: dict, before: dict, world) -> None:
    label = " ".join(c["argv"])
    codes = c["code"] if isinstance(c["code"], tuple) else (c["code"],)
    assert r["code"] in codes, f"{label}: exit {r['code']}, expected {c['code']}\n{r['err'][-2000:]}"
    assert ("Traceback" in r["err"] + r["out"]) == c["traceback"], f"{label}: traceback\n{r['err'][-3000:]}"
    where = r["out"] if r["code"] == 0 else r["err"]
    line = last_line(where) if r["code"] else where
    if r["code"]: assert line.startswith(f"sksha {command}:"), f"{label}: last line {line!r}"
    for n in c["names"]: assert n in line, f"{label}: {n!r} not in {line!r}"
    for g, h in before.items(): assert digest(g) == h, f"{label}: {g} was changed"
    assert not world["marker"].exists(), f"{label}: a pickle or YAML tag was executed"
    if c["check"]: EXTRA[c["check"].split(":")[0]](world, r, *c["check"].split(":")[1:])


def _odd(world, r):
    rows = {Path(x["path"]).name: x for x in csv.DictReader(open(world["w"] / "odd.csv"))}
    assert rows["empty.jpg"]["status"] == "unreadable" and "empty.jpg (0 bytes)" in rows["empty.jpg"]["message"]
    assert "cannot decode image file" in rows["noise.jpg"]["message"]
    assert "Assertion" not in r["out"] and "OpenCV" not in r["out"] and all("\n" not in x["message"] for x in rows.values())
    assert all(x["p_fake"] == "" and x["verdict"] == "" for x in rows.values())


def _noted(world, r):
    rows = {Path(x["path"]).name: x for x in csv.DictReader(open(world["w"] / "noted.csv"))}
    assert "greyscale" in rows["grey.png"]["warning"] and "low resolution" in rows["tiny.png"]["warning"]
    assert all(x["status"] == "ok" and x["verdict"] in ("real", "fake") for x in rows.values())
    assert "greyscale" in r["out"]                                  # in the table too


def _video(world, r):
    item = json.loads((world["w"] / "video.json").read_text())["results"]["items"][0]
    assert item["status"] == "ok" and "of the 8 frames asked for could be read" in item["warning"], item


def _no_run(world, r, name):
    assert not (world["w"] / name / "checkpoints").exists(), "the dataset check must come before training"


def _no_dir(world, r, name):
    assert not (world["w"] / name).exists()


def _killed(world, r):
    ck = world["w"] / "killed" / "checkpoints"
    assert "removed 2 unfinished checkpoint write(s)" in r["err"] and ".step_000003.k1ll3d" in r["err"]
    assert not [p for p in ck.iterdir() if p.name.startswith(".")]


def _corrupt_last(world, r):
    assert "step_000002" in r["err"] and "Resuming from the newest intact checkpoint instead" in r["err"]
    assert "step_000001 (step 1)" in r["err"] and "sksha train: warning:" in r["err"]
    from sksha.train import load_weights, TinyDetector
    load_weights(TinyDetector(), world["w"] / "corrupt_last", "last")     # the run ends with intact checkpoints


def _old_warned(world, r):
    assert "records no SHA-256" in r["err"] and "sksha predict: warning:" in r["err"]


def _no_python_names(world, r):
    assert "split_dir=" not in r["err"]


def _index_ok(world, r):
    from sksha.datasets import load_index
    idx = load_index(world["w"] / "folder.csv")
    assert all(len({x["label"] for x in idx.filter(split=s)}) == 2 for s in ("train", "val", "test"))


EXTRA = dict(old_warned=_old_warned, odd=_odd, noted=_noted, video=_video, no_run=_no_run, no_dir=_no_dir, killed=_killed,
             corrupt_last=_corrupt_last, no_python_names=_no_python_names, index_ok=_index_ok)


@pytest.mark.parametrize("command", ["predict", "train", "extract-faces", "index", "evaluate", "bench", "demo"])
def test_bad_inputs(command, ran, world):
    for c, r, before in ran[command]: check_case(command, c, r, before, world)


# ---- Ctrl-C: the sksha script itself, a real SIGINT -------------------------------------------------------------

def _interrupt(cmd, ready, env=ENV, timeout=180):
    "Start `cmd`, wait until `ready(stderr so far)` is true, send SIGINT; return (exit status, stdout, stderr)."
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # even if our shell ignores it
    err, out = [], []
    def pump(stream, into):
        for chunk in iter(lambda: stream.read(1), ""): into.append(chunk)
    threads = [threading.Thread(target=pump, args=(proc.stderr, err), daemon=True),
               threading.Thread(target=pump, args=(proc.stdout, out), daemon=True)]
    for t in threads: t.start()
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not ready("".join(err)): time.sleep(0.05)
    assert proc.poll() is None, "the command ended before it could be interrupted:\n" + "".join(err)[-2000:]
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=120)
    for t in threads: t.join(timeout=10)
    return code, "".join(out), "".join(err)


def test_ctrl_c_in_predict_keeps_what_was_scored(world, tmp_path):
    sksha = shutil.which("sksha")
    frames = tmp_path / "frames"; frames.mkdir()
    face = cv2.imread(str(world["photos"] / "real.jpg"))
    scene = cv2.copyMakeBorder(cv2.resize(face, (240, 240)), 120, 120, 200, 200, cv2.BORDER_CONSTANT, value=(90, 120, 90))
    for i in range(80): cv2.imwrite(str(frames / f"{i:03d}.jpg"), scene)
    (tmp_path / "results.csv").write_text("an earlier file\n")
    code, out, err = _interrupt([sksha, "predict", frames, "--checkpoint", world["run"], "--device", "cpu",
                                 "--csv", tmp_path / "results.csv", "--json", tmp_path / "results.json"],
                                ready=lambda e: re.search(r"\b([2-9]|\d\d)/80\b", e) is not None)
    assert code == 130, err[-2000:]
    assert "Traceback" not in err + out
    line = last_line(err)
    assert line.startswith("sksha predict: interrupted: stopped by Ctrl-C after") and "results.csv" in line
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    done = [r for r in rows if r["status"] == "ok"]
    assert len(rows) == 80 and done and len(done) < 80
    assert {r["status"] for r in rows} == {"ok", "interrupted"}
    saved = json.loads((tmp_path / "results.json").read_text())["results"]
    assert saved["partial"] is True and saved["summary"]["interrupted"] == 80 - len(done)
    assert f"after {len(done)} of 80 inputs" in line


def test_ctrl_c_in_train_says_what_is_kept_and_resumes(world, tmp_path):
    sksha = shutil.which("sksha")
    out_dir = tmp_path / "run"
    cmd = [sksha, "train", *world["train_args"], "--set", f"train.out_dir={out_dir}", "--set", "train.steps=100000",
           "--set", "train.val_every=0", "--set", "train.ckpt_every=2"]
    last = out_dir / "checkpoints" / "last.json"
    code, out, err = _interrupt([str(c) for c in cmd], ready=lambda e: last.is_file())
    assert code == 130 and "Traceback" not in err + out, err[-2000:]
    line = last_line(err)
    assert line.startswith("sksha train: interrupted: stopped by Ctrl-C; checkpoint") and "is kept; run the same command again" in line
    from sksha.train import load_weights, TinyDetector, resolve_checkpoint
    folder = resolve_checkpoint(out_dir, "last")
    assert str(folder) in line and load_weights(TinyDetector(), folder)["step"] >= 2
