"""Records files up, result files down.

Up: `POST /uploads` for a ticket, then the file PUT to its presigned URL with exactly the ticket's
headers, streamed from disk.

Down: each result file streamed to a temporary file beside its target, hashed on the way, and only
renamed into place once its size and SHA-256 are the job's; a mismatch removes it and is an error.
Nothing is ever held whole in memory.
"""

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from jobrelay_cli.client import CHUNK_BYTES, ApiClient
from jobrelay_cli.errors import CliError, UsageError
from jobrelay_cli.models import ResultFile
from jobrelay_cli.output import console

RECORDS_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def records_format(path: Path, given: str | None) -> str:
    """The `format` param of a records file: --format, else its extension."""
    if given:
        return given
    try:
        return RECORDS_FORMATS[path.suffix.lower()]
    except KeyError:
        raise UsageError(
            f"cannot tell the format of {path.name} from its extension: name it .csv, .jsonl or .ndjson, or give --format"
        ) from None


def upload_records(client: ApiClient, path: Path, show_progress: bool) -> str:
    """Uploads the records file; its s3_uri, for the job's `source`."""
    ticket = client.call("POST", "/uploads", body={"filename": path.name})
    with transfer_progress(show_progress, f"uploading {path.name}", path.stat().st_size) as progress:
        client.upload(ticket["upload_url"], ticket.get("headers") or {}, path, progress)
    return str(ticket["s3_uri"])


def download_verified(client: ApiClient, file: ResultFile, directory: Path, show_progress: bool) -> Path:
    """Downloads one result file into `directory` under its own name, checked against its size and SHA-256."""
    target = directory / safe_name(file.name)
    directory.mkdir(parents=True, exist_ok=True)
    handle, temporary_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".part")
    temporary = Path(temporary_name)
    try:
        digest, size = hashlib.sha256(), 0
        with os.fdopen(handle, "wb") as sink, client.download(file.download_url) as response:
            with transfer_progress(show_progress, file.name, file.size) as progress:
                for chunk in response.iter_bytes(CHUNK_BYTES):
                    sink.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    progress(size)
            sink.flush()
            os.fsync(sink.fileno())
        check_integrity(file, size, digest.hexdigest())
        temporary.chmod(0o666 & ~_umask())  # mkstemp makes it private; the result is an ordinary file
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


def stream_records(client: ApiClient, file: ResultFile) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON Lines result file, one at a time as they arrive; its size and
    SHA-256 checked at the end (an error then says the lines already given may be wrong)."""
    digest, size = hashlib.sha256(), 0
    with client.download(file.download_url) as response:
        pending = b""
        for chunk in response.iter_bytes(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
            *lines, pending = (pending + chunk).split(b"\n")
            yield from (_record(line) for line in lines if line.strip())
        if pending.strip():
            yield _record(pending)
    check_integrity(file, size, digest.hexdigest(), after="the records above may be incomplete or wrong")


def check_integrity(file: ResultFile, size: int, sha256: str, after: str = "the partial file was removed") -> None:
    if size != file.size or sha256 != file.sha256.lower():
        raise CliError(
            f"{file.name} does not match the job's record of it; {after}",
            details={"expected": {"size": file.size, "sha256": file.sha256}, "received": {"size": size, "sha256": sha256}},
        )


def safe_name(name: str) -> str:
    """A result file's name as a plain file name: the API names them, but never trust a path."""
    plain = Path(name).name
    if plain in ("", ".", "..") or plain != name:
        raise CliError(f"the job names a result file {name!r}, which is not a plain file name")
    return plain


@contextmanager
def transfer_progress(enabled: bool, description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on the terminal (none elsewhere); yields `update(bytes_so_far)`."""
    if not enabled:
        yield lambda _done: None
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=console())
    with bar:
        task = bar.add_task(description, total=total)
        yield lambda done: bar.update(task, completed=done)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _record(line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        return {"unreadable_line": line.decode("utf-8", "replace")[:200]}
    return value if isinstance(value, dict) else {"value": value}
