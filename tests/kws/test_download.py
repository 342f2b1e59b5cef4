"""``download_speech_commands`` against a local HTTP server: never the real URL.

The server is a ``ThreadingHTTPServer`` on 127.0.0.1 with a handler that understands
``Range: bytes=N-`` (or ignores it, or cuts the body short, when a test asks), serving a
small .tar.gz in the Speech Commands layout built from WAVs written with ``write_wav``.
"""

from __future__ import annotations

import hashlib
import io
import re
import socket
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from kws.audio import SAMPLE_RATE, write_wav
from kws.download import DownloadError, download_speech_commands
from kws.speech_commands import index_speech_commands

ARCHIVE_NAME = "speech_commands_v0.01.tar.gz"
DATASET_FILES = (
    "sheila/0a7c2a8d_nohash_0.wav",
    "sheila/0a7c2a8d_nohash_1.wav",
    "bed/1b2c3d4e_nohash_0.wav",
    "cat/5f6a7b8c_nohash_0.wav",
    "_background_noise_/white_noise.wav",
)


@dataclass
class FakeServer:
    """What the handler serves and what it saw; tests change the flags between calls."""

    payload: bytes
    url: str = ""
    ignore_range: bool = False  # answer 200 with the whole file even to a Range request
    cut_after: int | None = None  # send only this many body bytes, then close
    requests: list[dict[str, str]] = field(default_factory=list)


def _handler_for(state: FakeServer) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to ``state`` (http.server instantiates it per request)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(dict(self.headers))
            if self.path != f"/{ARCHIVE_NAME}":
                self.send_error(404)
                return
            data, start = state.payload, 0
            wanted = self.headers.get("Range")
            if wanted and not state.ignore_range:
                match = re.fullmatch(r"bytes=(\d+)-", wanted)
                assert match is not None, wanted
                start = int(match.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body if state.cut_after is None else body[: state.cut_after])

        def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
            pass

    return Handler


def _tar_gz(members: dict[str, bytes]) -> bytes:
    """An in-memory .tar.gz holding ``members`` (name -> content)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def dataset_members(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """WAV bytes for a tiny Speech Commands tree (1 s tones; 2 s of noise)."""
    folder = tmp_path_factory.mktemp("wavs")
    generator = torch.Generator().manual_seed(0)
    members = {}
    for index, name in enumerate(DATASET_FILES):
        seconds = 2 if name.startswith("_background_noise_") else 1
        samples = 0.1 * torch.randn(seconds * SAMPLE_RATE, generator=generator) + 0.01 * index
        write_wav(folder / name, samples)
        members[name] = (folder / name).read_bytes()
    members["README.md"] = b"tiny test copy of the Speech Commands layout\n"
    return members


@pytest.fixture
def server(
    dataset_members: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeServer]:
    """A running local server for the archive; shut down after the test."""
    for variable in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)  # 127.0.0.1 must be reached directly
    state = FakeServer(payload=_tar_gz(dataset_members))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(state))
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/{ARCHIVE_NAME}"
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download(server: FakeServer, dest: Path, sha256: str | None = None) -> Path:
    return download_speech_commands(
        dest, url=server.url, sha256=sha256 or _sha256(server.payload), progress=False
    )


def _assert_extracted(folder: Path, members: dict[str, bytes]) -> None:
    """Every member is there byte for byte, and the folder indexes as Speech Commands."""
    for name, content in members.items():
        assert (folder / name).read_bytes() == content, name
    index = index_speech_commands(folder)
    assert len(index.clips) == 4
    assert sum(clip.label for clip in index.clips) == 2
    assert [path.name for path in index.noise_files] == ["white_noise.wav"]


def test_full_download_verifies_extracts_and_indexes(
    server: FakeServer, dataset_members: dict[str, bytes], tmp_path: Path
) -> None:
    folder = _download(server, tmp_path)
    assert folder == tmp_path / "speech_commands_v0.01"
    _assert_extracted(folder, dataset_members)
    assert len(server.requests) == 1
    assert "Range" not in server.requests[0]
    assert (tmp_path / "speech_commands_v0.01.complete").is_file()
    assert not (tmp_path / ARCHIVE_NAME).exists()
    assert not (tmp_path / f"{ARCHIVE_NAME}.part").exists()


def test_resume_sends_range_and_appends(
    server: FakeServer, dataset_members: dict[str, bytes], tmp_path: Path
) -> None:
    already = len(server.payload) // 3
    (tmp_path / f"{ARCHIVE_NAME}.part").write_bytes(server.payload[:already])
    folder = _download(server, tmp_path)
    assert server.requests[0]["Range"] == f"bytes={already}-"
    _assert_extracted(folder, dataset_members)


def test_server_ignoring_range_restarts_from_zero(
    server: FakeServer, dataset_members: dict[str, bytes], tmp_path: Path
) -> None:
    server.ignore_range = True
    # Garbage in the part proves the 200 body replaced it rather than being appended.
    (tmp_path / f"{ARCHIVE_NAME}.part").write_bytes(b"x" * 100)
    folder = _download(server, tmp_path)
    assert server.requests[0]["Range"] == "bytes=100-"
    _assert_extracted(folder, dataset_members)


def test_complete_part_answered_416_is_verified_and_used(
    server: FakeServer, dataset_members: dict[str, bytes], tmp_path: Path
) -> None:
    (tmp_path / f"{ARCHIVE_NAME}.part").write_bytes(server.payload)
    _assert_extracted(_download(server, tmp_path), dataset_members)


def test_interrupted_download_keeps_part_and_resumes(
    server: FakeServer, dataset_members: dict[str, bytes], tmp_path: Path
) -> None:
    server.cut_after = 1000
    with pytest.raises(DownloadError, match=re.escape(server.url)):
        _download(server, tmp_path)
    part = tmp_path / f"{ARCHIVE_NAME}.part"
    assert part.stat().st_size == 1000
    server.cut_after = None
    folder = _download(server, tmp_path)
    assert server.requests[-1]["Range"] == "bytes=1000-"
    _assert_extracted(folder, dataset_members)


def test_checksum_mismatch_raises_and_leaves_no_archive(server: FakeServer, tmp_path: Path) -> None:
    wrong = "0" * 64
    with pytest.raises(DownloadError) as caught:
        _download(server, tmp_path, sha256=wrong)
    message = str(caught.value)
    assert server.url in message
    assert wrong in message
    assert _sha256(server.payload) in message
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_unreachable_url_raises_download_error(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{ARCHIVE_NAME}"
    with pytest.raises(DownloadError, match=re.escape(url)):
        download_speech_commands(tmp_path, url=url, sha256="0" * 64, progress=False)
    assert not (tmp_path / "speech_commands_v0.01").exists()


def test_second_call_is_a_no_op(server: FakeServer, tmp_path: Path) -> None:
    first = _download(server, tmp_path)
    server.requests.clear()
    assert _download(server, tmp_path) == first
    assert server.requests == []


def test_existing_folder_without_marker_is_not_overwritten(
    server: FakeServer, tmp_path: Path
) -> None:
    (tmp_path / "speech_commands_v0.01").mkdir()
    with pytest.raises(DownloadError, match=re.escape("speech_commands_v0.01")):
        _download(server, tmp_path)
    assert server.requests == []


def test_path_traversal_member_is_refused(server: FakeServer, tmp_path: Path) -> None:
    server.payload = _tar_gz({"sheila/a_nohash_0.wav": b"RIFF", "../escaped.txt": b"pwned"})
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError, match=ARCHIVE_NAME):
        _download(server, dest)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (dest / "speech_commands_v0.01").exists()
