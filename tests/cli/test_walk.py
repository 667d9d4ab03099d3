"""The files `engramdb ingest` reads from a folder: git's ignore rules, binaries and large files skipped."""

from __future__ import annotations

import os
from pathlib import Path

from engramdb.cli.walk import Found, walk


def _tree(root: Path, files: dict[str, bytes | str]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)


def _seen(root: Path, max_bytes: int = 1_000) -> dict[str, str | None]:
    return {f.path: f.skipped for f in walk(root, max_bytes=max_bytes)}


def test_gitignore_rules_nested_negated_and_the_git_folder(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            ".gitignore": "*.log\nbuild/\n!keep.log\n/top-only.txt\n",
            "README.md": "# Hello",
            "app.log": "noise",
            "keep.log": "kept",
            "top-only.txt": "ignored at the root",
            "build/out.txt": "ignored folder",
            "src/main.py": "print(1)",
            "src/top-only.txt": "not at the root: kept",
            "src/.gitignore": "*.tmp\n",
            "src/scratch.tmp": "ignored below src",
            "scratch.tmp": "not ignored at the root",
            ".git/config": "[core]",
            ".git/info/exclude": "secret.txt\n",
            "secret.txt": "excluded locally",
        },
    )
    seen = _seen(tmp_path)
    assert sorted(seen) == [
        ".gitignore",
        "README.md",
        "keep.log",
        "scratch.tmp",
        "src/.gitignore",
        "src/main.py",
        "src/top-only.txt",
    ]
    assert all(reason is None for reason in seen.values())


def test_binary_large_and_outside_links_are_skipped_with_reasons(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("elsewhere")
    root = tmp_path / "repo"
    _tree(root, {"image.png": b"\x89PNG\r\n\x1a\n\x00\x00", "big.txt": "x" * 2_000, "ok.txt": "fine"})
    (root / "link.txt").symlink_to(outside)
    (root / "loop").symlink_to(root / "loop")
    os.mkfifo(root / "pipe")
    _tree(root, {"utf16.txt": "hi".encode("utf-16")})
    found = {f.path: f for f in walk(root, max_bytes=1_000)}
    assert found["image.png"].read(1_000) == Found("image.png", skipped="binary")
    assert found["big.txt"].skipped is not None and "larger than 1,000 bytes" in found["big.txt"].skipped
    assert found["link.txt"].skipped == "a link to outside the folder"
    assert found["loop"].skipped is not None and found["loop"].skipped.startswith("unreadable")
    assert found["pipe"].skipped == "not a regular file"
    assert found["ok.txt"].read(1_000) == b"fine"
    assert found["utf16.txt"].read(1_000) == "hi".encode("utf-16")


def test_a_name_that_is_not_utf8_is_skipped_not_fatal(tmp_path: Path) -> None:
    with open(os.path.join(os.fsencode(tmp_path), b"bad\xff.md"), "wb") as handle:
        handle.write(b"# fine text")
    (tmp_path / "good.md").write_text("# good")
    found = {f.path: f.skipped for f in walk(tmp_path, max_bytes=1_000)}
    assert found == {"bad\ufffd.md": "a name that is not UTF-8", "good.md": None}
