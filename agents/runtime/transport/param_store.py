"""A versioned parameter store, in shared memory between processes (the orange arrows of the
paper's Fig. 2), or private to one process (the serial driver).

Publishers write the tensors in place (:meth:`ParameterStore.publish`, or HOGWILD! optimizer
steps on the shared tensors inside :meth:`ParameterStore.writing`); readers take a private copy
with :meth:`ParameterStore.read`. Writes and reads hold the store's lock, so a reader never gets
half of one update, and every publication comes with a digest of what was written: a driver that
also collects the digests of what the actors loaded can check that the actors act with exactly
the published parameters. Gradients are still computed without locks (HOGWILD!): only the write
itself and the copy-out are serialised. A shared store is created in the parent process before
``spawn``; torch passes the shared storage to children.
"""

from __future__ import annotations

import hashlib
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Mapping

import torch


@dataclass(frozen=True)
class Publication:
    """A parameter version and the digest of its tensors."""

    version: int
    digest: str


def param_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """A digest of a state dict's names and exact values (equal digests: equal tensors)."""
    h = hashlib.blake2b(digest_size=12)
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class LocalVersion:
    """The version counter of a store that never leaves its process (the serial driver): the
    interface of a ``multiprocessing.Value``, without an OS semaphore or shared memory."""

    def __init__(self, value: int):
        self.value = value
        self._lock = threading.RLock()

    def get_lock(self) -> threading.RLock:
        return self._lock


class ParameterStore:
    """Copies of a module's state dict, plus a version counter, shared between the processes of
    ``context`` (a multiprocessing context); without one, private to this process.

    ``version`` counts updates unless the publisher gives its own numbering (the target
    network's store is numbered by learner steps).
    """

    def __init__(self, module: torch.nn.Module, context=None, version: int = 0):
        tensors = {name: t.detach().cpu().clone() for name, t in module.state_dict().items()}
        if context is None:
            self.tensors, self._version = tensors, LocalVersion(version)
        else:
            self.tensors = {name: t.share_memory_() for name, t in tensors.items()}
            self._version = context.Value("q", version)

    @property
    def version(self) -> int:
        return self._version.value

    def publish(self, state_dict: Mapping[str, torch.Tensor], version: int | None = None) -> Publication:
        """Copy ``state_dict`` into the store; the version becomes ``version`` or moves on by one."""
        with self._version.get_lock(), torch.no_grad():
            for name, tensor in state_dict.items():
                self.tensors[name].copy_(tensor)
            self._version.value = self._version.value + 1 if version is None else version
            return Publication(self._version.value, param_digest(self.tensors))

    @contextmanager
    def writing(self) -> Iterator[list[Publication]]:
        """Hold the store for an in-place update of the shared tensors (a HOGWILD! optimizer step);
        on exit the version moves on by one and the yielded list receives the publication."""
        out: list[Publication] = []
        with self._version.get_lock():
            yield out
            self._version.value += 1
            out.append(Publication(self._version.value, param_digest(self.tensors)))

    def read(self, timeout: float | None = None) -> tuple[int, dict[str, torch.Tensor]]:
        """``(version, a private copy of the tensors)``, consistent with each other.

        With ``timeout``, a lock still held after that many seconds (by a process killed while
        writing) gives an unlocked copy instead of waiting forever.
        """
        lock = self._version.get_lock()
        locked = lock.acquire(timeout=timeout) if timeout is not None else lock.acquire()
        try:
            return self._version.value, {name: t.clone() for name, t in self.tensors.items()}
        finally:
            if locked:
                lock.release()

    def current(self) -> Publication:
        """The version and digest of what the store holds now."""
        with self._version.get_lock():
            return Publication(self._version.value, param_digest(self.tensors))

    def bind(self, module: torch.nn.Module) -> torch.nn.Module:
        """Make ``module``'s parameters and buffers *be* the shared tensors (HOGWILD! training)."""
        with torch.no_grad():
            for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
                if name in self.tensors:
                    tensor.set_(self.tensors[name])
        return module
