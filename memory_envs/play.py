"""Play a memory env with the keyboard.

    python -m memory_envs.play MemoryEnvs/IMaze-9x9-v0 [--seed N]

Up arrow: forward; left/right arrows: turn; space: do nothing (where the env has that action);
Esc or closing the window quits. Episodes restart automatically; the bar under the maze shows
the step, the reward, the return and how the last episode ended.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

import memory_envs
from memory_envs.rendering import import_pygame

HELP_TEXT = "arrows: forward/turn  space: no-op  Esc: quit"


def key_bindings(pygame, env: gym.Env) -> dict[int, int]:
    """pygame key code -> action, from the env's ``Actions`` enum (forward, turns, no-op if any)."""
    actions = env.unwrapped.Actions
    bindings = {pygame.K_UP: actions.FORWARD, pygame.K_LEFT: actions.LEFT, pygame.K_RIGHT: actions.RIGHT}
    if hasattr(actions, "NOOP"):
        bindings[pygame.K_SPACE] = actions.NOOP
    return {key: int(action) for key, action in bindings.items()}


@dataclass
class PlaySession:
    """Game state of a play session, separate from the event loop so tests can drive it."""

    env: gym.Env
    seed: int | None = None
    steps: int = 0
    episode_return: float = 0.0
    last_reward: float = 0.0
    returns: list[float] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)

    def __post_init__(self):
        self.env.reset(seed=self.seed)

    def act(self, action: int) -> None:
        _, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        self.last_reward = float(reward)
        self.episode_return += float(reward)
        if terminated or truncated:
            self.returns.append(self.episode_return)
            self.successes.append(bool(info.get("is_success", False)))
            self.episode_return = 0.0
            self.env.reset()

    def status(self) -> str:
        last = "-" if not self.successes else ("success" if self.successes[-1] else "failed")
        return (f"step {self.steps}  reward {self.last_reward:+.2f}  return {self.episode_return:.2f}  "
                f"episodes {len(self.returns)}  last: {last}")


def play(env_id: str, seed: int | None = None, scale: int = 2, fps: int = 30) -> PlaySession:
    """Open a window and play ``env_id`` until Esc or the window is closed; returns the session."""
    pygame = import_pygame()
    env = gym.make(env_id, render_mode="rgb_array")
    session = PlaySession(env, seed)
    bindings = key_bindings(pygame, env)
    pygame.display.init()  # display and font only: pygame.init() would open an audio device too
    pygame.font.init()
    font = pygame.font.Font(None, 20)
    frame = env.render()
    width, height = frame.shape[1] * scale, frame.shape[0] * scale
    screen = pygame.display.set_mode((max(width, 420), height + 44))
    pygame.display.set_caption(f"{env_id} - {HELP_TEXT}")
    clock = pygame.time.Clock()
    running = True
    while running:
        for event in pygame.event.get():
            if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE):
                running = False
                break
            if event.type == pygame.KEYDOWN and event.key in bindings:
                session.act(bindings[event.key])
        screen.fill((255, 255, 255))
        frame = np.ascontiguousarray(env.render().transpose(1, 0, 2))
        surface = pygame.transform.scale(pygame.surfarray.make_surface(frame), (width, height))
        screen.blit(surface, ((screen.get_width() - width) // 2, 0))
        for row, text in enumerate((session.status(), HELP_TEXT)):
            screen.blit(font.render(text, True, (20, 20, 20)), (6, height + 4 + 20 * row))
        pygame.display.flip()
        clock.tick(fps)
    env.close()
    pygame.quit()
    return session


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m memory_envs.play", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("env_id", help=f"one of {', '.join(memory_envs.ENV_IDS)}")
    parser.add_argument("--seed", type=int, default=None, help="seed of the first episode")
    parser.add_argument("--scale", type=int, default=2, help="window pixels per frame pixel")
    args = parser.parse_args(argv)
    if args.env_id not in gym.registry:
        close = difflib.get_close_matches(args.env_id, list(gym.registry), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        parser.exit(2, f"error: unknown env id {args.env_id!r}{hint}\n")
    session = play(args.env_id, args.seed, scale=args.scale)
    wins = sum(session.successes)
    print(f"{session.steps} steps, {len(session.returns)} episodes, {wins} successes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
