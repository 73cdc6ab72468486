"""Configuration: YAML files and presets -> validated, frozen config objects."""

from mixpe_sim.config.loader import load_hardware, load_yaml_file, parse_overrides
from mixpe_sim.config.models import (
    ArrayConfig,
    BufferConfig,
    DramMemoryConfig,
    EnergyTable,
    FlatMemoryConfig,
    HardwareConfig,
    IdealMemoryConfig,
    MemoryConfig,
    QuantConfig,
)

__all__ = [
    "ArrayConfig",
    "BufferConfig",
    "DramMemoryConfig",
    "EnergyTable",
    "FlatMemoryConfig",
    "HardwareConfig",
    "IdealMemoryConfig",
    "MemoryConfig",
    "QuantConfig",
    "load_hardware",
    "load_yaml_file",
    "parse_overrides",
]
