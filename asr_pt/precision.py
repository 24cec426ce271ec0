"""The number formats a model can run in, int8 quantisation without a float copy, and what the weights weigh.

On a CPU the 1.7B models are served in int8 (README, "Real size"): dynamic quantisation of the linear layers is
three times faster than float32 there and a third of its memory, while bfloat16 is four times slower than float32 on
CPUs without bfloat16 arithmetic.
"""

from __future__ import annotations

import ctypes
import gc
import mmap
from collections.abc import Callable

import torch

DTYPES = ("float32", "bfloat16", "float16", "int8")
INT8 = "int8"
# Rows quantised at a time: a float32 copy of the 151,936-row output head alone would be 1.2 GB.
QUANTIZE_ROWS = 8192
MADV_DONTNEED = 4  # <sys/mman.h> on Linux

# A layer's int8 weight and float32 bias, by the layer's name (a cache of `quantize_int8`'s own output).
StoredLayer = Callable[[str, torch.nn.Linear], tuple[torch.Tensor, torch.Tensor | None]]
# Told each layer's name, int8 weight and float32 bias as `quantize_int8` quantises it.
LayerRecorder = Callable[[str, torch.Tensor, torch.Tensor | None], None]


def load_dtype(dtype: str) -> torch.dtype:
    """The dtype to load the checkpoint in: int8 starts from the stored bfloat16, so no float32 copy ever exists."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    return torch.bfloat16 if dtype == INT8 else getattr(torch, dtype)


def quantize_weight(weight: torch.Tensor) -> torch.Tensor:
    """A weight as `torch.ao`'s dynamic int8 Linear quantises it (one symmetric scale for the tensor, from its
    minimum and maximum), `QUANTIZE_ROWS` rows at a time, so only a slice ever exists in float32."""
    observer = torch.ao.quantization.default_dynamic_qconfig.weight()
    for rows in weight.detach().split(QUANTIZE_ROWS):
        observer(rows.float())
    scale, zero_point = observer.calculate_qparams()
    scale, zero_point = float(scale), int(zero_point)
    integers = torch.empty(weight.shape, dtype=torch.int8)
    for start, rows in zip(range(0, len(weight), QUANTIZE_ROWS), weight.detach().split(QUANTIZE_ROWS), strict=True):
        quantized = torch.quantize_per_tensor(rows.float(), scale, zero_point, torch.qint8)
        integers[start : start + len(rows)] = quantized.int_repr()
    return torch._make_per_tensor_quantized_tensor(integers, scale, zero_point)


def int8_linear(weight: torch.Tensor, bias: torch.Tensor | None) -> torch.nn.Module:
    """A dynamically quantised Linear holding `weight` (qint8) and `bias` (float32), as `from_float` builds it."""
    out_features, in_features = weight.shape
    layer = torch.ao.nn.quantized.dynamic.Linear(in_features, out_features, dtype=torch.qint8)
    layer.set_weight_bias(weight, bias)
    return layer


def quantize_int8(
    network: torch.nn.Module, stored: StoredLayer | None = None, record: LayerRecorder | None = None
) -> torch.nn.Module:
    """Replace every linear layer of a CPU model with a dynamically quantised int8 one, one layer at a time.

    Only a slice of one layer's weights ever exists in float32, and the pages of a memory-mapped checkpoint that a
    quantised layer came from are handed back at once, so the process never holds the whole bfloat16 checkpoint
    beside its int8 copy. `stored(name, layer)` may give a layer's int8 weight and bias instead (a cache of this
    function's own output); `record(name, weight, bias)` is told each layer quantised here. Embeddings stay in
    bfloat16 and give float32 (what the float32 layers after them expect, to the bit: bfloat16 widens exactly), at
    half the memory; everything else (norms, convolutions, biases) becomes float32. A tied output projection is
    quantised on its own, so the embedding keeps its weights.
    """
    # (parent, name) pairs, not the layers: a list holding the layers would keep every bfloat16 weight alive.
    targets = [(prefix, parent, name) for prefix, parent in network.named_modules() for name, child in
               parent.named_children() if _is_linear(child)]  # fmt: skip
    for prefix, parent, name in targets:
        layer, full_name = getattr(parent, name), f"{prefix}.{name}" if prefix else name
        found = stored(full_name, layer) if stored is not None else None
        if found is None:  # quantised here
            bias = layer.bias.detach().float() if layer.bias is not None else None
            weight = quantize_weight(layer.weight)
            if record is not None:
                record(full_name, weight, bias)
            found = (weight, bias)
        setattr(parent, name, int8_linear(*found))
        if not _shared(layer.weight, network):
            release_mapped_pages(layer.weight)
        del layer, found
    _float_except_embeddings(network)
    release_heap()
    return network


def _shared(weight: torch.Tensor, network: torch.nn.Module) -> bool:
    """Whether another tensor of `network` still uses `weight`'s memory (a tied embedding)."""
    return any(tensor.data_ptr() == weight.data_ptr() for tensor in [*network.parameters(), *network.buffers()])


def _float_except_embeddings(network: torch.nn.Module) -> None:
    embeddings = [module for module in network.modules() if isinstance(module, torch.nn.Embedding)]
    kept = [module.weight for module in embeddings]
    for module in embeddings:
        module.weight = None  # out of `float()`'s way: a float32 copy of the 151,936-row table is 1.2 GB
    network.float()
    for module, weight in zip(embeddings, kept, strict=True):
        # A copy in the process's own memory: a view of a memory-mapped checkpoint would keep the file mapped.
        module.weight = torch.nn.Parameter(weight.detach().to(torch.bfloat16, copy=True), requires_grad=False)
        module.register_forward_hook(_as_float32)


def _as_float32(module: torch.nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
    return output.float()


def release_mapped_pages(tensor: torch.Tensor) -> None:
    """Drop the pages of a tensor that lies in a memory-mapped file (transformers maps safetensors shards) from the
    process: the file stays mapped while any other tensor of the shard lives, and every page read so far would be
    counted against the process until then. Only whole pages inside the tensor are dropped, and only in a file
    mapping: reading them again would read the file, never zeros."""
    start, end = tensor.data_ptr(), tensor.data_ptr() + tensor.numel() * tensor.element_size()
    first, last = -(-start // mmap.PAGESIZE) * mmap.PAGESIZE, end // mmap.PAGESIZE * mmap.PAGESIZE
    if last <= first or not _in_file_mapping(first, last):
        return
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).madvise(
            ctypes.c_void_p(first), ctypes.c_size_t(last - first), MADV_DONTNEED
        )
    except (OSError, AttributeError):  # not Linux with glibc: the pages are freed when the file is unmapped
        pass


def _in_file_mapping(first: int, last: int) -> bool:
    """Whether [first, last) lies inside one mapping of a regular file (Linux: /proc/self/maps)."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split()
                low, high = (int(bound, 16) for bound in fields[0].split("-"))
                if low <= first and last <= high:
                    return len(fields) >= 6 and fields[5].startswith("/")
    except OSError:
        pass
    return False


def release_heap() -> None:
    """Hand the heap's freed pages back to the system: glibc keeps the bfloat16 and float32 copies it freed while
    quantising, and the next model's load would stack on them (the app's peak, two 1.7B models: 11.2 -> 10.9 GiB)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        pass


def _is_linear(module: torch.nn.Module) -> bool:
    return type(module) is torch.nn.Linear


def weight_bytes(network: torch.nn.Module) -> int:
    """Bytes held by the weights: parameters and buffers (each shared tensor once) and int8 layers' packed weights."""
    seen, total = set(), 0
    for tensor in [*network.parameters(), *network.buffers()]:
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            total += tensor.numel() * tensor.element_size()
    for module in network.modules():
        if isinstance(module, torch.ao.nn.quantized.dynamic.Linear):
            for tensor in module._packed_params._weight_bias():
                total += tensor.numel() * tensor.element_size() if tensor is not None else 0
    return total
