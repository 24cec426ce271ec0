"""The number formats a model can run in, int8 quantisation without a float copy, and what the weights weigh.

On a CPU the 1.7B models are served in int8 (README, "Real size"): dynamic quantisation of the linear layers is
three times faster than float32 there and a third of its memory, while bfloat16 is four times slower than float32 on
CPUs without bfloat16 arithmetic.
"""

from __future__ import annotations

import ctypes
import gc

import torch

DTYPES = ("float32", "bfloat16", "float16", "int8")
INT8 = "int8"


def load_dtype(dtype: str) -> torch.dtype:
    """The dtype to load the checkpoint in: int8 starts from the stored bfloat16, so no float32 copy ever exists."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    return torch.bfloat16 if dtype == INT8 else getattr(torch, dtype)


def quantize_int8(network: torch.nn.Module) -> torch.nn.Module:
    """Replace every linear layer of a CPU model with a dynamically quantised int8 one, one layer at a time.

    Only one layer's float32 weights exist at any moment (quantising a whole float32 model keeps the float copy and
    peaks at twice its size). The rest (embedding, norms, convolutions) becomes float32, which int8 layers expect.
    A tied output projection is quantised on its own, so the embedding keeps its float weights.
    """
    qconfig = torch.ao.quantization.default_dynamic_qconfig
    # (parent, name) pairs, not the layers: a list holding the layers would keep every bfloat16 weight alive.
    targets = [(parent, name) for parent in network.modules() for name, c in parent.named_children() if _is_linear(c)]
    for parent, name in targets:
        layer = getattr(parent, name)
        float_layer = torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None, device="meta")
        float_layer.weight = torch.nn.Parameter(layer.weight.detach().float(), requires_grad=False)
        if layer.bias is not None:
            float_layer.bias = torch.nn.Parameter(layer.bias.detach().float(), requires_grad=False)
        float_layer.qconfig = qconfig
        setattr(parent, name, torch.ao.nn.quantized.dynamic.Linear.from_float(float_layer))
        del layer, float_layer
    network.float()
    release_heap()
    return network


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
