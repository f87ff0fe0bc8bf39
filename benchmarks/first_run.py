"""`make run` on a fresh clone, from the command to a served page:
`python -m benchmarks.first_run --ref HEAD --ref 9f5fce1`.

For each git ref, clones this repository into a temporary folder, runs `make run` there
on a free port and times it until the chat page answers HTTP 200; then stops it. The
refs are measured one after the other in one run, as many rounds as asked, so that the
shared machine's load falls on all of them. The pip cache stays the user's (packages
are not downloaded again, as on any developer machine); the model cache is a new empty
folder per measure unless `--warm-cache`: the conversion, exports and quantisation
are part of the first run, as on a fresh machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def served(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def first_run(ref: str, cache: Path | None, timeout: float) -> float:
    """Seconds from `make run` to a served page on a fresh clone of `ref`."""
    work = Path(tempfile.mkdtemp(prefix="first-run-"))
    try:
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(work / "repo")], check=True)
        subprocess.run(["git", "-C", str(work / "repo"), "checkout", "--quiet", ref], check=True)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
        env.update(QA_PORT=str(port), QA_CACHE_DIR=str(cache or work / "cache"))
        with open(work / "run.log", "w") as log:
            return _time_until_served(work, ref, port, env, log, timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _time_until_served(work: Path, ref: str, port: int, env: dict, log, timeout: float
                       ) -> float:
    began = time.perf_counter()
    process = subprocess.Popen(["make", "run"], cwd=work / "repo", env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while not served(f"http://127.0.0.1:{port}/"):
            if process.poll() is not None:
                raise click.ClickException(f"{ref}: make run s'est arrêté "
                                           f"({(work / 'run.log').read_text()[-2000:]})")
            if time.perf_counter() - began > timeout:
                raise click.ClickException(f"{ref}: pas de page après {timeout} s")
            time.sleep(0.5)
        return time.perf_counter() - began
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


@click.command()
@click.option("--ref", "refs", multiple=True, default=["HEAD"], show_default=True)
@click.option("--rounds", default=1, show_default=True)
@click.option("--warm-cache", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Use this model cache (already filled) instead of an empty one.")
@click.option("--timeout", default=1800.0, show_default=True)
def main(refs, rounds, warm_cache, timeout):
    """Time `make run` on fresh clones of REFs, side by side."""
    times: dict[str, list[float]] = {ref: [] for ref in refs}
    for turn in range(rounds):
        for ref in refs:
            seconds = first_run(ref, warm_cache, timeout)
            times[ref].append(seconds)
            click.echo(f"tour {turn + 1} {ref} : {seconds:.1f} s", err=True)
    base = statistics.median(times[refs[-1]])
    for ref, values in times.items():
        median = statistics.median(values)
        click.echo(f"{ref}: médiane {median:.1f} s ({', '.join(f'{v:.1f}' for v in values)}) "
                   f"soit {median / base:.2f} × {refs[-1]}")


if __name__ == "__main__":
    main()
