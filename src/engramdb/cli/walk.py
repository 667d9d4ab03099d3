"""Which files of a folder `engramdb ingest` reads: git's ignore rules, no binaries, nothing too large.

The rules a git working tree would apply: every ``.gitignore`` (a nested one applies below its folder,
and a later rule wins, so ``!keep.log`` re-includes), ``.git/info/exclude``, and the ``.git`` folder
itself. A file is skipped, with the reason, when it is binary (a NUL byte in its first 8 KiB), larger
than the limit, unreadable, or a link leading outside the folder.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pathspec import GitIgnoreSpec

SNIFF_BYTES = 8192
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")  # UTF-16 text is full of NUL bytes and still text


@dataclass(frozen=True)
class Found:
    """A file to ingest or to skip (``skipped`` says why); ``path`` is relative, with ``/``. Its bytes are
    read only when asked (``read``), so a walk of a large tree holds names, not contents."""

    path: str
    source: Path | None = None
    skipped: str | None = None

    def read(self, max_bytes: int) -> Found | bytes:
        """The file's bytes, or a skipped ``Found`` saying why they cannot be used."""
        assert self.source is not None
        try:
            with self.source.open("rb") as handle:
                data = handle.read(max_bytes + 1)
        except OSError as exc:
            return Found(self.path, skipped=f"unreadable: {exc.strerror or exc}")
        if len(data) > max_bytes:
            return Found(self.path, skipped=f"larger than {max_bytes:,} bytes")
        if b"\x00" in data[:SNIFF_BYTES] and not data.startswith(_UTF16_BOMS):
            return Found(self.path, skipped="binary")
        return data


@dataclass(frozen=True)
class _Rules:
    base: str  # the folder (relative, "" for the root) whose .gitignore this is
    spec: GitIgnoreSpec

    def verdict(self, rel: str, is_dir: bool) -> bool | None:
        """True: ignored, False: re-included by a negation, None: these rules say nothing."""
        if self.base and not rel.startswith(self.base + "/"):
            return None
        inner = rel[len(self.base) + 1 :] if self.base else rel
        result = self.spec.check_file(inner + ("/" if is_dir else ""))
        return None if result.include is None else bool(result.include)


def _load(path: Path, base: str) -> _Rules | None:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return _Rules(base, GitIgnoreSpec.from_lines(lines)) if lines else None


def _ignored(rules: list[_Rules], rel: str, is_dir: bool) -> bool:
    ignored = False
    for rule in rules:  # outer folders first: a deeper .gitignore has the last word
        verdict = rule.verdict(rel, is_dir)
        if verdict is not None:
            ignored = verdict
    return ignored


def walk(root: Path, *, max_bytes: int) -> Iterator[Found]:
    """Every file under ``root`` that git would track, in a stable order (sorted per folder); nothing is
    read yet (see ``Found.read``). Links to folders are not followed (no loops)."""
    root = root.resolve()
    rules: list[_Rules] = []
    exclude = root / ".git" / "info" / "exclude"
    if exclude.is_file() and (loaded := _load(exclude, "")):
        rules.append(loaded)
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        rel_dir = "" if here == root else here.relative_to(root).as_posix()
        if (here / ".gitignore").is_file() and (loaded := _load(here / ".gitignore", rel_dir)):
            rules.append(loaded)
        dirs[:] = sorted(
            d for d in dirs if d != ".git" and not _ignored(rules, f"{rel_dir}/{d}".lstrip("/"), is_dir=True)
        )
        for name in sorted(files):
            rel = f"{rel_dir}/{name}".lstrip("/")
            if _ignored(rules, rel, is_dir=False):
                continue
            yield _check(root, here / name, rel, max_bytes)


def _check(root: Path, path: Path, rel: str, max_bytes: int) -> Found:
    """What can be said of a file without reading it."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return Found(
            rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), skipped="a name that is not UTF-8"
        )
    try:
        if path.is_symlink() and not Path(os.path.realpath(path)).is_relative_to(root):
            return Found(rel, skipped="a link to outside the folder")
        info = path.stat()
    except (OSError, RuntimeError) as exc:  # a dangling link, a link loop, no permission
        return Found(rel, skipped=f"unreadable: {getattr(exc, 'strerror', None) or exc}")
    if not stat.S_ISREG(info.st_mode):
        return Found(rel, skipped="not a regular file")
    if info.st_size > max_bytes:
        return Found(rel, skipped=f"larger than {max_bytes:,} bytes ({info.st_size:,})")
    return Found(rel, source=path)
