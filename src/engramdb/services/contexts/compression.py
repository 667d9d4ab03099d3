"""One zstandard frame per context, at the level measurement chose; restored in pieces.

Level 3 (zstandard's own default), measured by ``bench/offload.py`` on two cores under a load average of
about 10 (docs/benchmarks.md has the run). Source and docs of the project's virtual environment (1,697
files, 23.8 MB): 3.83× at level 3, 4.13× at 6, 4.38× at 19, compressing at 78, 38 and 1 MB/s. LoCoMo
session transcripts (272, about 3 KB each): 2.06×, 2.10×, 2.13× at 55, 16 and 3 MB/s. Above 3 each step
buys a few per cent of space for several times the time, spent inside the request that offloads; level 1
is a quarter faster on source but loses 4 per cent of the ratio. Decompression runs at 130 to 330 MB/s
whatever the level.

No dictionary yet: one trained on half of the LoCoMo sessions (64 KiB) takes the other half from 2.06× to
2.80×, so small transcripts would gain a third, but a dictionary must be trained per organization, kept
and versioned with the frames that need it; large contexts (the ones that cost storage) gain little, as
the frame's own window already finds their repetition.

The frame carries its content size and a checksum (xxhash64), so a damaged blob fails its restore
instead of returning other bytes.
"""

from __future__ import annotations

from collections.abc import Iterator

import zstandard

CODEC = "zstd"
LEVEL = 3
RESTORE_CHUNK = 65_536  # bytes per piece of a streamed restore


def compress(data: bytes, level: int = LEVEL) -> bytes:
    """``data`` as one zstandard frame (with its size and a checksum)."""
    return zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True).compress(data)


def restore(frame: bytes, *, chunk: int = RESTORE_CHUNK) -> Iterator[bytes]:
    """The original bytes, ``chunk`` at a time (a blocking iterator: run it off the event loop)."""
    yield from zstandard.ZstdDecompressor().read_to_iter(frame, read_size=chunk, write_size=chunk)


def restore_all(frame: bytes) -> bytes:
    return b"".join(restore(frame))
