"""Reading released checkpoints safely and loading them strictly.

Every network of :mod:`augane.nets` loads through :func:`load_state_dict_strict`:
``module.`` prefixes (``nn.DataParallel``) are stripped, names are mapped,
parts the caller declares irrelevant are dropped and reported, and then every
parameter and buffer of the network must be matched by a tensor of the same
shape. Any difference raises :class:`~augane.errors.CheckpointError` listing
the missing, unexpected and mis-shaped keys together with the file, instead of
the silent skipping of the reference loaders.

Files are untrusted. :func:`read_checkpoint` uses ``torch.load(...,
weights_only=True)``; a file that this refuses because it also pickles
foreign Python objects (PyTorch Lightning stores callback classes next to the
weights) is read again through a restricted unpickler that admits only the
types ``weights_only`` admits and turns every other object into an inert
:class:`ForeignObject` record. No code from the file is ever run.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from augane.errors import CheckpointError

log = logging.getLogger(__name__)

#: Buffers that a checkpoint may lack: PyTorch < 0.4.1 did not save them and
#: they play no role at inference (BatchNorm with a set momentum).
OPTIONAL_SUFFIXES: tuple[str, ...] = ("num_batches_tracked",)

#: Top-level entry that marks a checkpoint of random, untrained weights
#: (written by ``augane dev-weights --untrained``).
UNTRAINED_MARKER = "augane_untrained_weights"

#: How many keys of each kind an error message lists before summarising.
_LISTED_KEYS = 12


@dataclass(frozen=True)
class KnownRelease:
    """A publicly released checkpoint file AUGANE knows by name.

    Attributes:
        description: what the file is and where it comes from.
        sha256: hex digest of the released file, or ``None`` where its authors
            publish none (the digest a user's copy has is still recorded in
            every output's provenance).
    """

    description: str
    sha256: str | None


#: Released files by name. None of these projects publishes a checksum of
#: its files, so the digests are unknown; a value filled in here makes
#: :func:`check_release` warn whenever a file of that name differs.
KNOWN_RELEASES: dict[str, KnownRelease] = {
    "deca_model.tar": KnownRelease("DECA release (E_flame, E_detail, D_detail), YadiraF/DECA", None),
    "OpenGprahAU-ResNet50_first_stage.pth": KnownRelease(
        "OpenGraphAU ResNet-50, stage 1 (ANFL head), 27 + 14 AUs, lingjivoo/OpenGraphAU", None
    ),
    "OpenGprahAU-ResNet50_second_stage.pth": KnownRelease(
        "OpenGraphAU ResNet-50, stage 2 (MEFL head), 27 + 14 AUs, lingjivoo/OpenGraphAU", None
    ),
}


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def check_release(path: str | Path) -> str:
    """Digest a checkpoint and compare it with :data:`KNOWN_RELEASES`; returns the sha256.

    Logs a warning when the file carries a known release name but differs from
    that release's published digest, so a user learns that the file is not the
    expected one (a different version, a fine-tuned copy, a broken download).
    """
    path = Path(path)
    sha256 = sha256_file(path)
    known = KNOWN_RELEASES.get(path.name)
    if known is None:
        log.info("%s: sha256 %s (not a release file AUGANE knows by name)", path, sha256)
    elif known.sha256 is None:
        log.info("%s: sha256 %s (%s; no published checksum to compare with)", path, sha256, known.description)
    elif known.sha256 != sha256:
        log.warning(
            "%s has sha256 %s but the released %s has %s: this is not the released file",
            path, sha256, path.name, known.sha256,
        )
    return sha256


class ForeignObject:
    """An inert record of a pickled object whose type is not admitted (never instantiated for real).

    Attributes:
        type_name: ``module.qualname`` the file named.
        args: constructor arguments the pickle carried.
        state: state the pickle would have set.
    """

    type_name = "<foreign>"

    def __new__(cls, *args: Any, **kwargs: Any):
        instance = super().__new__(cls)
        instance.args = args
        instance.state = None
        return instance

    def __init__(self, *args: Any, **kwargs: Any):
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"ForeignObject({self.type_name})"


def _foreign_type(type_name: str) -> type:
    return type("ForeignObject", (ForeignObject,), {"type_name": type_name})


def _restricted_pickle_module() -> types.ModuleType:
    """A ``pickle``-like module whose unpickler admits only ``weights_only`` types."""
    try:
        from torch._weights_only_unpickler import _get_allowed_globals

        allowed = dict(_get_allowed_globals())
    except (ImportError, AttributeError):  # pragma: no cover - depends on the torch version
        allowed = {}
    replaced: set[str] = set()

    class RestrictedUnpickler(pickle.Unpickler):
        def find_class(self, module_name: str, name: str) -> Any:
            full_name = f"{module_name}.{name}"
            if full_name in allowed:
                return allowed[full_name]
            if module_name == "torch._utils" and name.startswith("_rebuild_"):
                import torch._utils

                return getattr(torch._utils, name)
            replaced.add(full_name)
            return _foreign_type(full_name)

    module = types.ModuleType("augane_restricted_pickle")
    module.Unpickler = RestrictedUnpickler
    module.load = lambda handle, **kwargs: RestrictedUnpickler(handle, **kwargs).load()
    module.replaced = replaced
    return module


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """Read a torch checkpoint file without running code from it.

    Raises:
        CheckpointError: the file is missing or not a torch checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as refusal:
        log.debug("%s: weights-only loading refused (%s); reading with the restricted unpickler", path, refusal)
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable torch checkpoint: {err}") from err
    restricted = _restricted_pickle_module()
    try:
        content = torch.load(path, map_location=map_location, pickle_module=restricted, weights_only=False)
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable torch checkpoint: {err}") from err
    if restricted.replaced:
        log.info("%s: kept as inert records (not loaded): %s", path, ", ".join(sorted(restricted.replaced)))
    return content


def _is_state_dict(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(
        isinstance(key, str) and isinstance(tensor, torch.Tensor) for key, tensor in value.items()
    )


def find_state_dict(content: Any, source: str | Path, keys: Iterable[str] = ("state_dict", "model")) -> dict[str, torch.Tensor]:
    """The state dict inside a checkpoint: the content itself, or its first entry among ``keys``.

    Raises:
        CheckpointError: naming the entries the file has.
    """
    if _is_state_dict(content):
        return dict(content)
    if isinstance(content, Mapping):
        for key in keys:
            if key in content and _is_state_dict(content[key]):
                return dict(content[key])
        entries = sorted(str(key) for key in content)
        raise CheckpointError(
            f"checkpoint {source} holds no state dict: expected tensors by name or one of "
            f"{list(keys)} (it has entries {entries[:_LISTED_KEYS]})"
        )
    raise CheckpointError(f"checkpoint {source} holds a {type(content).__name__}, not a state dict")


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    """Remove a leading ``prefix`` (``nn.DataParallel``'s ``module.``) from every key that has it."""
    return {(key[len(prefix):] if key.startswith(prefix) else key): value for key, value in state_dict.items()}


def select_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries under ``prefix`` with the prefix removed (``E_flame.`` -> the encoder's own keys)."""
    return {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}


@dataclass
class LoadReport:
    """What :func:`load_state_dict_strict` did.

    Attributes:
        source: the file (or ``file:entry``) the weights came from.
        loaded: number of tensors loaded.
        ignored: checkpoint keys dropped on purpose (parts the network does not use).
        defaulted: optional buffers the checkpoint lacked (kept at their defaults).
    """

    source: str
    loaded: int
    ignored: list[str] = field(default_factory=list)
    defaulted: list[str] = field(default_factory=list)


@dataclass
class CheckpointInfo:
    """Where a loaded network's weights came from (recorded as provenance).

    Attributes:
        path: the checkpoint file.
        sha256: its digest.
        report: what the strict load did.
        ignored_entries: top-level entries of the file not used (e.g. DECA's ``E_detail``).
    """

    path: str
    sha256: str
    report: LoadReport
    ignored_entries: list[str] = field(default_factory=list)
    untrained: bool = False

    def provenance(self) -> dict[str, Any]:
        """JSON-ready summary: file name, sha256 and whether the weights are untrained."""
        return {"checkpoint": Path(self.path).name, "sha256": self.sha256, "untrained": self.untrained}


def checkpoint_info(path: str | Path, content: Any, report: LoadReport, ignored_entries: Iterable[str] = ()) -> CheckpointInfo:
    """Digest the file, compare it with :data:`KNOWN_RELEASES`, and warn loudly about untrained weights."""
    untrained = isinstance(content, Mapping) and UNTRAINED_MARKER in content
    if untrained:
        log.warning("%s holds UNTRAINED random weights (%s): outputs are meaningless, for development only",
                    path, content[UNTRAINED_MARKER])
    ignored = [str(name) for name in ignored_entries if name != UNTRAINED_MARKER]
    return CheckpointInfo(path=str(path), sha256=check_release(path), report=report, ignored_entries=ignored,
                          untrained=untrained)


def key_families(keys: Iterable[str], depth: int = 2) -> list[str]:
    """Distinct leading name parts of ``keys`` (``deca.E_detail.x.y`` -> ``deca.E_detail``), sorted."""
    return sorted({".".join(key.split(".")[:depth]) for key in keys})


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LISTED_KEYS])
    more = f", ... ({len(keys) - _LISTED_KEYS} more)" if len(keys) > _LISTED_KEYS else ""
    return shown + more


def load_state_dict_strict(
    module: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    source: str | Path,
    *,
    rename: Callable[[str], str] | None = None,
    ignore_prefixes: Iterable[str] = (),
    keep_prefixes: Iterable[str] | None = None,
    network: str | None = None,
) -> LoadReport:
    """Load ``state_dict`` into ``module``, requiring every key and shape to match.

    Args:
        module: the network (its ``state_dict()`` defines what is expected).
        state_dict: tensors by name, as read from the file.
        source: the file the tensors came from, for messages.
        rename: maps a checkpoint key (after ``module.`` stripping) to the network's name.
        ignore_prefixes: checkpoint keys starting with one of these are dropped and
            reported in :attr:`LoadReport.ignored` (e.g. DECA's ``E_detail.``).
        keep_prefixes: when given, only keys starting with one of these are
            considered; all others are dropped and reported as ignored (used for
            Lightning checkpoints that also hold renderers, losses, ...).
        network: name of the network for messages (default: the module's class).
    Raises:
        CheckpointError: listing missing, unexpected and mis-shaped keys, with the file.
    """
    ignore_prefixes = tuple(ignore_prefixes)
    keep_prefixes = tuple(keep_prefixes) if keep_prefixes is not None else None
    network = network or type(module).__name__
    incoming: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    for key, value in strip_prefix(state_dict).items():
        dropped = keep_prefixes is not None and not key.startswith(keep_prefixes)
        if dropped or (ignore_prefixes and key.startswith(ignore_prefixes)):
            ignored.append(key)
            continue
        incoming[rename(key) if rename else key] = value
    expected = module.state_dict()
    missing = [key for key in expected if key not in incoming]
    defaulted = [key for key in missing if key.endswith(OPTIONAL_SUFFIXES)]
    missing = [key for key in missing if key not in defaulted]
    unexpected = [key for key in incoming if key not in expected]
    misshaped = [
        f"{key} (file {tuple(incoming[key].shape)}, network {tuple(tensor.shape)})"
        for key, tensor in expected.items()
        if key in incoming and incoming[key].shape != tensor.shape
    ]
    if missing or unexpected or misshaped:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing: {_listing(missing)}")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected: {_listing(unexpected)}")
        if misshaped:
            problems.append(f"{len(misshaped)} mis-shaped: {_listing(misshaped)}")
        raise CheckpointError(
            f"checkpoint {source} does not fit {network}:\n  " + "\n  ".join(problems)
            + "\n  (is it the right file for this network, variant and backbone depth?)"
        )
    for key in defaulted:
        incoming[key] = expected[key]
    module.load_state_dict(incoming, strict=True)
    if ignored:
        log.info("%s: ignored %d tensors not used by %s (%s)", source, len(ignored), network, ", ".join(key_families(ignored)))
    return LoadReport(source=str(source), loaded=len(incoming), ignored=ignored, defaulted=defaulted)
