"""scripts/screenshots.py: real Apache + headless chromium → PNGs in artifacts/screenshots/."""
from __future__ import annotations

import importlib.util
import struct
import subprocess
import sys
import zlib

import pytest

from lkserver import ROOT

OUT = ROOT / "artifacts" / "screenshots"


def _script():
    spec = importlib.util.spec_from_file_location("latchkey_screenshots", ROOT / "scripts" / "screenshots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = _script()
# Every page, one error page and one outcome variant, at both widths, in en and fr; plus dark mode.
PAGES = ["login", "forgot", "forgot-sent", "reset", "reset-done", "expired", "account", "account-done",
         "error-404", "login.invalid-login"]
SIZES = {"desktop": (1280, 900), "mobile": (375, 812)}
EXPECTED = {f"{page}-{locale}-{size}.png": dims
            for page in PAGES for locale in ("en", "fr") for size, dims in SIZES.items()}
EXPECTED["login-en-desktop-dark.png"] = (1280, 900)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def screenshots_run(latchkey_path):
    for name in EXPECTED:
        (OUT / name).unlink(missing_ok=True)
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "screenshots.py")], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    return result


def png_header(data: bytes) -> tuple[int, int, int, int, int]:
    """(width, height, bit depth, colour type, interlace) from the IHDR chunk."""
    assert data[:8] == PNG_SIGNATURE, "not a PNG signature"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13, "first chunk is not IHDR"
    width, height = struct.unpack(">II", data[16:24])
    depth, colour, _, _, interlace = data[24:29]
    crc = struct.unpack(">I", data[29:33])[0]
    assert crc == zlib.crc32(data[12:29]) & 0xFFFFFFFF, "IHDR CRC mismatch"
    return width, height, depth, colour, interlace


def png_chunks(data: bytes):
    pos = 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        yield kind, data[pos + 8:pos + 8 + length]
        pos += 12 + length


def mean_brightness_of_top_rows(data: bytes, rows: int = 8) -> float:
    """Mean of R, G, B over the first `rows` rows (8-bit RGB/RGBA, non-interlaced)."""
    width, _, depth, colour, interlace = png_header(data)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = zlib.decompressobj().decompress(b"".join(c for k, c in png_chunks(data) if k == b"IDAT"),
                                          (stride + 1) * rows)
    prev = bytearray(stride)
    total = count = 0
    for r in range(rows):
        line = raw[r * (stride + 1):(r + 1) * (stride + 1)]
        ftype, cur = line[0], bytearray(line[1:])
        for i in range(stride):
            a = cur[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                cur[i] = (cur[i] + a) & 0xFF
            elif ftype == 2:
                cur[i] = (cur[i] + b) & 0xFF
            elif ftype == 3:
                cur[i] = (cur[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        for i in range(0, stride, bpp):
            total += cur[i] + cur[i + 1] + cur[i + 2]
            count += 3
        prev = cur
    return total / count


def test_script_shoots_every_expected_page():
    listed = {name: size for name, _, size, _ in SCRIPT.SHOTS}
    missing = sorted(set(EXPECTED) - set(listed))
    assert not missing, f"scripts/screenshots.py does not shoot {missing}"
    for name, size in EXPECTED.items():
        assert listed[name] == size, (name, listed[name])


def test_screenshot_script_succeeds_and_lists_its_files(screenshots_run):
    result = screenshots_run
    assert result.returncode == 0, f"screenshots.py failed:\n{result.stdout}\n{result.stderr}"
    for name in EXPECTED:
        assert name in result.stdout, f"{name} not reported:\n{result.stdout}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_screenshot_is_a_png_of_the_expected_size(screenshots_run, name):
    path = OUT / name
    assert path.is_file(), f"{path} missing; script output:\n{screenshots_run.stdout}{screenshots_run.stderr}"
    data = path.read_bytes()
    width, height, *_ = png_header(data)
    assert (width, height) == EXPECTED[name], f"{name}: {width}×{height}"
    assert any(kind == b"IEND" for kind, _ in png_chunks(data)), "PNG has no IEND chunk (truncated)"


def test_dark_mode_screenshot_is_darker_than_light(screenshots_run):
    light, dark = OUT / "login-en-desktop.png", OUT / "login-en-desktop-dark.png"
    assert light.is_file() and dark.is_file()
    light_level = mean_brightness_of_top_rows(light.read_bytes())
    dark_level = mean_brightness_of_top_rows(dark.read_bytes())
    assert dark_level < light_level - 64, f"dark page background ({dark_level:.0f}) not darker than light ({light_level:.0f})"


@pytest.mark.parametrize("page", PAGES)
def test_french_screenshots_show_a_different_page_than_english(screenshots_run, page):
    for size in ("desktop", "mobile"):
        en = (OUT / f"{page}-en-{size}.png").read_bytes()
        fr = (OUT / f"{page}-fr-{size}.png").read_bytes()
        assert en != fr, f"en and fr {size} screenshots of {page} are identical"


@pytest.mark.parametrize("page", PAGES)
def test_mobile_and_desktop_screenshots_differ(screenshots_run, page):
    assert (OUT / f"{page}-en-desktop.png").read_bytes() != (OUT / f"{page}-en-mobile.png").read_bytes()
