"""The reference engines: vmlab's complete answers to the lab's tasks, for demonstration and oracles.

Students write their own engines from `labs/isa-emulation/skeleton/`; this package is the tutors' part
and a course may ship the student kit without it (see vmlab.isa.registry). The names below come from
vmlab.isa.registry.
"""

from vmlab.isa.registry import (
    ENGINES,
    INTERPRETERS,
    TRANSLATORS,
    Engine,
    as_result,
    bind_params,
    engine_names,
    engine_params,
    get_engine,
    load_engine_file,
    parse_engines,
)

__all__ = [
    "ENGINES",
    "INTERPRETERS",
    "TRANSLATORS",
    "Engine",
    "as_result",
    "bind_params",
    "engine_names",
    "engine_params",
    "get_engine",
    "load_engine_file",
    "parse_engines",
]
