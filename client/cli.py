"""``python -m client``: submit, follow, read, list, cancel and retry jobs, upload their input files and
download their artifacts from a shell.

Exit codes: 0 done (a followed job completed), 1 a followed job failed or was cancelled, or the API
refused (``error: <detail>`` on stderr), 2 usage, 130 interrupted (Ctrl-C; the job goes on).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

import httpx

from client.errors import ApiError
from client.models import Job
from client.sync import Client

DEFAULT_URL = "http://127.0.0.1:8000"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=os.environ.get("RAYJOBS_URL", DEFAULT_URL),
                        help="the service (default: $RAYJOBS_URL or %(default)s)")
    common.add_argument("--token", default=os.environ.get("RAYJOBS_TOKEN"),
                        help="a JWT or API token (default: $RAYJOBS_TOKEN); demo jobs need none")
    common.add_argument("--interface", metavar="ADDRESS",
                        help="the local address to connect from (as curl's --interface)")
    common.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP request (default: 30)")
    demo = argparse.ArgumentParser(add_help=False)
    demo.add_argument("--demo", action="store_true", help="a demo job (no token; /v1/jobs/demo)")
    follow = argparse.ArgumentParser(add_help=False)
    follow.add_argument("--wait-timeout", type=float, help="give up waiting after this many seconds")

    prog = "python -m client" if sys.argv[0].endswith("__main__.py") else None  # else the script's name
    parser = argparse.ArgumentParser(prog=prog, description="Ray Jobs from the command line.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    submit = commands.add_parser("submit", parents=[common, demo, follow], help="start a job, print its id")
    submit.add_argument("--kind", default="range_sum", help="job kind (default: range_sum; see GET /v1/kinds)")
    submit.add_argument("--params", type=_json_object, metavar="JSON",
                        help="the kind's params as a JSON object, or @FILE to read it from a file")
    submit.add_argument("--n", type=int, help="the range kinds' n: compute over 1..n (with --params: params.n)")
    submit.add_argument("--chunks", type=int, help="parallel chunks (Ray tasks; default: the kind's)")
    submit.add_argument("--no-cache", action="store_true", help="always compute afresh (use_cache: false)")
    submit.add_argument("--priority", choices=("high", "normal", "low"),
                        help="scheduling priority (default: the server's, normal)")
    submit.add_argument("--follow", action="store_true", help="show progress until the job ends, then the result")
    submit.add_argument("--idempotency-key", help="the key to send (default: a fresh uuid4)")
    get = commands.add_parser("get", parents=[common, demo], help="print a job as JSON")
    get.add_argument("job_id")
    wait = commands.add_parser("wait", parents=[common, demo, follow], help="follow a job until it ends")
    wait.add_argument("job_id")
    cancel = commands.add_parser("cancel", parents=[common], help="cancel a pending or running job")
    cancel.add_argument("job_id")
    retry = commands.add_parser("retry", parents=[common, follow],
                                help="run a failed or cancelled job again (its completed chunks are reused)")
    retry.add_argument("job_id")
    retry.add_argument("--follow", action="store_true", help="show progress until the new job ends")
    listing = commands.add_parser("list", parents=[common], help="your jobs, newest first")
    listing.add_argument("--status", choices=["pending", "running", "completed", "failed", "cancelled"])
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--offset", type=int, default=0)
    upload = commands.add_parser("upload", parents=[common], help="upload an input file, print its upload_id")
    upload.add_argument("file", help="the file to upload (streamed)")
    upload.add_argument("--filename", help="the name to give it (default: the file's)")
    upload.add_argument("--content-type", help="its media type (default: guessed from the name)")
    artifacts = commands.add_parser("artifacts", parents=[common, demo], help="list the files a job wrote")
    artifacts.add_argument("job_id")
    download = commands.add_parser("download", parents=[common, demo],
                                   help="download one of a job's files (its sha256 checked)")
    download.add_argument("job_id")
    download.add_argument("name", help="the artifact's name (see `artifacts`)")
    download.add_argument("-o", "--output", metavar="PATH",
                          help="where to write it: a file or a folder (default: its base name here); - for stdout")
    return parser


def _json_object(text: str) -> dict:
    """``--params``: a JSON object, or ``@FILE`` holding one."""
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as error:
            raise argparse.ArgumentTypeError(f"cannot read {text[1:]}: {error.strerror}") from None
    try:
        value = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("params must be a JSON object ({...})")
    return value


# -- progress ------------------------------------------------------------------------------------

class ProgressBar:
    """One line redrawn with ``\\r`` on a terminal; elsewhere one plain line per update."""

    WIDTH = 30

    def __init__(self, out: TextIO):
        self.out = out
        self.live = out.isatty()

    def __call__(self, job: Job) -> None:
        chunks = f"{job.completed_chunks}/{job.total_chunks if job.total_chunks is not None else '?'} chunks"
        if not self.live:
            print(f"{job.status} {chunks} ({job.progress:.0%})", file=self.out, flush=True)
            return
        filled = round(job.progress * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.out.write(f"\r[{bar}] {job.progress:6.1%}  {chunks}  {job.status:<9}")
        if job.finished:
            self.out.write("\n")
        self.out.flush()


def _finished(job: Job) -> int:
    if job.status == "completed":
        print(f"result: {_compact(job.result)}")
        return EXIT_OK
    print(f"error: job {job.status}" + (f": {job.detail}" if job.detail else ""), file=sys.stderr)
    return EXIT_FAILED


def _json(value: Any) -> str:
    return json.dumps(asdict(value), indent=2, default=str)


def _compact(value: Any) -> str:
    """A result on one line: an integer as itself (exact), anything else as JSON."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# -- commands ------------------------------------------------------------------------------------

def _follow(api: Client, args: argparse.Namespace, job_id: str) -> int:
    return _finished(api.wait(job_id, timeout=args.wait_timeout, progress=ProgressBar(sys.stderr), demo=args.demo))


def _submit(api: Client, args: argparse.Namespace) -> int:
    if args.params is None:  # the original body {"n", "chunks", "kind"} (with --n), else {"kind", "params"}
        n, params = args.n, None
    else:
        n, params = None, args.params if args.n is None else {**args.params, "n": args.n}
    job = api.submit(args.kind, n=n, chunks=args.chunks, params=params, demo=args.demo,
                     use_cache=False if args.no_cache else None, idempotency_key=args.idempotency_key,
                     priority=args.priority)
    print(job.job_id, flush=True)
    return _follow(api, args, job.job_id) if args.follow else EXIT_OK


def _get(api: Client, args: argparse.Namespace) -> int:
    print(_json(api.get(args.job_id, demo=args.demo)))
    return EXIT_OK


def _wait(api: Client, args: argparse.Namespace) -> int:
    return _follow(api, args, args.job_id)


def _cancel(api: Client, args: argparse.Namespace) -> int:
    job = api.cancel(args.job_id)
    print(f"{job.job_id} {job.status}")
    return EXIT_OK


def _retry(api: Client, args: argparse.Namespace) -> int:
    job = api.retry(args.job_id)
    print(job.job_id, flush=True)
    if not args.follow:
        return EXIT_OK
    args.demo = False
    return _follow(api, args, job.job_id)


def _list(api: Client, args: argparse.Namespace) -> int:
    page = api.list(status=args.status, limit=args.limit, offset=args.offset)
    for job in page.items:
        result = "" if job.result is None else f" result={_shorten(_compact(job.result))}"
        inputs = f"n={job.n}" if job.n is not None else f"params={_shorten(_compact(job.params))}"
        print(f"{job.job_id}  {job.status:<9}  {job.kind:<12} {inputs}  {job.progress:.0%}{result}")
    print(f"({len(page.items)} of {page.total}, offset {page.offset})", file=sys.stderr)
    return EXIT_OK


def _shorten(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _upload(api: Client, args: argparse.Namespace) -> int:
    upload = api.upload(args.file, filename=args.filename, content_type=args.content_type)
    print(upload.upload_id)
    print(f"{upload.filename}: {upload.size} bytes, {upload.content_type}, sha256 {upload.sha256}", file=sys.stderr)
    return EXIT_OK


def _artifacts(api: Client, args: argparse.Namespace) -> int:
    listing = api.artifacts(args.job_id, demo=args.demo)
    for artifact in listing:
        print(f"{artifact.name}  {artifact.size}  {artifact.content_type}  {artifact.sha256}")
    print(f"({len(listing)} artifact{'s' if len(listing) != 1 else ''})", file=sys.stderr)
    return EXIT_OK


def _download(api: Client, args: argparse.Namespace) -> int:
    if args.output == "-":
        artifact = api.download(args.job_id, args.name, sys.stdout.buffer, demo=args.demo)
        where = "stdout"
    else:
        output = Path(args.output or args.name.rsplit("/", 1)[-1])
        if output.is_dir():
            output = output / args.name.rsplit("/", 1)[-1]
        artifact = api.download(args.job_id, args.name, output, demo=args.demo)
        where = str(output)
    print(f"{artifact.name} -> {where}: {artifact.size} bytes, sha256 {artifact.sha256} checked", file=sys.stderr)
    return EXIT_OK


COMMANDS: dict[str, Callable[[Client, argparse.Namespace], int]] = {
    "submit": _submit, "get": _get, "wait": _wait, "cancel": _cancel, "retry": _retry, "list": _list,
    "upload": _upload, "artifacts": _artifacts, "download": _download,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)  # exits 2 on a usage error
    transport = httpx.HTTPTransport(local_address=args.interface) if args.interface else None
    try:
        with Client(args.url, args.token, timeout=args.timeout, transport=transport) as api:
            return COMMANDS[args.command](api, args)
    except ApiError as error:
        print(f"error: {error.detail}", file=sys.stderr)
    except (TimeoutError, OSError) as error:  # OSError: a local file (upload, download) cannot be read or written
        print(f"error: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted (the job goes on; `python -m client cancel ID` stops it)", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_FAILED
