#!/usr/bin/env python3
"""Counts what one tools/call with routing hooks costs magg, in instructions (callgrind) or in
system calls (strace): figures that do not move with the machine's load, unlike the latencies
of measurement 12.

Run it after measurement 12 (`magg-bench --only 12`), which leaves the config, the plugin
directories and the compile caches it uses in target/bench-work:

    python3 bench/count_hooks.py callgrind|strace HOOKS [MAGG [CACHE_KEY]]

HOOKS is 0, 1 or 4; MAGG defaults to target/release/magg and CACHE_KEY (the compile cache and
plugin directory measurement 12 made for that binary) to "new" ("baseline" for the binary given
to --baseline). It starts magg on a bare stdio client, makes 200 calls of `tb_echo`, then
counts 1000 more and prints the count per call; with callgrind, for magg's serving thread (the
first) and for all its threads.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "target", "bench-work")
WARM, COUNTED = 200, 1000


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] not in ("callgrind", "strace"):
        sys.exit(__doc__)
    tool, hooks = sys.argv[1], sys.argv[2]
    magg = sys.argv[3] if len(sys.argv) > 3 else os.path.join(ROOT, "target", "release", "magg")
    key = sys.argv[4] if len(sys.argv) > 4 else "new"
    out_dir = tempfile.mkdtemp(prefix="magg-count-")
    out = os.path.join(out_dir, "out")
    command = [magg, "serve", "--config", os.path.join(WORK, "compare-hooks.json")]
    if hooks != "0":
        command += ["--plugins", os.path.join(WORK, f"compare-plugins-{key}-hooks{hooks}")]
    if tool == "callgrind":
        command = ["valgrind", "--tool=callgrind", "--separate-threads=yes",
                   f"--callgrind-out-file={out}"] + command
    env = dict(os.environ, MAGG_CACHE_DIR=os.path.join(WORK, f"compare-plugin-cache-{key}"),
               MAGG_LIST_WAIT="60")
    with open(out + ".stderr", "w") as log:
        magg_process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=log, env=env)
    client = Client(magg_process)
    client.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                  "clientInfo": {"name": "count-hooks", "version": "1"}})
    client.notify("notifications/initialized")
    client.request("tools/list", {})
    client.calls(WARM)
    time.sleep(1)
    tracer = None
    if tool == "callgrind":
        subprocess.run(["callgrind_control", "-z", str(magg_process.pid)], capture_output=True,
                       check=True)
    else:
        tracer = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p",
                                   str(magg_process.pid)], stderr=subprocess.DEVNULL)
        time.sleep(1)
    client.calls(COUNTED)
    time.sleep(1)
    if tool == "callgrind":
        subprocess.run(["callgrind_control", "-d", str(magg_process.pid)], capture_output=True,
                       check=True)
    else:
        tracer.send_signal(2)
        tracer.wait()
    magg_process.stdin.close()
    magg_process.wait(timeout=60)
    if tool == "callgrind":
        report_callgrind(out_dir, hooks)
    else:
        report_strace(out, hooks)


class Client:
    """A bare JSON-RPC client on magg's stdio."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.next_id = 0

    def send(self, message: dict) -> None:
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        self.process.stdin.flush()

    def notify(self, method: str) -> None:
        self.send({"jsonrpc": "2.0", "method": method})

    def request(self, method: str, params: dict) -> dict:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            line = self.process.stdout.readline()
            if not line:
                sys.exit(f"magg closed its stdout; see {self.process.args}")
            message = json.loads(line)
            if message.get("id") == self.next_id:
                if "result" not in message:
                    sys.exit(f"{method} failed: {message}")
                return message["result"]

    def calls(self, count: int) -> None:
        for _ in range(count):
            result = self.request("tools/call", {"name": "tb_echo",
                                                 "arguments": {"text": "hello"}})
            if result.get("isError"):
                sys.exit(f"tb_echo failed: {result}")


def report_callgrind(out_dir: str, hooks: str) -> None:
    threads = {}
    for name in sorted(os.listdir(out_dir)):
        found = re.fullmatch(r"out\.1-(\d+)", name)
        if not found:
            continue
        with open(os.path.join(out_dir, name)) as f:
            totals = next((l for l in f if l.startswith("totals:")), "totals: 0")
        threads[int(found.group(1))] = int(totals.split()[1])
    if not threads:
        sys.exit(f"callgrind wrote no counts; see {out_dir}")
    serving = threads[min(threads)]
    print(f"{hooks} hooks: instructions per call: serving thread {serving / COUNTED / 1e3:.1f} k, "
          f"all threads {sum(threads.values()) / COUNTED / 1e3:.1f} k")


def report_strace(out: str, hooks: str) -> None:
    counts = {}
    with open(out) as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 5 and fields[0][0].isdigit() and fields[-1] != "total":
                counts[fields[-1]] = int(fields[3])
    per_call = ", ".join(f"{name} {count / COUNTED:.2f}"
                         for name, count in sorted(counts.items(), key=lambda kv: -kv[1]))
    print(f"{hooks} hooks: system calls per call (all threads): {per_call}")


if __name__ == "__main__":
    main()
