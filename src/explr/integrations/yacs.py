"""The EXPLR node of yacs configs (detectron2, pycls): declared by add_explr_config, read by si_source."""
from __future__ import annotations

from typing import Any

from explr.errors import ConfigError


def add_explr_config(cfg: Any) -> None:
    """Declare cfg.EXPLR (as detectron2 projects declare their keys), so merge_from_file accepts it."""
    node = type(cfg)()
    node.LOCK = ""  # a lock file from `explr audit --lock`, or
    node.PARAMS = []  # the scale-invariant parameter names
    node.APPROXIMATE = False  # convert a setup with no exact equivalent (Nesterov, clipping, ...)
    cfg.EXPLR = node


def si_source(node: Any) -> dict:
    """si= / lock= for the runtime from the EXPLR node; exactly one must be set."""
    if node is None:
        raise ConfigError("cfg.EXPLR is missing: call add_explr_config(cfg) (explr.integrations.detectron2 or .pycls) "
                          "before merging the config `explr convert` wrote")
    if bool(node.LOCK) == bool(node.PARAMS):
        raise ConfigError("cfg.EXPLR needs exactly one of LOCK (a lock file) and PARAMS (SI parameter names); "
                          "merge the config `explr convert` wrote")
    return {"lock": node.LOCK} if node.LOCK else {"si": list(node.PARAMS)}
