"""One frozen, typed :class:`Settings`, loaded from an ini file and ``XDSI_*`` variables.

Precedence (lowest first): built-in defaults, the ini file (``[xdsi]`` section; a commented
default ships as ``samples/xdsi.ini``), environment variables ``XDSI_<FIELD>`` (upper case), then
explicit keyword overrides (command-line options).  Settings are passed explicitly; there is no
module-level mutable configuration (design note 9).
"""

from __future__ import annotations

import configparser
import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final, Literal

from xdsi import ns

DuplicatePolicy = Literal["keep", "replace"]
NotFoundCode = Literal["XDSDocumentUniqueIdError", "XDSMissingDocument"]
RetrieveMethod = Literal["c-get", "c-move"]

ENV_PREFIX = "XDSI_"
INI_SECTION = "xdsi"


def default_data_dir() -> Path:
    """Per-user data directory (``$XDG_DATA_HOME/xdsi``, else ``~/.local/share/xdsi``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "xdsi"


@dataclass(frozen=True)
class Settings:
    """All configuration of an xdsi process.  See ``samples/xdsi.ini`` for each field's meaning."""

    # Store
    data_dir: Path = dataclasses.field(default_factory=default_data_dir)
    database_url: str = ""
    """SQLAlchemy URL; empty means SQLite at ``<data_dir>/index.sqlite``."""
    duplicate_policy: DuplicatePolicy = "keep"

    # Identity (RAD-69 / XDS)
    repository_unique_ids: tuple[str, ...] = ("1.3.6.1.4.1.21367.13.80.110",)
    """RepositoryUniqueId(s) this source answers for; the first is the one put in manifests."""
    home_community_id: str = ""
    """``urn:oid:...`` of our community; empty accepts any HomeCommunityId (it is still echoed)."""
    check_repository_id: bool = True
    not_found_code: NotFoundCode = ns.XDS_DOCUMENT_UNIQUE_ID_ERROR

    # HTTP service
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    endpoint_path: str = "/xdsi/ImagingDocumentSource"
    threads: int = 8
    render_workers: int = 2
    """Worker processes rendering the documents of Retrieve Rendered requests for several
    documents (the process-wide pool, the transcoding one when the counts match); 0: in the
    request thread instead."""

    # DICOM (C-STORE SCP)
    ae_title: str = "XDSI"
    dicom_host: str = "127.0.0.1"
    dicom_port: int = 11112
    max_associations: int = 10
    """Most concurrent C-STORE associations the SCP accepts (more are rejected, transient)."""

    # Gateway mode (a PACS behind us; xdsi.store.gateway): on when pacs_ae_title is set
    pacs_ae_title: str = ""
    """Called AE title of the PACS; empty serves the local store instead."""
    pacs_host: str = "127.0.0.1"
    pacs_port: int = 104
    pacs_calling_ae: str = "XDSI"
    """Our AE title when we call the PACS (C-FIND, C-GET, C-MOVE)."""
    pacs_retrieve: RetrieveMethod = "c-get"
    pacs_move_destination: str = ""
    """C-MOVE destination AE title (empty: ``ae_title``); the PACS must know it as
    ``dicom_host:dicom_port``, where the gateway then listens for the C-STOREs."""
    pacs_association_timeout: float = 10.0
    """Seconds to connect and to get the association accepted or released."""
    pacs_dimse_timeout: float = 30.0
    """Seconds to wait for any one DIMSE message (C-FIND/C-GET/C-MOVE response, C-STORE)."""
    pacs_overall_timeout: float = 300.0
    """Seconds one retrieval from the PACS may take in all; a request never waits longer."""
    pacs_max_associations: int = 4
    """Most associations the gateway opens to the PACS at once."""
    pacs_stream: bool = True
    """Start the response once the first instance has arrived (else wait for all of them)."""
    pacs_cache_dir: str = ""
    """Cache of fetched instances; empty means ``<data_dir>/gateway-cache``."""
    pacs_cache_bytes: int = 10 * 1024**3
    """Size limit of that cache (least recently used instances are evicted)."""

    # Limits
    max_request_bytes: int = 10 * 1024 * 1024
    max_documents_per_request: int = 10_000
    max_response_bytes: int = 16 * 1024**3

    # Metadata (PS3.18 2017b §6.4.3)
    metadata_cache_bytes: int = 1024**3
    """Disk cache of Native DICOM Model texts under ``<data_dir>/cache``; 0 = memory only."""
    max_metadata_response_bytes: int = 256 * 1024**2
    """Most XPathResponse text in one metadata response (held in memory; 0005 beyond)."""

    # Transcoding (RAD-69)
    transcode_workers: int = 2
    """Worker processes that transcode RAD-69 documents (0: in the request thread instead)."""
    transcode_window: int = 4
    """Transcoded documents a response keeps in progress ahead of its writer; the first this many
    are finished before the envelope is written, so their failures are RegistryErrors."""

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'index.sqlite'}"

    @property
    def effective_pacs_cache_dir(self) -> Path:
        return Path(self.pacs_cache_dir) if self.pacs_cache_dir else self.data_dir / "gateway-cache"

    @property
    def repository_unique_id(self) -> str:
        return self.repository_unique_ids[0]


def _convert(name: str, raw: str, annotation: Any) -> Any:
    """Turn a text value from ini/environment into the field's type."""
    origin = typing.get_origin(annotation)
    text = raw.strip()
    if annotation is Path:
        return Path(text).expanduser()
    if annotation is bool:
        lowered = text.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ValueError(f"{name}: expected a boolean, got {raw!r}")
    if annotation is int:
        try:
            return int(text.replace("_", ""))
        except ValueError:
            raise ValueError(f"{name}: expected an integer, got {raw!r}") from None
    if annotation is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{name}: expected a number, got {raw!r}") from None
    if origin is tuple:
        return tuple(part for part in (p.strip() for p in text.replace(",", " ").split()) if part)
    if origin is Literal:
        allowed = typing.get_args(annotation)
        if text not in allowed:
            raise ValueError(f"{name}: expected one of {', '.join(allowed)}, got {raw!r}")
        return text
    return text


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(Settings, globalns=vars(types) | globals())
    return {f.name: hints[f.name] for f in fields(Settings)}


def load_settings(
    ini_path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build :class:`Settings` from defaults, an ini file, the environment and overrides.

    ``ini_path`` defaults to ``$XDSI_CONFIG`` when set.  Unknown ini keys are an error (a typo in a
    configuration must not be silently ignored); unknown environment variables are not.
    """
    env = os.environ if environ is None else environ
    types_by_name = _field_types()
    values: dict[str, Any] = {}
    path = ini_path if ini_path is not None else env.get(ENV_PREFIX + "CONFIG")
    if path:
        parser = configparser.ConfigParser(interpolation=None)
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh)
        if parser.has_section(INI_SECTION):
            for key, raw in parser.items(INI_SECTION):
                if key not in types_by_name:
                    raise ValueError(f"{path}: unknown setting {key!r} in [{INI_SECTION}]")
                values[key] = _convert(key, raw, types_by_name[key])
    for name, annotation in types_by_name.items():
        raw_env = env.get(ENV_PREFIX + name.upper())
        if raw_env is not None:
            values[name] = _convert(name, raw_env, annotation)
    for name, value in overrides.items():
        if name not in types_by_name:
            raise TypeError(f"unknown setting {name!r}")
        if value is not None:
            values[name] = value
    settings = Settings(**values)
    _validate(settings)
    return settings


MAX_TCP_PORT: Final = 65535


def _validate(settings: Settings) -> None:
    # A port beyond 65535 is not refused by the socket layer: getaddrinfo() keeps its low 16
    # bits, so ``--port 99999`` served on 34463.
    for name in ("http_port", "dicom_port"):
        if not 0 <= getattr(settings, name) <= MAX_TCP_PORT:
            raise ValueError(f"{name} must be 0..{MAX_TCP_PORT} (0: any free port)")
    if not 0 < settings.pacs_port <= MAX_TCP_PORT:
        raise ValueError(f"pacs_port must be 1..{MAX_TCP_PORT}")
    if not settings.repository_unique_ids:
        raise ValueError("repository_unique_ids: at least one RepositoryUniqueId is required")
    if not settings.endpoint_path.startswith("/"):
        raise ValueError("endpoint_path must start with '/'")
    for name in ("threads", "max_request_bytes", "max_documents_per_request", "max_response_bytes"):
        if getattr(settings, name) <= 0:
            raise ValueError(f"{name} must be positive")
    if settings.metadata_cache_bytes < 0:
        raise ValueError("metadata_cache_bytes must not be negative")
    if settings.max_metadata_response_bytes <= 0:
        raise ValueError("max_metadata_response_bytes must be positive")
    if settings.transcode_workers < 0:
        raise ValueError("transcode_workers must not be negative")
    if settings.render_workers < 0:
        raise ValueError("render_workers must not be negative")
    if settings.transcode_window <= 0:
        raise ValueError("transcode_window must be positive")
    for name in (
        "pacs_association_timeout",
        "pacs_dimse_timeout",
        "pacs_overall_timeout",
        "pacs_max_associations",
        "pacs_cache_bytes",
    ):
        if getattr(settings, name) <= 0:
            raise ValueError(f"{name} must be positive")
