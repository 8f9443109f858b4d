"""GALA: gossip-based actor-learners (Assran et al., NeurIPS 2019) over any agent of the project.

K replicas of a single-learner system train asynchronously, each with its own actors (and, for
ALD, its runner, replay and distillers); after each learner update a replica mixes its learner
parameters with its peers' latest messages. Pure graph and mixing maths in :mod:`.graph` and
:mod:`.mixing`, the message board in :mod:`.board`, one replica (a Ray actor) in
:mod:`.replica`, the supervising loop in :mod:`.driver`, the command line in ``__main__``
(``python -m agents.gala``). The design is in ``docs/architecture.md`` ("GALA").
"""
