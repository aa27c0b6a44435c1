"""onnxviz batch on a Ray cluster started the way a user starts one (issue 24, part 5): `ray start --head` on this
machine (two CPUs: two actor processes; Ray runs one node per machine), then `onnxviz batch --engine ray
--ray-address` against
`--engine local` on the same folder and model (resnet18, random weights, 224 x 224 photos): steady items/s,
seconds per chunk and the overhead per chunk, start-up. Then the same run again with one actor process killed
(SIGKILL) after the first chunk is written: the run must end with every item done once — Ray restarts the actor
and retries its chunk, the manifest holds no duplicate.

    python benchmarks/bench_ray_cluster.py [--images 48] [--chunk 4] [--method occlusion]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psutil
from common import photo_folder, report, torchvision_pair

from onnxviz.batch import batch

OPTIONS = {"occlusion": {"window": 32, "stride": 32}, "gradcam": {}}
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(cpus: int) -> str:
    """A head node on this machine with `cpus` CPUs; the address to join. Ray 2.5x turns token authentication on
    for `ray start --head`: every node and driver sets RAY_AUTH_MODE=token and reads the token it wrote to
    ~/.ray/auth_token (on a cluster: copy that file, or set RAY_AUTH_TOKEN)."""
    os.environ["RAY_AUTH_MODE"] = "token"
    port = _free_port()
    subprocess.run([RAY, "start", "--head", "--port", str(port), "--num-cpus", str(cpus), "--disable-usage-stats",
                    "--include-dashboard=false"], check=True, capture_output=True)
    return f"127.0.0.1:{port}"


def stop_cluster() -> None:
    subprocess.run([RAY, "stop", "--force"], capture_output=True)


def run(model: Path, folder: Path, method: str, chunk: int, **engine) -> tuple[float, float, float, Path]:
    """(steady items/s from the first finished chunk to the last, start-up seconds, total seconds, out folder)."""
    out = Path(tempfile.mkdtemp()) / "run"
    result = batch(str(model), str(folder), method, str(out), batch_size=chunk, options={method: OPTIONS[method]},
                   progress=False, threads=1, **engine)
    assert result.failed == 0, result.summary()
    (t0, n0), (t1, n1) = result.timeline[0], result.timeline[-1]
    rate = (n1 - n0) / (t1 - t0)
    return rate, t0 - n0 / rate, result.seconds, out


def actor_pids() -> list[int]:
    """Processes of Ray Data's map actors (their title names the map: MapWorker(MapBatches(_Actor)))."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        if "MapWorker" in line or "_Actor" in line:
            found.append(proc.info["pid"])
    return found


def killed_run(model: Path, folder: Path, method: str, chunk: int, address: str) -> tuple[Counter, int, int]:
    """A Ray run during which one actor is SIGKILLed after the first chunk lands: (rows per (path, method), rows
    done, actors killed)."""
    out = Path(tempfile.mkdtemp()) / "run"
    killed = []

    def killer() -> None:
        manifest = out / "manifest.jsonl"
        while not (manifest.exists() and manifest.read_text().count("\n") >= chunk):
            time.sleep(0.05)
        pids = actor_pids()
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    watcher = threading.Thread(target=killer, daemon=True)
    watcher.start()
    result = batch(str(model), str(folder), method, str(out), batch_size=chunk, options={method: OPTIONS[method]},
                   progress=False, threads=1, engine="ray", workers=2, ray_address=address)
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    return Counter((r["path"], r["method"]) for r in rows), result.done, len(killed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--chunk", type=int, default=4)
    parser.add_argument("--method", default="occlusion", choices=sorted(OPTIONS))
    args = parser.parse_args()
    _, model = torchvision_pair("resnet18")
    folder = photo_folder(args.images)
    chunks = -(-args.images // args.chunk)
    rows = [("machine", f"{os.cpu_count()} cores; {args.images} images, chunks of {args.chunk} ({chunks} chunks), "
                        f"{args.method} {OPTIONS[args.method]}")]
    local_rate, local_start, local_total, _ = run(model, folder, args.method, args.chunk, engine="local", workers=2)
    rows.append(("local, 2 workers x 1 thread", f"{local_rate:.2f} items/s steady ({args.chunk / local_rate:.2f} s "
                                                f"per chunk), start-up {local_start:.1f} s, total {local_total:.1f} s"))
    stop_cluster()
    address = start_cluster(cpus=2)
    try:
        ray_rate, ray_start, ray_total, _ = run(model, folder, args.method, args.chunk, engine="ray", workers=2,
                                                ray_address=address)
        per_chunk = args.chunk / ray_rate - args.chunk / local_rate
        rows.append(("ray cluster (ray start --head), 2 actors",
                     f"{ray_rate:.2f} items/s steady ({args.chunk / ray_rate:.2f} s per chunk), start-up "
                     f"{ray_start:.1f} s, total {ray_total:.1f} s"))
        rows.append(("ray overhead", f"{per_chunk * 1000:+.0f} ms per chunk in steady state "
                                     f"({ray_rate / local_rate:.2f}x the local rate), start-up "
                                     f"{ray_start - local_start:+.1f} s"))
        counts, done, killed = killed_run(model, folder, args.method, args.chunk, address)
        duplicates = sum(1 for n in counts.values() if n > 1)
        rows.append(("one actor SIGKILLed mid-run", f"{killed} killed; {done} items done of {args.images}, "
                                                    f"{len(counts)} distinct manifest rows, {duplicates} duplicated"))
        if done != args.images or len(counts) != args.images or duplicates or not killed:
            report(rows)
            raise SystemExit("the killed run lost or repeated work")
    finally:
        stop_cluster()
    report(rows)


if __name__ == "__main__":
    main()
