"""The actor parameter store as a remote actor sees it: the newest publication's version and a
Ray object reference to its tensors (``ray.put`` once per refresh by the driver, fetched here only
when the actor refreshes). Same reading interface as :class:`ParameterStore` (``version``, ``read``)."""

from __future__ import annotations

import numpy as np
import torch


def publication_object(version: int, tensors: dict[str, torch.Tensor]) -> dict:
    """What the driver puts into Ray's object store for one refresh (numpy: zero-copy reads)."""
    return {"version": int(version), "tensors": {name: t.detach().cpu().numpy() for name, t in tensors.items()}}


class RemoteParameters:
    """``version`` is the newest publication offered; ``read`` fetches it (once per refresh)."""

    def __init__(self, version: int, ref):
        self.version, self._ref = version, ref

    def offer(self, version: int, ref) -> None:
        self.version, self._ref = version, ref

    def read(self, timeout: float | None = None) -> tuple[int, dict[str, torch.Tensor]]:
        import ray

        published = ray.get(self._ref, timeout=timeout)
        return published["version"], {name: torch.from_numpy(np.array(a)) for name, a in published["tensors"].items()}
