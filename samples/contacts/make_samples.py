"""Make the tiny media of the contact samples, byte for byte reproducibly; optionally the golden outputs.

    python samples/contacts/make_samples.py             # (re)write the input media
    python samples/contacts/make_samples.py --expected  # also regenerate every case's expected/ (opt-in)

WAV: 16-bit mono PCM at 8 kHz through the stdlib `wave` module, a triangle tone computed with
integers only (no floating point, so every platform writes the same bytes).

OPUS: no Opus encoder is needed. The stream is built here from first principles as a valid Ogg
Opus file (RFC 7845): an `OpusHead` page, an `OpusTags` page, then one audio page of 20 ms CELT
frames, each the 3-byte packet `F8 FF FE` (TOC: CELT fullband 20 ms, mono, one frame; payload: the
encoding of digital silence). Pages carry the Ogg CRC-32 (polynomial 0x04C11DB7, unreflected).
"""

from __future__ import annotations

import struct
import sys
import wave
from pathlib import Path

HERE = Path(__file__).resolve().parent

SILENT_FRAME = bytes([0xF8, 0xFF, 0xFE])
FRAME_SAMPLES = 960  # 20 ms at 48 kHz, the Opus granule clock
PRE_SKIP = 312


def wav_bytes(path: Path, millis: int = 250, period: int = 20, rate: int = 8000) -> None:
    """A short triangle tone (period in samples: 20 = 400 Hz at 8 kHz)."""
    frames = bytearray()
    for n in range(rate * millis // 1000):
        phase = n % period
        level = phase if phase < period // 2 else period - phase  # 0 .. period/2 .. 0
        frames += struct.pack("<h", (level * 4 - period) * 600)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


CRC_TABLE = _crc_table()


def ogg_crc(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ CRC_TABLE[((crc >> 24) & 0xFF) ^ b]
    return crc


def ogg_page(packets: list[bytes], granule: int, serial: int, seq: int, flags: int) -> bytes:
    lacing = bytearray()
    for p in packets:
        lacing += bytes([255] * (len(p) // 255) + [len(p) % 255])
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, serial, seq, 0, len(lacing)) + bytes(lacing)
    page = header + b"".join(packets)
    crc = ogg_crc(page)
    return page[:22] + struct.pack("<I", crc) + page[26:]


def opus_bytes(path: Path, millis: int = 250, serial: int = 0x67697367) -> None:
    frames = millis // 20
    head = struct.pack("<8sBBHIhB", b"OpusHead", 1, 1, PRE_SKIP, 8000, 0, 0)
    vendor = b"gisgate samples"
    tags = struct.pack("<8sI", b"OpusTags", len(vendor)) + vendor + struct.pack("<I", 0)
    pages = [
        ogg_page([head], 0, serial, 0, 0x02),  # beginning of stream
        ogg_page([tags], 0, serial, 1, 0x00),
        ogg_page([SILENT_FRAME] * frames, frames * FRAME_SAMPLES, serial, 2, 0x04),  # end of stream
    ]
    path.write_bytes(b"".join(pages))


MEDIA = {
    "recordings/input/rec-1001.wav": lambda p: wav_bytes(p, 250, 20),
    "recordings/input/rec-1002.opus": lambda p: opus_bytes(p, 200),
    "recordings/input/screen and voice.wav": lambda p: wav_bytes(p, 150, 16),
    "recordings/input/unused.wav": lambda p: wav_bytes(p, 60, 10),
    "talkdesk/input/CA-0001.wav": lambda p: wav_bytes(p, 200, 24),
    "talkdesk/input/CA-0002.opus": lambda p: opus_bytes(p, 100),
}

# case -> CLI arguments after the input paths (see tests/test_contacts_golden.py)
CASES = {
    "recordings": ["--from", "contacts", "--to", "contact"],
    "talkdesk": ["--from", "contacts", "--to", "contact"],
    "textcontacts": ["--from", "textcontacts", "--to", "textcontact"],
}


def make_media() -> None:
    for rel, make in MEDIA.items():
        make(HERE / rel)


def make_expected() -> None:
    sys.path.insert(0, str(HERE.parent.parent))  # this checkout's gisgate
    from click.testing import CliRunner

    from gisgate.cli import cli

    for case, args in CASES.items():
        inputs = sorted(p for p in (HERE / case / "input").iterdir() if p.suffix in (".csv", ".json"))
        out = HERE / case / "expected"
        for old in out.glob("*") if out.exists() else []:
            old.unlink()
        result = CliRunner().invoke(cli, ["convert", *map(str, inputs), *args, "--out", str(out), "-q"])
        if result.exit_code != 0:
            raise SystemExit(f"{case}: {result.output}")


if __name__ == "__main__":
    make_media()
    if "--expected" in sys.argv[1:]:
        make_expected()
