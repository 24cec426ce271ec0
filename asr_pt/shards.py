"""Work split over the processes `torchrun` (or `accelerate launch`) starts: one shard of the clips per process.

Clip `i` belongs to process `i % world size`, so a rerun with the same processes finds each clip in the same
process's shard file and transcribes only what is missing. Every process appends what it computes to a shard file of
its own; once all are done the first process merges the shard files, in the order one process would have written,
and removes them. Processes only exchange a few small Python objects (barriers, what was skipped), never tensors, so
gloo carries it on CPUs and GPUs alike, across machines too; each GPU process runs its model on its node's GPU
`LOCAL_RANK`.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

# A process done with its shard waits this long for the slowest one; far longer than any evaluation. A process that
# fails makes torchrun stop the others, so nothing waits that long for a dead one.
WAIT_FOR_OTHERS = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Shard:
    """This process's share: clips `rank`, `rank + count`, `rank + 2 * count`..."""

    rank: int = 0
    count: int = 1  # the world size: processes in all
    local_rank: int = 0  # this process's number on its machine: its GPU

    @property
    def main(self) -> bool:
        """The process that merges the shards and writes what one process would write."""
        return self.rank == 0

    def owns(self, index: int) -> bool:
        return index % self.count == self.rank

    def file(self, path: Path) -> Path:
        """This process's shard of the file `path` (the file itself when there is one process)."""
        return path if self.count == 1 else path.with_name(f"{path.stem}.rank{self.rank}-of-{self.count}{path.suffix}")

    def device(self, chosen: str | None) -> str | None:
        """The GPU of this process where the run would take "cuda" (or chose nothing on a machine with GPUs)."""
        if self.count > 1 and torch.cuda.is_available() and chosen in (None, "cuda"):
            return f"cuda:{self.local_rank % torch.cuda.device_count()}"
        return chosen

    def wait(self) -> None:
        """Until every process has come here."""
        if self.count > 1:
            dist.barrier()

    def gather(self, value: Any) -> list[Any]:
        """Every process's `value`, in rank order, on the main process (an empty list elsewhere), once all have come
        here: it doubles as the barrier after which every shard file is complete."""
        if self.count == 1:
            return [value]
        gathered = [None] * self.count if self.main else None
        dist.gather_object(value, gathered, dst=0)
        return gathered or []


SINGLE = Shard()


def launched() -> Shard:
    """This process's shard under torchrun or `accelerate launch` (the process group joined on first call), or the
    whole of the work when the program was started alone."""
    if not dist.is_torchelastic_launched():
        return SINGLE
    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=WAIT_FOR_OTHERS)
    return Shard(dist.get_rank(), dist.get_world_size(), dist.get_node_local_rank(fallback_rank=0))


def shard_files(path: Path) -> list[Path]:
    """The shard files of `path` there are, from runs of any number of processes (a killed run's too)."""
    return sorted(path.parent.glob(f"{path.stem}.rank*-of-*{path.suffix}"))


def complete_lines(path: Path, own: bool) -> list[str]:
    """The lines of an appended JSONL file. A last line without its newline is half a row a killed run left: cut from
    a file of `own` (so that appending starts on a line of its own), ignored in one another process may still write."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        if own:
            os.truncate(path, len(data))
    return data.decode("utf-8").splitlines()


def append_rows(path: Path, rows: Iterable[dict]) -> None:
    """Rows appended as JSON lines and flushed to disk, so that a kill loses at most the line being written."""
    with open(path, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
