"""Saving and loading networks in the safetensors format.

The file holds one tensor per parameter ("{k}.weight", "{k}.bias") and buffer
("{k}.running_mean", ...) and, in
the header metadata, the format version, dtype and layer list as JSON, plus
any caller-supplied string pairs (``extra_metadata``, stored as "extra.{key}").
No pickle: loading runs no code from the file. Files are treated as untrusted:
safetensors bounds and checks the header and offsets, and we check that the
architecture, dtypes, shapes and values agree before building anything.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np

FORMAT = "backpropx"
FORMAT_VERSION = "1"


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that a crash leaves either the old or the new file.

    The bytes go to a temporary file in the same directory, which is flushed,
    fsynced and renamed over `path`; the directory is fsynced after.
    """
    from .interrupts import deferred_interrupt

    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        with deferred_interrupt():  # Ctrl-C cannot fall between creating the file and naming it
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".partial", dir=directory)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with deferred_interrupt():
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def network_metadata(network: Any) -> dict[str, str]:
    layers = []
    for layer in network.layers:
        cfg = layer._config()
        cfg["trainable"] = layer.trainable
        layers.append(cfg)
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "dtype": network.dtype.name,
            "seed": str(network.seed), "layers": json.dumps(layers),
            "input_shape": json.dumps(list(network.input_shape))}


# Caller-supplied metadata lives in the header under this prefix, apart from
# the keys backpropx itself writes (a checkpoint adds more of its own).
EXTRA_PREFIX = "extra."


def check_extra_metadata(extra: Any) -> dict[str, str]:
    """`extra` as a plain dict of str -> str, or a TypeError naming the bad entry."""
    if extra is None:
        return {}
    if not isinstance(extra, Mapping):
        raise TypeError(f"extra_metadata must be a dict of str to str, got {type(extra).__name__}")
    for key, value in extra.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"extra_metadata keys must be non-empty strings, got {key!r}")
        if not isinstance(value, str):
            raise TypeError(f"extra_metadata[{key!r}] must be a string (encode it, e.g. with json.dumps), "
                            f"got {type(value).__name__}")
    return dict(extra)


def save_network(network: Any, path: str | os.PathLike, extra_metadata: Mapping[str, str] | None = None) -> None:
    """Write `network` to a .safetensors file, atomically.

    `extra_metadata` (str -> str) is stored in the header beside the
    architecture, together with ``network.metadata``, and comes back as the
    loaded network's ``metadata`` (also from `read_extra_metadata` /
    `load_network_with_metadata`).
    """
    # The network's own metadata (class labels, feature names) travels with it;
    # `extra_metadata` adds to it and wins on equal keys.
    extra = {**check_extra_metadata(network.metadata), **check_extra_metadata(extra_metadata)}
    meta = network_metadata(network)
    meta.update({EXTRA_PREFIX + key: value for key, value in extra.items()})
    tensors = network.state_dict()  # one consistent snapshot, even while another thread trains
    atomic_write(path, serialize(tensors, meta))


def extra_from_metadata(meta: Mapping[str, str]) -> dict[str, str]:
    return {key[len(EXTRA_PREFIX):]: value for key, value in meta.items()
            if key.startswith(EXTRA_PREFIX) and isinstance(value, str)}


def read_extra_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The `extra_metadata` a model file was saved with ({} if none)."""
    meta, _tensors = read_checked(path)
    return extra_from_metadata(meta)


def _layers_from_metadata(meta: dict[str, str]) -> tuple[list[Any], list[bool]]:
    from .cpp_configs import with_python_flags
    from .layers import layer_from_config

    from .bounded_json import loads

    if not isinstance(meta.get("layers"), str):
        raise ValueError("not a backpropx model: the header has no layer list")
    configs = loads(meta["layers"], "the header's layer list")
    if not isinstance(configs, list) or not configs:
        raise ValueError("not a backpropx model: the header's layer list is empty or not a list")
    layers, trainable = [], []
    for k, cfg in enumerate(configs):
        if not isinstance(cfg, dict):
            raise ValueError(f"layer {k} in the file has an unsupported description: {cfg!r:.200}")
        try:
            # 0/1 flags of C++-saved files become bools; "trainable" is the network's business
            layers.append(layer_from_config(with_python_flags({key: v for key, v in cfg.items() if key != "trainable"})))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"layer {k} in the file is invalid: {exc}") from None
        flag = cfg.get("trainable", True)
        if not isinstance(flag, bool):
            raise ValueError(f"layer {k} in the file has trainable={flag!r:.50}, not true or false")
        trainable.append(flag)
    return layers, trainable


# The largest header backpropx writes or reads (safetensors itself allows 100 MB).
MAX_HEADER_BYTES = 16 * 1024 * 1024


def physical_memory() -> int | None:
    """Bytes of RAM, or None where the platform does not say."""
    try:
        pages, page = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * page if pages > 0 and page > 0 else None


def available_memory() -> int | None:
    """MemAvailable + SwapFree in bytes (Linux), or None where unknown. Linux
    grants more than it has and kills whoever touches it: big reads compare
    with this, as the core's allocations do."""
    try:
        with open("/proc/meminfo", "rb") as f:
            fields = dict(line.split(b":", 1) for line in f.read().splitlines() if b":" in line)
        return sum(int(fields[k].split()[0]) * 1024 for k in (b"MemAvailable", b"SwapFree") if k in fields) or None
    except (OSError, ValueError):
        return None


def read_file(path: str | os.PathLike, what: str = "safetensors") -> bytes:
    """The bytes of a regular file, read up to its size as opened.

    A FIFO, a device such as /dev/zero, a directory or a socket is refused
    before any read (a FIFO without a writer would block, /dev/zero would
    never end), and so is a file larger than the machine's memory.
    """
    name = os.fspath(path)
    # O_NONBLOCK: opening a FIFO that has no writer returns at once instead of
    # waiting forever; it does not change reads of a regular file.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(name, flags)
    try:
        info = os.fstat(fd)  # of what was opened, so a swapped path cannot slip through
        if not stat.S_ISREG(info.st_mode):
            mode = info.st_mode
            kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                    else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                    else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
            raise ValueError(f"{name!r} is not a {what} file: it is {kind}")
        memory = physical_memory()
        if memory is not None and info.st_size > memory:
            raise MemoryError(f"{name!r} holds {info.st_size >> 20} MiB, more than this machine's "
                              f"{memory >> 20} MiB of memory")
        available = available_memory() if info.st_size >= 256 << 20 else None
        if available is not None and info.st_size > available:
            raise MemoryError(f"{name!r} holds {info.st_size >> 20} MiB, more than the "
                              f"{available >> 20} MiB of memory available now")
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as f:
        return f.read(info.st_size)  # bounded even if the file grows meanwhile


def read_checked(path: str | os.PathLike) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """Header metadata and tensors of a safetensors file, or a clear ValueError/OSError."""
    return parse_checked(read_file(path), repr(os.fspath(path)))


def parse_checked(data: bytes, name: str) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """Header metadata and tensors of safetensors bytes (`name` says where
    they came from in messages), or a clear ValueError."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    from .bounded_json import loads

    if len(data) < 8:
        raise ValueError(f"{name} is not a safetensors file: only {len(data)} bytes")
    header_len = int.from_bytes(data[:8], "little")
    if header_len > len(data) - 8 or data[8:9] != b"{":
        raise ValueError(f"{name} is not a safetensors file, or is truncated: its first 8 bytes give a "
                         f"header of {header_len} bytes in a file of {len(data)}")
    if header_len > MAX_HEADER_BYTES:
        raise ValueError(f"{name} has a header of {header_len} bytes; backpropx reads at most "
                         f"{MAX_HEADER_BYTES} (it never writes more)")
    header = loads(data[8:8 + header_len], f"the header of {name}")
    try:
        tensors = load(data)
    except (SafetensorError, TypeError, ValueError) as exc:
        raise ValueError(f"{name} is not a valid safetensors file: {exc}") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{name} was not written by backpropx (no backpropx metadata)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{name} has format version {meta.get('format_version')!r}; "
                         f"this backpropx reads version {FORMAT_VERSION}")
    return meta, tensors


def serialize(tensors: dict[str, np.ndarray], meta: dict[str, str]) -> bytes:
    """The safetensors bytes of a model or checkpoint, refused (ValueError) when
    read_checked would refuse them: save never writes what load rejects."""
    from safetensors.numpy import save

    data = save(tensors, metadata=meta)
    header_len = int.from_bytes(data[:8], "little")
    if header_len > MAX_HEADER_BYTES:
        biggest = max(meta, key=lambda k: len(meta[k]))
        raise ValueError(f"the file's header would take {header_len} bytes, over the {MAX_HEADER_BYTES} "
                         f"that loading accepts (largest entry: {biggest!r}, {len(meta[biggest])} bytes)")
    return data


def load_network(path: str | os.PathLike) -> Any:
    return load_network_with_metadata(path)[0]


def network_to_bytes(network: Any) -> bytes:
    """The bytes `save_network` writes (used to pickle a Network)."""
    return serialize(network.state_dict(), network_metadata(network))


def network_from_bytes(data: bytes) -> Any:
    """A Network from `network_to_bytes` output, checked as a file would be."""
    meta, tensors = parse_checked(data, "pickled Network")
    return _network_from(meta, tensors, "pickled Network")


def load_network_with_metadata(path: str | os.PathLike) -> tuple[Any, dict[str, str]]:
    """The network in a model file and the `extra_metadata` it was saved with (one read)."""
    meta, tensors = read_checked(path)
    net, extra = _network_from(meta, tensors, path), extra_from_metadata(meta)
    net.metadata = dict(extra)
    return net, extra


def _network_from(meta: dict[str, str], tensors: dict[str, np.ndarray], path: str | os.PathLike) -> Any:
    from .network import Network

    # A trainer checkpoint also holds optimizer state and the generator; a
    # network needs only its parameters.
    tensors = {k: v for k, v in tensors.items() if not k.startswith("optimizer.") and k != "rng"}
    dtype = meta.get("dtype")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"unsupported dtype {dtype!r} in {os.fspath(path)!r}")
    layers, trainable = _layers_from_metadata(meta)
    for name, arr in tensors.items():
        if arr.dtype != np.dtype(dtype):
            raise ValueError(f"tensor {name!r} is {arr.dtype}, but the model's dtype is {dtype}")
    try:
        seed = int(meta.get("seed", "0"))
    except ValueError:
        seed = 0
    try:
        input_shape = json.loads(meta.get("input_shape", "null"))
    except json.JSONDecodeError:
        input_shape = "bad"
    if input_shape is not None and (not isinstance(input_shape, list) or not input_shape or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 < d < 2**40 for d in input_shape)):
        raise ValueError(f"not a backpropx model: bad input_shape {meta.get('input_shape')!r:.100} in the header")
    # Refuse before allocating: the tensors must account for every parameter and buffer.
    expected = sum(layer.num_params() + layer.num_buffers() for layer in layers)
    present = sum(int(a.size) for a in tensors.values())
    if expected != present:
        raise ValueError(f"the file's architecture needs {expected} parameters but it holds {present}")
    try:
        net = Network(layers, input_shape=input_shape, seed=seed if 0 <= seed < 2**64 else 0, dtype=dtype)
    except ValueError as exc:
        raise ValueError(f"the file's layers do not fit together: {exc}") from None
    net.load_state_dict(tensors)
    for layer, flag in zip(net.layers, trainable):
        layer.trainable = flag
    return net
