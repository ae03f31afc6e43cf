"""The registry of sources: adding a gateway is one module here and one entry below.

``MODEL_SYNC_SOURCES`` (comma-separated, default ``vercel``) enables sources; each reads its
URL from ``MODEL_SYNC_<NAME>_URL`` (a URL, a file path or a ``file://`` URL), or the aliases
its module lists, else its default URL.
"""

from __future__ import annotations

from collections.abc import Mapping

from model_sync.sources import litellm, models_dev, openrouter, vercel
from model_sync.sources.base import Source

SOURCES: dict[str, Source] = {
    source.name: source
    for source in (vercel.SOURCE, openrouter.SOURCE, models_dev.SOURCE, litellm.SOURCE)
}
DEFAULT_SOURCES = (vercel.NAME,)
SOURCES_VARIABLE = "MODEL_SYNC_SOURCES"


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown source {name!r}; known: {', '.join(SOURCES)}") from None


def default_source_settings():
    from model_sync.settings import SourceSettings

    return tuple(
        SourceSettings(name=name, url=SOURCES[name].default_url) for name in DEFAULT_SOURCES
    )


def source_settings_from_env(env: Mapping[str, str]):
    """The enabled sources and their URLs; an unknown name or a blank URL fails the load
    naming the variable."""
    from model_sync.settings import SettingsError, SourceSettings

    raw = (env.get(SOURCES_VARIABLE) or "").strip()
    names = [part.strip().lower() for part in raw.replace(" ", ",").split(",") if part.strip()]
    names = names or list(DEFAULT_SOURCES)
    unknown = [name for name in names if name not in SOURCES]
    if unknown:
        raise SettingsError(
            f"{SOURCES_VARIABLE}={raw!r}: unknown source(s) {', '.join(unknown)}; "
            f"known: {', '.join(SOURCES)}"
        )
    if len(set(names)) != len(names):
        raise SettingsError(f"{SOURCES_VARIABLE}={raw!r}: a source is listed twice")
    enabled = []
    for name in names:
        source = SOURCES[name]
        url = source.default_url
        for variable in source.url_variables:
            value = env.get(variable)
            # Blank counts as unset, like every other variable.
            if value is not None and value.strip():
                url = value.strip()
                break
        enabled.append(SourceSettings(name=name, url=url))
    return tuple(enabled)
