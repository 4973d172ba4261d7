"""`python -m bench` (`make bench`): every benchmark in turn, then one summary line per figure.

Each benchmark runs in a process of its own and prints its baseline beside its figure, its
figure last. The run ends with the machine it ran on and the summary lines, one per figure, in
the order of DESIGN §12; a missed target says ``fail`` there. It exits 1 only if a benchmark
could not run to the end (its summary line then says ``error``).
``python -m bench create sweep`` runs only those.
"""

from __future__ import annotations

import os
import subprocess
import sys

from bench import common

BENCHMARKS = ("create", "sweep", "link_lookup", "rewrap")


def _run(name: str) -> tuple[list[str], int]:
    """Run one benchmark, passing its output through; returns its summary lines and status."""
    print(f"== bench.{name}", flush=True)
    process = subprocess.Popen(
        [sys.executable, "-m", f"bench.{name}"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=common.PROJECT_ROOT,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        print(line, end="", flush=True)
        if line.startswith("bench "):
            lines.append(line.rstrip("\n"))
    return lines, process.wait()


def _machine() -> str:
    facts = common.machine()
    server = common.postgres_server_url()
    postgres = common.postgres_version(server) if server else "not available"
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['ram']} RAM, {facts['os']}, "
        f"Python {facts['python']}, SQLite {facts['sqlite']}, PostgreSQL {postgres}, "
        f"load average now {load}"
    )


def main(names: list[str]) -> int:
    """Run the named benchmarks (default: all) and summarise."""
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
        return 2
    print(_machine(), flush=True)
    summary, failed = [], []
    for name in names or BENCHMARKS:
        lines, status = _run(name)
        summary += lines
        if status != 0:
            failed.append(name)
            summary.append(f"bench {name} error: exited with status {status}")
    print("== summary")
    print(_machine())
    for line in summary:
        print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
