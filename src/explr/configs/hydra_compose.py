"""A Hydra primary config (one with a `defaults:` list) composed by Hydra's own compose API.

The optimizer and scheduler of such a config usually live in config groups (`optim/sgd.yaml`,
`scheduler/multi_step.yaml`); what the training script receives is Hydra's composition of them.
explr asks Hydra for it (`initialize_config_dir` + `compose`, hydra-core from the `frameworks` extra)
and reads the composed config, interpolations left for omegaconf (configs/interpolation.py). Line
numbers of a composed config do not point into any one file, so its facts are located by key only,
and it is written out whole (-o), never over the primary config.
"""
from __future__ import annotations

from explr.configs.interpolation import FRAMEWORKS_EXTRA
from explr.configs.rewrite import comments
from explr.configs.source import ConfigSource
from explr.errors import ConfigError, quote_error


def is_primary(source: ConfigSource) -> bool:
    """A Hydra primary config: a top-level `defaults:` list (group choices, `_self_`, overrides)."""
    defaults = source.data.get("defaults")
    return isinstance(defaults, list) and bool(defaults)


def compose_with_hydra(source: ConfigSource) -> str:
    """The composed job config as YAML text (interpolations kept), from Hydra's compose API."""
    try:
        from hydra import compose, initialize_config_dir
        from hydra.core.global_hydra import GlobalHydra
        from omegaconf import OmegaConf
    except ImportError:
        raise ConfigError(f"{source.where(('defaults',))}: a config with a defaults list is composed by Hydra: "
                          f"install hydra-core ({FRAMEWORKS_EXTRA}), or convert the composed config "
                          "(python train.py --cfg job > job.yaml)") from None
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(source.path.resolve().parent), version_base=None):
            composed = compose(config_name=source.path.stem)
        return OmegaConf.to_yaml(composed)
    except Exception as exc:  # noqa: BLE001 - any Hydra composition failure is the user's config, quoted in one line
        raise ConfigError(f"{source.path}: Hydra cannot compose this config: {quote_error(exc)}") from None
    finally:
        GlobalHydra.instance().clear()


def composed(source: ConfigSource) -> ConfigSource:
    """`source` itself, or, for a Hydra primary config, the config Hydra composes from it."""
    if not is_primary(source):
        return source
    header = [f"# composed by Hydra (compose API) from {source.path} and its defaults list"]
    text = "\n".join(header + comments(source.text)) + "\n" + compose_with_hydra(source)
    return ConfigSource.parse(text, source.path, composed=True)
