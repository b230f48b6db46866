"""What ``patch_tensorboard()`` adds to one ``SummaryWriter.add_scalar`` call, on the training thread.

Two figures, for torch's SummaryWriter and tensorboardX's:

* A/B: the same ``add_scalar`` loop without and with the patch, in alternating rounds (so drift
  in machine load hits both sides alike), and the difference per call.
* bridge alone: the bridge's forwarding step on a ready-made event (what the wrapper adds after
  TensorBoard's own ``add_event``), free of the writer's own noise.

Each is measured two ways, best round of ``--rounds``: the CPU time of the calling thread
(``time.thread_time``: what the training thread spends, unaffected by other processes on a shared
machine) and the wall time (which also counts waiting for the GIL while the run's journal thread
writes the events, and any other load on the machine).

The run keeps its events in its journal only (``backends=[]``): what happens after the enqueue
runs on other threads and processes and is the same for every integration. Target: under 5 µs
per call on top of SummaryWriter itself.

    python benchmarks/tensorboard_overhead.py --calls 20000 --rounds 7
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tracelet_core
from tracelet_core import tensorboard as bridge

TARGET_US = 5.0


Timing = tuple[float, float]  # (thread CPU µs, wall µs) per call


def per_call_us(fn: Callable[[int], None], calls: int) -> Timing:
    """Thread CPU and wall microseconds per call of ``fn(i)`` over ``calls`` calls."""
    cpu, wall = time.thread_time(), time.perf_counter()
    for i in range(calls):
        fn(i)
    return (time.thread_time() - cpu) / calls * 1e6, (time.perf_counter() - wall) / calls * 1e6


def best(timings: list[Timing]) -> Timing:
    """The best round of each measure (noise on a shared machine only ever adds time)."""
    return min(t[0] for t in timings), min(t[1] for t in timings)


def ab_rounds(writer: Any, calls: int, rounds: int) -> tuple[Timing, Timing]:
    """Best µs per ``add_scalar`` without and with the patch, alternating rounds."""
    plain: list[Timing] = []
    patched: list[Timing] = []
    step = 0

    def add(i: int) -> None:
        writer.add_scalar("loss", 0.5, step + i)

    for _ in range(rounds):
        bridge.unpatch_tensorboard()
        plain.append(per_call_us(add, calls))
        step += calls
        bridge.patch_tensorboard()
        patched.append(per_call_us(add, calls))
        step += calls
    bridge.unpatch_tensorboard()
    return best(plain), best(patched)


def bridge_alone_us(event_module: Any, file_writer: Any, calls: int, rounds: int) -> Timing:
    """Best µs of the bridge's forwarding of a one-scalar event (the part after TensorBoard's add_event)."""
    event = event_module.Event(step=1, wall_time=time.time())
    event.summary.value.add(tag="loss", simple_value=0.5)
    bridge.patch_tensorboard()
    try:
        return best([per_call_us(lambda i: bridge._forward(file_writer, event), calls) for _ in range(rounds)])
    finally:
        bridge.unpatch_tensorboard()


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description="Per-call cost of Tracelet's TensorBoard bridge")
    parser.add_argument("--calls", type=int, default=20_000, help="add_scalar calls per round (default 20000)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds per side (default 7)")
    args = parser.parse_args(argv)

    import tensorboardX
    from tensorboard.compat.proto import event_pb2
    from torch.utils.tensorboard import SummaryWriter

    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        run = tracelet_core.start_logging(
            "tensorboard-overhead",
            backends=[],
            journal_dir=Path(tmp) / "journal",
            system_metrics=False,
            git=False,
            environment=False,
        )
        try:
            for name, writer_class in (("torch", SummaryWriter), ("tensorboardX", tensorboardX.SummaryWriter)):
                writer = writer_class(str(Path(tmp) / name))
                plain, patched = ab_rounds(writer, args.calls, args.rounds)
                alone = bridge_alone_us(event_pb2, writer._get_file_writer(), args.calls, args.rounds)
                writer.close()
                for index, measure in enumerate(("cpu", "wall")):
                    results[f"{name}.{measure}.plain_us"] = plain[index]
                    results[f"{name}.{measure}.patched_us"] = patched[index]
                    results[f"{name}.{measure}.overhead_us"] = patched[index] - plain[index]
                    results[f"{name}.{measure}.bridge_alone_us"] = alone[index]
                    print(
                        f"{name:13s} {measure:4s} add_scalar {plain[index]:7.2f} µs unpatched, "
                        f"{patched[index]:7.2f} µs patched: {patched[index] - plain[index]:+6.2f} µs (A/B); "
                        f"bridge alone {alone[index]:5.2f} µs"
                    )
        finally:
            run.finish()
    worst = max(results[f"{name}.cpu.bridge_alone_us"] for name in ("torch", "tensorboardX"))
    print(
        f"bridge alone, training-thread CPU, worst of the two: {worst:.2f} µs per add_scalar (target < {TARGET_US} µs)"
    )
    return results


if __name__ == "__main__":
    main()
