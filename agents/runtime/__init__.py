"""The distributed runtime of ALD and its baselines (``docs/architecture.md``).

``topology`` derives every per-agent difference from the run config; ``roles/`` holds the
components of the process graph (actor, batcher and learner runner, learner, replay, distill);
``transport/`` what travels between them (the trajectory schema, channels, parameter stores);
``drivers/`` moves data between the roles (``serial``: one process; ``parallel``: one process
per role); ``assembly`` builds the roles for every driver alike.
"""
