"""A versioned parameter store in shared memory (the orange arrows of the paper's Fig. 2).

The publisher writes tensors in place (``copy_``, or HOGWILD! optimizer steps directly on the
shared tensors) and bumps the version; readers copy the tensors out when the version has
moved far enough. Created in the parent process before ``spawn``; torch passes the shared
storage to children.
"""

from __future__ import annotations

from typing import Mapping

import torch
import torch.multiprocessing as mp


class ParameterStore:
    """Shared copies of a module's state dict, plus a shared version counter."""

    def __init__(self, module: torch.nn.Module, context=None):
        context = context or mp.get_context("spawn")
        self.tensors = {name: t.detach().cpu().clone().share_memory_() for name, t in module.state_dict().items()}
        self._version = context.Value("q", 0)

    @property
    def version(self) -> int:
        return self._version.value

    def bump(self, steps: int = 1) -> int:
        """Count ``steps`` updates made directly to the shared tensors; returns the new version."""
        with self._version.get_lock():
            self._version.value += steps
            return self._version.value

    def publish(self, state_dict: Mapping[str, torch.Tensor]) -> int:
        """Copy ``state_dict`` into the store and bump the version."""
        with torch.no_grad():
            for name, tensor in state_dict.items():
                self.tensors[name].copy_(tensor)
        return self.bump()

    def snapshot(self) -> dict[str, torch.Tensor]:
        """A private copy of the parameters (readers never hold references to shared memory)."""
        return {name: t.clone() for name, t in self.tensors.items()}

    def bind(self, module: torch.nn.Module) -> torch.nn.Module:
        """Make ``module``'s parameters and buffers *be* the shared tensors (HOGWILD! training)."""
        with torch.no_grad():
            for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
                if name in self.tensors:
                    tensor.set_(self.tensors[name])
        return module
