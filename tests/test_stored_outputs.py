"""What a reader sees without running anything: the outputs stored in the notebooks must be those of a clean,
full run of the current code (refresh them with `python tools/run_notebooks.py --mode full --store`)."""
import base64
import json
import re
import struct
from pathlib import Path

import pytest

NBS = Path(__file__).resolve().parent.parent / "nbs"
NOTEBOOKS = sorted(NBS.glob("*.ipynb"))
MIN_WIDTH = 400    # px: a stored figure narrower than this is unreadable beside the text
MIN_DPI = 100      # matplotlib's default; 72 makes small, blurry figures


def outputs(path: Path):
    "(cell id, cell source, output) for every stored output of the notebook."
    for cell in json.loads(path.read_text())["cells"]:
        for out in cell.get("outputs", []):
            yield cell.get("id"), "".join(cell["source"]), out


def text_of(out: dict) -> str:
    data = out.get("data", {})
    return "".join(out.get("text", "")) + "".join(data.get("text/plain", "")) + "".join(out.get("traceback", []))


def image_bytes(out: dict) -> tuple[str, bytes] | None:
    "('png' or 'jpeg', the decoded bytes) of a figure output, or None."
    for kind in ("png", "jpeg"):
        data = out.get("data", {}).get(f"image/{kind}")
        if data is not None: return kind, base64.b64decode(data if isinstance(data, str) else "".join(data))
    return None


def figure_size(out: dict) -> tuple[int, int] | None:
    "(width, height) in pixels of a PNG or JPEG figure output."
    if (img := image_bytes(out)) is None: return None
    kind, raw = img
    if kind == "png":
        assert raw[:8] == b"\x89PNG\r\n\x1a\n", "image/png output is not a PNG"
        return struct.unpack(">II", raw[16:24])                # IHDR: width, height
    i = 2                                                      # JPEG: walk the segments to the frame header
    while i + 9 < len(raw):
        marker, length = raw[i + 1], struct.unpack(">H", raw[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", raw[i + 5:i + 9])
            return width, height
        i += 2 + length
    raise AssertionError("image/jpeg output without a frame header")


def figure_dpi(out: dict) -> float | None:
    "The resolution a figure declares (PNG pHYs chunk, JPEG JFIF header), in dots per inch; None if none."
    if (img := image_bytes(out)) is None: return None
    kind, raw = img
    if kind == "png":
        i = raw.find(b"pHYs")
        if i < 0: return None
        x, _, unit = struct.unpack(">IIB", raw[i + 4:i + 13])
        return x * 0.0254 if unit == 1 else None               # unit 1: pixels per metre
    i = raw.find(b"JFIF\x00")
    if i < 0: return None
    unit, x = raw[i + 7], struct.unpack(">H", raw[i + 8:i + 10])[0]
    return {1: float(x), 2: x * 2.54}.get(unit)                # 1: dots per inch, 2: per cm


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_error_or_traceback_stored(path):
    bad = [cid for cid, _, out in outputs(path)
           if out.get("output_type") == "error" or "Traceback (most recent call last)" in text_of(out)]
    assert not bad, f"{path.name}: cells {bad} store an error; fix the cell and refresh the outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_frozen_progress_bar_stored(path):
    "A progress widget saved without its state shows its first frame, e.g. '0%| | 0/200', for ever."
    frozen = [cid for cid, _, out in outputs(path)
              if re.search(r"\b0%\|[^|]*\|\s*0/\d+", text_of(out))]
    assert not frozen, (f"{path.name}: cells {frozen} store a progress bar frozen at 0 %; refresh the outputs with "
                        "tools/run_notebooks.py, which stores them without progress bars")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_figures_are_legible(path):
    narrow = [(cid, size) for cid, _, out in outputs(path) if (size := figure_size(out)) and size[0] < MIN_WIDTH]
    assert not narrow, f"{path.name}: figures narrower than {MIN_WIDTH} px (cell, (width, height)): {narrow}"


def test_stored_model_config_is_the_current_one():
    "06 shows a ModelConfig; its stored repr must name every field the class has now."
    import dataclasses
    from sksha.model import ModelConfig
    shown = [text_of(out) for _, _, out in outputs(NBS / "06_model.ipynb") if "ModelConfig(" in text_of(out)]
    assert shown, "06_model stores no ModelConfig repr (the lesson shows one)"
    for text in shown:
        missing = [f.name for f in dataclasses.fields(ModelConfig) if f"{f.name}=" not in text]
        assert not missing, f"06_model stores a ModelConfig repr without {missing}: refresh its outputs"



@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_figures_have_the_resolution_set(path):
    low = [(cid, round(dpi)) for cid, _, out in outputs(path) if (dpi := figure_dpi(out)) and dpi < MIN_DPI - 0.5]
    assert not low, f"{path.name}: figures stored below {MIN_DPI} dpi (cell, dpi): {low}"
    sources = "".join(src for _, src, _ in outputs(path)) + path.read_text()
    for value in re.findall(r"figure\.dpi\W+=\s*(\d+)", sources):
        assert int(value) >= MIN_DPI, f"{path.name} sets figure.dpi = {value}; use {MIN_DPI} or more"
