"""A Hydra primary config (one with a `defaults:` list) composed by Hydra's own compose API.

The optimizer and scheduler of such a config usually live in config groups (`optim/sgd.yaml`,
`scheduler/multi_step.yaml`); what the training script receives is Hydra's composition of them.
explr asks Hydra for it (`initialize_config_dir` + `compose`, hydra-core from the `frameworks` extra)
and reads the composed config, interpolations left for omegaconf (configs/interpolation.py). Line
numbers of a composed config do not point into any one file, so its facts are located by key only,
and it is written out whole (-o), never over the primary config.
"""
from __future__ import annotations

import re

from explr.configs.interpolation import FRAMEWORKS_EXTRA
from explr.configs.rewrite import comments
from explr.configs.source import ConfigSource
from explr.errors import ConfigError, quote_error


def is_primary(source: ConfigSource) -> bool:
    """A Hydra primary config: a top-level `defaults:` list (group choices, `_self_`, overrides)."""
    defaults = source.data.get("defaults")
    return isinstance(defaults, list) and bool(defaults)


def compose_with_hydra(source: ConfigSource) -> tuple[str, list[str]]:
    """The composed job config as YAML text (interpolations kept), from Hydra's compose API, and the overrides
    that replaced logging configs of uninstalled Hydra plugins."""
    try:
        from hydra import compose, initialize_config_dir
        from hydra.core.global_hydra import GlobalHydra
        from omegaconf import OmegaConf
    except ImportError:
        raise ConfigError(f"{source.where(('defaults',))}: a config with a defaults list is composed by Hydra: "
                          f"install hydra-core ({FRAMEWORKS_EXTRA}), or convert the composed config "
                          "(python train.py --cfg job > job.yaml)") from None
    overrides: list[str] = []
    while True:
        GlobalHydra.instance().clear()
        try:
            with initialize_config_dir(config_dir=str(source.path.resolve().parent), version_base=None):
                return OmegaConf.to_yaml(compose(config_name=source.path.stem, overrides=overrides)), overrides
        except Exception as exc:  # noqa: BLE001 - any composition failure is the user's config, quoted in one line
            logging = _missing_logging_plugin(exc)
            if logging is None or logging in overrides:
                raise ConfigError(f"{source.path}: Hydra cannot compose this config: {quote_error(exc)}"
                                  f"{_GLOBAL_HINT if '@package _global_' in source.text else ''}") from None
            overrides.append(logging)
        finally:
            GlobalHydra.instance().clear()


_GLOBAL_HINT = ("; a `# @package _global_` file (an experiment) composes only under its primary config: convert "
                "the composed job config (python train.py experiment=NAME --cfg job > job.yaml)")
# hydra/job_logging and hydra/hydra_logging set only the `hydra.*` node, never the job config the training code gets
_LOGGING_PLUGIN = re.compile(r"Could not find 'hydra/(job_logging|hydra_logging)/[^']+'")


def _missing_logging_plugin(exc: Exception) -> str | None:
    """The override that composes without an uninstalled logging plugin (hydra-colorlog), when that is the error."""
    found = _LOGGING_PLUGIN.search(str(exc))
    return f"hydra/{found.group(1)}=default" if found else None


def composed(source: ConfigSource) -> ConfigSource:
    """`source` itself, or, for a Hydra primary config, the config Hydra composes from it."""
    if not is_primary(source):
        return source
    job, overrides = compose_with_hydra(source)
    header = [f"# composed by Hydra (compose API) from {source.path} and its defaults list"]
    header += [f"# composed with {o}: its plugin is not installed; it sets only hydra.*, not the job config"
               for o in overrides]
    text = "\n".join(header + comments(source.text)) + "\n" + job
    return ConfigSource.parse(text, source.path, composed=True)
