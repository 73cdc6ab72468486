"""Where built-in presets live: inside the installed wheel, or at the root of a source checkout."""

from __future__ import annotations

from pathlib import Path

from mixpe_sim.errors import ConfigError

PRESET_KINDS = ("hardware", "memory", "energy", "area")
YAML_SUFFIXES = (".yaml", ".yml")


def data_root() -> Path:
    package_dir = Path(__file__).resolve().parents[1]
    installed = package_dir / "_data"
    return installed if installed.is_dir() else package_dir.parent


def preset_dir(kind: str) -> Path:
    return data_root() / "configs" / kind


def models_dir() -> Path:
    return data_root() / "workloads" / "models"


def list_presets(kind: str) -> list[str]:
    return sorted(p.stem for p in preset_dir(kind).glob("*.yaml"))


def looks_like_path(spec: str) -> bool:
    return spec.endswith(YAML_SUFFIXES) or "/" in spec or Path(spec).is_file()


def resolve_preset(kind: str, spec: str, option: str, relative_to: Path | None = None) -> Path:
    """Map a preset name or a file path to a file; unknown names list what is available."""
    if looks_like_path(spec):
        path = Path(spec)
        if not path.is_absolute() and relative_to is not None and not path.exists():
            path = relative_to / path
        if not path.is_file():
            raise ConfigError(option, "", f"file '{spec}' does not exist")
        return path
    path = preset_dir(kind) / f"{spec}.yaml"
    if not path.is_file():
        raise ConfigError(
            option, "", f"unknown {kind} preset '{spec}' (allowed: {', '.join(list_presets(kind))})"
        )
    return path
