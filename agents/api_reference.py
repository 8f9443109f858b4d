"""Write the API reference (``docs/api.md``) from the docstrings; ``--check`` fails if it is stale.

    python -m agents.api_reference            # rewrite docs/api.md
    python -m agents.api_reference --check    # exit 1 if docs/api.md differs (a test runs this)
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import sys

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "api.md")


def _doc(obj) -> str:
    """The docstring, its doctest examples fenced as ``pycon`` (a run of lines from ``>>>`` to a blank one)."""
    lines, out, example = inspect.cleandoc(obj.__doc__ or "").strip().splitlines(), [], False
    for line in lines:
        if line.startswith(">>>") and not example:
            out.append("```pycon")
            example = True
        elif example and not line.strip():
            out.append("```")
            example = False
        out.append(line)
    return "\n".join(out + (["```"] if example else []))


def _signature(name: str, obj) -> str:
    try:
        return f"{name}{inspect.signature(obj, eval_str=True)}"
    except (TypeError, ValueError):
        return name


def _entry(title: str, obj, level: str = "###") -> list[str]:
    lines = [f"{level} `{title}`", ""]
    if callable(obj) and not isinstance(obj, property):
        lines += ["```python", _signature(title.split(".")[-1], obj), "```", ""]
    if _doc(obj):
        lines += [_doc(obj), ""]
    return lines


def _class(cls, members: tuple[str, ...]) -> list[str]:
    lines = [f"### `{cls.__module__}.{cls.__name__}`", ""]
    if _doc(cls):
        lines += [_doc(cls), ""]
    for name in members:
        member = inspect.getattr_static(cls, name)
        target = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
        if isinstance(member, property):
            lines += [f"#### `{cls.__name__}.{name}` (property)", "", _doc(member), ""]
        else:
            lines += [f"#### `{cls.__name__}.{name}`", "", "```python", _signature(name, target), "```", ""]
            if _doc(target):
                lines += [_doc(target), ""]
    return lines


def _options() -> list[str]:
    from agents.runtime.config import RunConfig

    lines = ["| option | CLI | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(RunConfig):
        if f.name in ("agent", "env_id", "resume"):
            continue
        default = "''" if f.default == "" else repr(f.default)
        meaning = f.metadata["help"].replace("|", "\\|")
        lines.append(f"| `{f.name}` | `--{f.name.replace('_', '-')}` | `{default}` | {meaning} |")
    return lines


def render() -> str:
    """The reference as markdown."""
    import memory_envs
    from agents import api

    lines = ["# API reference", "", "Generated from the docstrings by `python -m agents.api_reference`; a test keeps "
             "it current. The design is in [architecture.md](architecture.md).", "", "## Agents (`agents`)", "",
             _doc(api), ""]
    lines += _class(api.Agent, ("__init__", "learn", "save", "load", "actor", "env_steps", "run_dir"))
    for cls in (api.ALD, api.LSTM, api.GTrXL, api.AsymmAC):
        lines += [f"### `agents.{cls.__name__}`", "", _doc(cls) + f" (`agent = {cls.agent!r}`)", ""]
    lines += _class(api.ActorPolicy, ("predict",))
    lines += _entry("agents.load_actor", api.load_actor)
    from agents import pretrained

    lines += ["### Pretrained actors (`agents.pretrained`)", "", _doc(pretrained), ""]
    for name in ("names", "path_of", "describe", "export"):
        lines += _entry(f"agents.pretrained.{name}", getattr(pretrained, name), "####")
    lines += ["### Options", "", "Keyword options of an agent, and the command line's options "
              "(`python -m agents.<agent> --help`), with their defaults:", ""] + _options() + [""]
    lines += ["## Environments (`memory_envs`)", "", _doc(memory_envs), "",
              "| id | class | vector class (`gymnasium.make_vec`) | kwargs | max_episode_steps |", "|---|---|---|---|---|"]
    for e in memory_envs.ENV_TABLE:
        lines.append(f"| `{e.id}` | `{e.entry_point}` | `{e.vector_entry_point}` | `{e.kwargs}` | {e.max_episode_steps} |")
    lines.append("")
    for cls in (memory_envs.IMazeEnv, memory_envs.MetaFetchEnv):
        lines += [f"### `memory_envs.{cls.__name__}`", "", "```python", _signature(cls.__name__, cls.__init__)
                  .replace("(self, ", "(").replace("(self)", "()"), "```", "", _doc(cls), ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.api_reference", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare: exit 1 if the file is stale")
    parser.add_argument("--out", default=OUT, help="the markdown file")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = open(args.out).read() if os.path.exists(args.out) else ""
        if current != text:
            print(f"{args.out} is stale: run python -m agents.api_reference", file=sys.stderr)
            return 1
        return 0
    with open(args.out, "w") as f:
        f.write(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
