"""Pure loss functions for V-MPO, V-trace, PopArt and Actor-Learner Distillation.

Conventions shared by every function in this package:

* Tensors are time-major: ``[T, B]`` means T timesteps of B independent streams (a segment of
  each stream), ``[T, B, A]`` adds the A action logits. Functions never mix streams.
* Every function returns a ``NamedTuple`` of named pieces, so callers log what they need.
* Episode boundaries inside a segment (truncation bootstraps, termination does not):

  - ``rewards[t]``: reward received after action ``a_t``.
  - ``values[t]``: ``V(x_t)``.
  - ``next_values[t]``: ``V(x_{t+1})`` of the *same* episode: ``values[t+1]`` inside an
    episode, the bootstrap value at the segment end, the value of the final observation at a
    truncation; ignored at a termination (its discount is 0). Build it with
    :func:`segment_next_values`.
  - ``discounts[t] = gamma * (1 - terminated[t])``.
  - ``episode_end[t] = terminated[t] or truncated[t]`` (bool): returns and traces never
    carry across it.
"""

from agents.losses.distill import (
    DIRECTIONS,
    DistillLoss,
    KLRegulariser,
    ald_actor_loss,
    entropy_floor_multiplier,
    learner_kl_regulariser,
    policy_entropy,
    policy_kl,
)
from agents.losses.popart import (
    LinearParams,
    PopArtStats,
    ValueLoss,
    denormalize,
    initial_popart_stats,
    normalize,
    popart_preserve,
    popart_sigma,
    popart_update,
    value_loss,
)
from agents.losses.returns import Returns, nstep_returns, segment_next_values
from agents.losses.vmpo import VMPOLoss, VMPOParams, vmpo_loss
from agents.losses.vtrace import VTrace, vtrace

__all__ = [
    "DIRECTIONS",
    "DistillLoss",
    "KLRegulariser",
    "LinearParams",
    "PopArtStats",
    "Returns",
    "VMPOLoss",
    "VMPOParams",
    "VTrace",
    "ValueLoss",
    "ald_actor_loss",
    "denormalize",
    "entropy_floor_multiplier",
    "initial_popart_stats",
    "learner_kl_regulariser",
    "normalize",
    "nstep_returns",
    "policy_entropy",
    "policy_kl",
    "popart_preserve",
    "popart_sigma",
    "popart_update",
    "segment_next_values",
    "value_loss",
    "vmpo_loss",
    "vtrace",
]
