"""Quantised weights kept on disk, so that a model loads in int8 without quantising it again (README, Real size).

Quantising a 1.7B model layer by layer takes about 40 s on two cores, and the app loads two of them at every start.
The int8 weights `asr_pt.precision.quantize_int8` writes are the same at every start, so the first start keeps them
in a folder named after the checkpoint's fingerprint (every file's name, size, modification time and real path: in
the Hugging Face cache a weight file's real path is its content hash), the torch version and the quantisation
engine; a later start whose fingerprint matches reads them back, and one whose checkpoint changed quantises again.
One entry per checkpoint folder is kept: writing a new one removes the old.

An entry is `layers.json` (per layer: its name, shape, scale, zero point and where its bytes are) and `weights.bin`
(the int8 weights and float32 biases one after another). Layers are read one at a time with plain reads, into the
process's own memory, where they are packed and the bytes dropped: nothing is memory-mapped, so nothing is counted
twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import torch

from asr_pt.precision import quantize_int8
from asr_pt.processes import process_alive

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
INDEX, WEIGHTS = "layers.json", "weights.bin"


class CacheError(ValueError):
    """An entry that cannot be used: missing, truncated, or made for other shapes."""


def checkpoint_fingerprint(checkpoint: Path) -> str:
    """What identifies a checkpoint's weights, and what reads them: a change to any file makes a new fingerprint."""
    digest = hashlib.sha256(f"{FORMAT_VERSION} {torch.__version__} {torch.backends.quantized.engine}".encode())
    for path in sorted(p for p in checkpoint.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"\n{path.relative_to(checkpoint)} {stat.st_size} {stat.st_mtime_ns} {path.resolve()}".encode())
    return digest.hexdigest()[:32]


def quantize_with_cache(network: torch.nn.Module, checkpoint: Path, cache_dir: Path) -> bool:
    """`quantize_int8(network)`, its layers read from `cache_dir` when an entry for `checkpoint` is there (True),
    or quantised and written there (False). A cache that cannot be read or written never stops a load."""
    folder = cache_dir / checkpoint_fingerprint(checkpoint)
    try:
        entry = CacheEntry(folder, network)
    except (CacheError, OSError) as error:
        if folder.exists():
            log.warning("int8 cache %s not used (%s): quantising again", folder, error)
        entry = None
    if entry is not None:
        with entry:
            quantize_int8(network, stored=entry.read)
        return True
    writer = CacheWriter(folder, checkpoint)
    quantize_int8(network, record=writer.add)
    writer.commit()
    return False


class CacheEntry:
    """An entry checked against the layers it must fill (same names and shapes), read a layer at a time."""

    def __init__(self, folder: Path, network: torch.nn.Module):
        try:
            index = json.loads((folder / INDEX).read_text(encoding="utf-8"))
        except ValueError as error:
            raise CacheError(f"unreadable {INDEX}: {error}") from error
        self.layers = {layer["name"]: layer for layer in index.get("layers", [])}
        expected = {name: list(module.weight.shape) for name, module in network.named_modules() if
                    type(module) is torch.nn.Linear}  # fmt: skip
        if {name: layer["shape"] for name, layer in self.layers.items()} != expected:
            raise CacheError("its layers are not this model's")
        size = (folder / WEIGHTS).stat().st_size
        if size != index.get("bytes"):
            raise CacheError(f"{WEIGHTS} holds {size:,} bytes, {index.get('bytes'):,} expected")
        self.file = open(folder / WEIGHTS, "rb")  # noqa: SIM115 (closed by __exit__)

    def __enter__(self) -> CacheEntry:
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def read(self, name: str, layer: torch.nn.Linear) -> tuple[torch.Tensor, torch.Tensor | None]:
        entry = self.layers[name]
        integers = self._read(entry["offset"], entry["shape"], torch.int8)
        weight = torch._make_per_tensor_quantized_tensor(integers, entry["scale"], entry["zero_point"])
        bias = self._read(entry["bias_offset"], [entry["shape"][0]], torch.float32) if "bias_offset" in entry else None
        return weight, bias

    def _read(self, offset: int, shape: list[int], dtype: torch.dtype) -> torch.Tensor:
        tensor = torch.empty(shape, dtype=dtype)
        self.file.seek(offset)
        if self.file.readinto(tensor.numpy().data.cast("B")) != tensor.numel() * tensor.element_size():
            raise CacheError(f"{WEIGHTS} ends early")
        return tensor


class CacheWriter:
    """Writes an entry as layers are quantised, into a temporary folder that takes the entry's name once complete."""

    def __init__(self, folder: Path, checkpoint: Path):
        self.folder, self.checkpoint = folder, checkpoint
        self.partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
        self.layers: list[dict] = []
        self.offset = 0
        try:
            self.partial.mkdir(parents=True, exist_ok=True)
            self.file = open(self.partial / WEIGHTS, "wb")  # noqa: SIM115 (closed by commit)
        except OSError as error:
            self._give_up(error)

    def add(self, name: str, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        if self.file is None:
            return
        layer = {"name": name, "shape": list(weight.shape)}
        layer |= {"scale": weight.q_scale(), "zero_point": weight.q_zero_point()}
        try:
            layer["offset"] = self._write(weight.int_repr())
            if bias is not None:
                layer["bias_offset"] = self._write(bias.contiguous())
        except OSError as error:
            self._give_up(error)
            return
        self.layers.append(layer)

    def _write(self, tensor: torch.Tensor) -> int:
        offset = self.offset
        self.file.write(tensor.contiguous().numpy().data.cast("B"))
        self.offset += tensor.numel() * tensor.element_size()
        return offset

    def commit(self) -> None:
        """Name the entry, and remove older entries made from the same checkpoint folder."""
        if self.file is None:
            return
        try:
            self.file.close()
            index = {"checkpoint": str(self.checkpoint.resolve()), "bytes": self.offset, "layers": self.layers}
            (self.partial / INDEX).write_text(json.dumps(index), encoding="utf-8")
            for old in self.folder.parent.iterdir():
                if old != self.partial and _made_from(old, index["checkpoint"]):
                    shutil.rmtree(old, ignore_errors=True)
            self.partial.rename(self.folder)
        except OSError as error:
            self._give_up(error)
            return
        log.info("int8 weights kept in %s for the next start", self.folder)

    def _give_up(self, error: OSError) -> None:
        log.warning("int8 cache not written to %s: %s", self.folder.parent, error)
        if getattr(self, "file", None) is not None:
            self.file.close()
        self.file = None
        shutil.rmtree(self.partial, ignore_errors=True)


def _made_from(folder: Path, checkpoint: str) -> bool:
    """Whether `folder` is an entry made from `checkpoint`, or what a load that died left half written."""
    pid = folder.name.partition(".partial-")[2]
    if pid:
        return pid.isdigit() and not process_alive(int(pid))
    try:
        return json.loads((folder / INDEX).read_text(encoding="utf-8")).get("checkpoint") == checkpoint
    except (OSError, ValueError):
        return False
