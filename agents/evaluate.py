"""Evaluate a run's newest checkpoint: the actor policy on fresh episodes, optionally a video.

    python -m agents.evaluate runs/<name> [--episodes 100] [--seed N] [--greedy] [--video out.gif] [--json]
                              [--out result.json]
    python -m agents.evaluate ald-imaze9 --video ald.gif    # a pretrained actor (python -m agents.pretrained)

Only the actor model is built (no transformer for ALD or Asymm. AC), and it acts exactly as
the actors of a run do: the batched vector env in ``next_step`` autoreset mode
(:func:`agents.runtime.roles.actor.make_envs`), the fastest policy for the model
(:func:`agents.runtime.roles.policies.make_policy`, numpy for LSTMs), sampled actions
(:func:`~agents.runtime.roles.policies.sample_actions`), or the most likely action with ``--greedy``.

Episodes are spread evenly over the envs *before* they start (env ``i`` runs a fixed quota),
so short episodes are not over-represented as they would be by keeping the first N to end.
The result is printed (and written as JSON only where ``--out`` points) with the keys of the
metrics rows where they apply (``env_steps``, ``wall_clock_s`` of the checkpoint,
``success_rate``, ``episode_return``, ``episodes``) plus ``episode_length``, ``agent``,
``env_id``, ``seed``, ``checkpoint``, ``greedy``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys
from typing import Callable, Optional, Sequence

import numpy as np

VIDEO_FORMATS = (".gif", ".mp4")


class RunError(ValueError):
    """The run directory cannot be evaluated (missing, not a run, no checkpoint)."""


@dataclasses.dataclass
class EpisodeStats:
    returns: list[float]
    lengths: list[int]
    successes: list[bool]


def load_run(source: str):
    """``(RunConfig, checkpoint payload, what was read)`` of a run directory's newest checkpoint, a
    file of ``Agent.save`` or a pretrained actor's name; :class:`RunError` if unusable."""
    from agents.runtime import checkpoint
    from agents.runtime.config import saved_config

    if os.path.isdir(source):
        if not os.path.exists(os.path.join(source, "config.json")):
            raise RunError(f"{source!r} has no config.json: not a run directory")
        payload, path = checkpoint.load_latest(source)
        if payload is None:
            raise RunError(f"{source!r} has no readable checkpoint in {checkpoint.checkpoint_dir(source)}")
        where = os.path.relpath(path, source)
    else:
        from agents.api import _read

        try:
            payload = _read(source)
        except FileNotFoundError as exc:
            raise RunError(str(exc)) from None
        except (ValueError, OSError) as exc:  # (torch's unpickling errors run to many lines)
            first = str(exc).strip().split(". ")[0].splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise RunError(f"{source!r} is not a checkpoint or a file of Agent.save: {first}") from None
        where = source
    return saved_config(json.loads(payload["config"])), payload, where


def load_actor(config, payload: dict):
    """The actor model of ``config`` with the checkpoint's actor parameters."""
    from agents.runtime.topology import build_actor_model

    model = build_actor_model(config)
    model.load_state_dict(payload["actor"])
    return model.eval()


def choose_actions(greedy: bool, rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    from agents.runtime.roles.policies import sample_actions

    if greedy:
        return lambda logits: np.argmax(logits, axis=1)
    return lambda logits: sample_actions(logits, rng)


def run_episodes(config, model, episodes: int, num_envs: int, seed: int, greedy: bool) -> EpisodeStats:
    """``episodes`` episodes of the actor policy on the batched env (as :class:`~agents.runtime.roles.actor.Actor`
    steps it: ``first`` marks the observation after an autoreset step, whose action is ignored)."""
    from agents.runtime.roles.actor import EpisodeTracker, make_envs
    from agents.runtime.roles.policies import make_policy

    num_envs = max(1, min(num_envs, episodes))
    quota = np.full(num_envs, episodes // num_envs) + (np.arange(num_envs) < episodes % num_envs)
    envs = make_envs(config, num_envs)
    policy = make_policy(model)
    act = choose_actions(greedy, np.random.default_rng(seed))
    stats = EpisodeStats([], [], [])
    try:
        obs, _ = envs.reset(seed=seed)
        state = policy.initial_state(num_envs)
        tracker = EpisodeTracker(num_envs)
        done = np.zeros(num_envs, dtype=np.int64)
        while (done < quota).any():
            logits, state = policy.step(obs, state, tracker.first)
            obs, reward, terminated, truncated, info = envs.step(act(logits))
            for i, episode in tracker.step(reward, terminated, truncated, info)[1]:
                if done[i] < quota[i]:
                    stats.returns.append(episode.ret)
                    stats.lengths.append(episode.length)
                    stats.successes.append(episode.success)
                    done[i] += 1
    finally:
        envs.close()
    return stats


def record_video(config, model, path: str, seed: int, greedy: bool) -> int:
    """One episode on a single ``rgb_array`` env driven by the same policy; returns the frame count."""
    import gymnasium as gym

    import memory_envs  # noqa: F401  (registers the ids)
    from agents.runtime.roles.policies import make_policy

    kwargs = config.env_overrides()
    if config.max_episode_steps:
        kwargs["max_episode_steps"] = config.max_episode_steps
    env = gym.make(config.env_id, render_mode="rgb_array", **kwargs)
    policy = make_policy(model)
    act = choose_actions(greedy, np.random.default_rng(seed))
    try:
        obs, _ = env.reset(seed=seed)
        state, first = policy.initial_state(1), np.ones(1, dtype=bool)
        frames, ret = [annotate(env.render(), 0, 0.0, 0.0)], 0.0
        while True:
            logits, state = policy.step(obs[None], state, first)
            obs, reward, terminated, truncated, info = env.step(int(act(logits)[0]))
            ret += float(reward)
            end = (" success" if info.get("is_success") else " failure") if terminated or truncated else ""
            frames.append(annotate(env.render(), len(frames), float(reward), ret, end))
            first = np.zeros(1, dtype=bool)
            if terminated or truncated:
                break
        fps = env.metadata.get("render_fps", 8)
    finally:
        env.close()
    write_video(path, frames, fps)
    return len(frames)


STRIP_PX = 16


def annotate(frame: np.ndarray, step: int, reward: float, ret: float, end: str = "") -> np.ndarray:
    """The frame over a strip that reads the step, its reward and the return so far (even
    height and width, as mp4 encoders need)."""
    from PIL import Image, ImageDraw

    height, width = frame.shape[:2]
    canvas = Image.new("RGB", (width + width % 2, height + STRIP_PX + (height + STRIP_PX) % 2), (20, 20, 20))
    canvas.paste(Image.fromarray(frame), (0, 0))
    text = f"step {step}  reward {reward:+.2f}  return {ret:.2f}{end}"
    ImageDraw.Draw(canvas).text((4, height + 2), text, fill=(235, 235, 235))
    return np.asarray(canvas)


def write_video(path: str, frames: list[np.ndarray], fps: int) -> None:
    import imageio.v3 as iio

    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    if path.lower().endswith(".gif"):
        iio.imwrite(path, np.stack(frames), extension=".gif", duration=1000 / fps, loop=0)
    else:
        # even sizes suffice for yuv420p: no rescaling to ffmpeg's default 16-pixel blocks
        iio.imwrite(path, np.stack(frames), extension=".mp4", plugin="FFMPEG", fps=fps, macro_block_size=1)


def check_video_path(path: str) -> Optional[str]:
    """An error message for an unusable ``--video`` path, else None."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in VIDEO_FORMATS:
        return f"--video must end in {' or '.join(VIDEO_FORMATS)}, got {path!r}"
    if ext == ".mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
        return "--video .mp4 needs imageio's ffmpeg plugin: pip install -e '.[video]' (or write a .gif)"
    return None


def evaluate(run_dir: str, episodes: int, seed: Optional[int], greedy: bool, num_envs: int,
             video: Optional[str] = None) -> dict:
    """Evaluate the newest checkpoint of ``run_dir`` (or a saved agent file, or a pretrained
    actor's name); the result (nothing is written but ``video``)."""
    config, payload, path = load_run(run_dir)
    model = load_actor(config, payload)
    seed = config.seed if seed is None else seed
    stats = run_episodes(config, model, episodes, num_envs, seed, greedy)
    counters = payload.get("counters", {})
    result = {
        "agent": config.agent, "env_id": config.env_id, "env_kwargs": config.env_overrides(),
        "max_episode_steps": config.max_episode_steps, "seed": seed, "greedy": greedy,
        "checkpoint": path,
        "env_steps": int(counters.get("env_steps", 0)), "learner_steps": int(counters.get("learner_steps", 0)),
        "wall_clock_s": float(counters.get("wall_clock_s", 0.0)),
        "episodes": len(stats.returns),
        "success_rate": float(np.mean(stats.successes)),
        "episode_return": float(np.mean(stats.returns)),
        "episode_length": float(np.mean(stats.lengths)),
    }
    if video:
        result["video"] = video
        result["video_frames"] = record_video(config, model, video, seed, greedy)
    return result


def format_result(r: dict) -> str:
    lines = [
        f"{r['agent']} on {r['env_id']} ({r['checkpoint']}: {r['env_steps']:,} env steps, "
        f"{r['learner_steps']:,} learner steps, {r['wall_clock_s']:.0f} s of training)",
        f"  {r['episodes']} episodes, {'greedy' if r['greedy'] else 'sampled'} actions, seed {r['seed']}",
        f"  success rate {r['success_rate']:.3f}   mean return {r['episode_return']:.3f}   "
        f"mean length {r['episode_length']:.1f}",
    ]
    if "video" in r:
        lines.append(f"  video: {r['video']} ({r['video_frames']} frames)")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m agents.evaluate", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("run_dir", help="a run directory (runs/<name>) with config.json and checkpoints/, a file of "
                                        "Agent.save, or a pretrained actor's name (python -m agents.pretrained)")
    parser.add_argument("--episodes", type=int, default=100, help="episodes to evaluate (>= 1)")
    parser.add_argument("--seed", type=int, default=None, help="env and sampling seed (default: the run's seed)")
    parser.add_argument("--greedy", action="store_true", help="take the most likely action instead of sampling")
    parser.add_argument("--num-envs", type=int, default=16, help="envs stepped together with batched inference")
    parser.add_argument("--video", default=None, help="also record one episode to this .gif (or .mp4) file")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--out", default=None, help="also write the result as JSON to this file (nothing is "
                                                    "written otherwise)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    if args.num_envs < 1:
        parser.error(f"--num-envs must be >= 1, got {args.num_envs}")
    if args.video and (message := check_video_path(args.video)):
        parser.error(message)
    import torch

    torch.set_num_threads(1)  # as an actor: one thread (docs/architecture.md "Pitfalls checked")
    try:
        result = evaluate(args.run_dir, args.episodes, args.seed, args.greedy, args.num_envs, args.video)
    except RunError as exc:
        parser.error(str(exc))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2) if args.json else format_result(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
