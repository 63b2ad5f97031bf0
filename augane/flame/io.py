"""Reading and writing FLAME-format files, through a restricted unpickler.

Files users bring are untrusted, and the FLAME files are pickles: a plain
``pickle.load`` would run whatever code a file names. :func:`restricted_loads`
admits only the globals these files need:

* numpy arrays, dtypes and scalars (``numpy.core``/``numpy._core`` names of
  numpy 1 and 2), ``copyreg._reconstructor`` with ``object`` (how Python 2
  pickles rebuild instances of admitted classes), ``set``/``frozenset`` (in
  chumpy's pickled state) and ``_codecs.encode`` (how Python 3 writes bytes in
  protocol-2 pickles);
* scipy.sparse CSC/CSR/COO matrices (FLAME's ``J_regressor``), under their
  old and new module names;
* ``chumpy.ch.Ch``, replaced by a stand-in that keeps the pickled state and is
  converted to a numpy array afterwards (FLAME 2020 stores several arrays as
  chumpy objects; chumpy itself is neither needed nor imported);
* legacy torch tensors (``torch._utils._rebuild_tensor_v2``, storages through
  ``torch.storage._load_from_bytes``, replaced by ``torch.load(...,
  weights_only=True)``, and ``collections.OrderedDict``), because DECA's
  ``landmark_embedding.npy`` pickles its dynamic contour as torch tensors.

Everything else is refused with an :class:`~augane.errors.AssetError` naming
the file and the refused global.

Supported files (keys and shapes: ``../shared`` reference notes, §1):

* FLAME 2020 ``generic_model.pkl`` (Python 2 pickle, latin1, chumpy arrays,
  sparse ``J_regressor``); FLAME 2023 Open (plain numpy, extra keys ``J``,
  ``bs_style``, ``bs_type``); the demo face model (plain numpy, same keys).
* DECA's ``landmark_embedding.npy`` (an ``.npy`` holding a pickled dict).
* EMOCA's ``mediapipe_landmark_embedding.npz`` (plain arrays, no pickle).
"""

from __future__ import annotations

import _codecs
import collections
import copyreg
import importlib
import io
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
import torch

from augane.errors import AssetError
from augane.flame.embedding import LandmarkEmbedding68, MediapipeEmbedding
from augane.io.atomic import write_bytes_atomic

#: Joints of a FLAME-format model: root (global), neck, jaw, left eye, right eye.
NUM_JOINTS = 5
JOINT_NAMES: tuple[str, ...] = ("root", "neck", "jaw", "left_eye", "right_eye")
#: FLAME's kinematic tree: the neck hangs from the root, jaw and eyes from the neck.
FLAME_PARENTS: tuple[int, ...] = (-1, 0, 1, 1, 1)
#: Pose-corrective features: 9 entries of ``R - I`` for each of the 4 non-root joints.
NUM_POSE_FEATURES = 9 * (NUM_JOINTS - 1)
#: The split rule of ``shapedirs``: the last 100 columns are the expression
#: block, every column before them is identity (FLAME: 300 + 100).
NUM_EXPRESSION_COMPONENTS = 100
REQUIRED_MODEL_KEYS: tuple[str, ...] = (
    "v_template", "f", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights",
)
LANDMARK_EMBEDDING_KEYS: tuple[str, ...] = (
    "static_lmk_faces_idx", "static_lmk_bary_coords", "dynamic_lmk_faces_idx",
    "dynamic_lmk_bary_coords", "full_lmk_faces_idx", "full_lmk_bary_coords",
)
MEDIAPIPE_EMBEDDING_KEYS: tuple[str, ...] = ("lmk_face_idx", "lmk_b_coords", "landmark_indices")


# --- the restricted unpickler ---------------------------------------------------------


class ChumpyStandIn:
    """Takes the place of ``chumpy.ch.Ch`` while unpickling; holds the pickled state.

    A chumpy array's state is a dict whose ``x`` entry is the numpy value;
    :func:`_to_plain` turns the stand-in into that array.
    """

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:
            state = state[0] or state[1]
        self.state = state

    def to_numpy(self) -> np.ndarray:
        value = self.state.get("x") if isinstance(self.state, dict) else None
        if value is None:
            raise ValueError("a chumpy object without an 'x' array (a chumpy expression, not an array)")
        return np.asarray(value)


def _numpy_global(name: str) -> Any:
    """A numpy function under its numpy-2 (``numpy._core``) or numpy-1 (``numpy.core``) module."""
    module_name, attribute = name.rsplit(".", 1)
    for prefix in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{prefix}.{module_name}"), attribute)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"numpy has no {name}")


def _load_storage_from_bytes(data: bytes) -> Any:
    """Safe replacement of ``torch.storage._load_from_bytes`` (which would unpickle anything)."""
    return torch.load(io.BytesIO(data), weights_only=True)


_SPARSE_NAMES = ("csc_matrix", "csr_matrix", "coo_matrix", "csc_array", "csr_array", "coo_array")


def _admitted_globals() -> dict[tuple[str, str], Any]:
    admitted: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("copyreg", "_reconstructor"): copyreg._reconstructor,
        ("copy_reg", "_reconstructor"): copyreg._reconstructor,
        ("builtins", "object"): object,
        ("__builtin__", "object"): object,
        ("builtins", "set"): set,
        ("__builtin__", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("__builtin__", "frozenset"): frozenset,
        ("_codecs", "encode"): _codecs.encode,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("chumpy.ch", "Ch"): ChumpyStandIn,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    }
    for qualified in ("multiarray._reconstruct", "multiarray.scalar", "numeric._frombuffer"):
        function = _numpy_global(qualified)
        module, name = qualified.rsplit(".", 1)
        admitted[(f"numpy.core.{module}", name)] = function
        admitted[(f"numpy._core.{module}", name)] = function
    for name in _SPARSE_NAMES:
        sparse_class = getattr(scipy.sparse, name)
        short = name.split("_")[0]
        for module in ("scipy.sparse", f"scipy.sparse.{short}", f"scipy.sparse._{short}", "scipy.sparse._arrays"):
            admitted[(module, name)] = sparse_class
    return admitted


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle named a global that the restricted unpickler does not admit."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.qualified_name = f"{module}.{name}"


class _RestrictedUnpickler(pickle.Unpickler):
    _admitted = _admitted_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._admitted[(module, name)]
        except KeyError:
            raise RefusedGlobal(module, name) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError(f"persistent id {pid!r} is not supported")


def restricted_loads(data: bytes, source: str) -> Any:
    """Unpickle ``data`` (Python 2 pickles decoded as latin1) admitting only the globals listed above.

    Args:
        data: the pickle bytes.
        source: the file they came from, for messages.
    Raises:
        AssetError: naming ``source`` and the refused global, or saying the data
            is not a (complete) pickle.
    """
    try:
        return _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except RefusedGlobal as err:
        raise AssetError(
            f"{source}: refused to unpickle the global '{err.qualified_name}': only numpy arrays, scipy.sparse "
            "matrices, chumpy arrays and legacy torch tensors are admitted in FLAME-format files"
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, RuntimeError, UnicodeDecodeError) as err:
        raise AssetError(f"{source}: not a readable pickle (truncated or another format): {err}") from None


def _read_bytes(path: str | Path, what: str) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise AssetError(f"{what} {path} does not exist")
    return path.read_bytes()


# --- FLAME-format models ------------------------------------------------------------


@dataclass(frozen=True)
class FlameModelData:
    """The arrays of a FLAME-format model, validated, as plain numpy.

    Attributes:
        v_template: (V, 3) float64 template vertices (metres, y up, facing +z).
        faces: (F, 3) int64 triangles.
        shapedirs: (V, 3, S) float64 blend shapes: identity columns first, the
            last :data:`NUM_EXPRESSION_COMPONENTS` are the expression block.
        posedirs: (V, 3, 36) float64 pose correctives (4 non-root joints x 9).
        j_regressor: (5, V) float64 joint regressor (dense).
        parents: the 5 parent indices, ``parents[0] == -1``.
        weights: (V, 5) float64 skinning weights.
        source: the file it came from.
        extras: other arrays of the file kept as they are (FLAME 2023's ``J``,
            ``bs_style``, ``bs_type``, ...).
    """

    v_template: np.ndarray
    faces: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    j_regressor: np.ndarray
    parents: tuple[int, ...]
    weights: np.ndarray
    source: str = "<memory>"
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def num_shape_components(self) -> int:
        """Identity columns of ``shapedirs`` (all but the last 100)."""
        return int(self.shapedirs.shape[2]) - NUM_EXPRESSION_COMPONENTS

    @property
    def num_expression_components(self) -> int:
        return NUM_EXPRESSION_COMPONENTS

    def shape_directions(self, count: int) -> np.ndarray:
        """(V, 3, count) the first ``count`` identity blend shapes."""
        if not 0 <= count <= self.num_shape_components:
            raise AssetError(
                f"{self.source}: {count} shape components requested, the model has {self.num_shape_components}"
            )
        return self.shapedirs[:, :, :count]

    def expression_directions(self, count: int) -> np.ndarray:
        """(V, 3, count) the first ``count`` expression blend shapes (columns from ``num_shape_components``)."""
        if not 0 <= count <= NUM_EXPRESSION_COMPONENTS:
            raise AssetError(
                f"{self.source}: {count} expression components requested, the model has {NUM_EXPRESSION_COMPONENTS}"
            )
        start = self.num_shape_components
        return self.shapedirs[:, :, start:start + count]

    def to_dict(self) -> dict[str, Any]:
        """The model in FLAME's key layout (plain numpy, dense ``J_regressor``), extras included."""
        kintree = np.array([[np.iinfo(np.uint32).max, *self.parents[1:]], list(range(NUM_JOINTS))], dtype=np.int64)
        return {
            **self.extras,
            "v_template": self.v_template,
            "f": self.faces.astype(np.uint32),
            "shapedirs": self.shapedirs,
            "posedirs": self.posedirs,
            "J_regressor": self.j_regressor,
            "kintree_table": kintree,
            "weights": self.weights,
        }


def _to_plain(value: Any, source: str, key: str) -> Any:
    """numpy array for chumpy stand-ins, sparse matrices and tensors; anything else unchanged."""
    try:
        if isinstance(value, ChumpyStandIn):
            return value.to_numpy()
        if scipy.sparse.issparse(value):
            return np.asarray(value.toarray())
        if isinstance(value, torch.Tensor):
            return value.detach().cpu().numpy()
    except (ValueError, AttributeError, TypeError) as err:
        raise AssetError(f"{source}: '{key}' cannot be read as an array: {err}") from None
    return value


def _numeric(source: str, key: str, value: Any, ndim: int, dtype: type) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "biuf" or array.ndim != ndim:
        raise AssetError(
            f"{source}: '{key}' is a {array.ndim}-d array of {array.dtype}, expected a {ndim}-d numeric array"
        )
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise AssetError(f"{source}: '{key}' holds non-finite values")
    return array.astype(dtype)


def _expect_shape(source: str, key: str, array: np.ndarray, expected: tuple[int | str, ...]) -> None:
    matches = len(array.shape) == len(expected) and all(
        isinstance(e, str) or a == e for a, e in zip(array.shape, expected)
    )
    if not matches:
        shown = "(" + ", ".join(str(e) for e in expected) + ")"
        raise AssetError(f"{source}: '{key}' has shape {array.shape}, expected {shown}")


def flame_model_from_dict(content: Any, source: str) -> FlameModelData:
    """Validate a FLAME-format dict (as unpickled) and convert it to :class:`FlameModelData`.

    Raises:
        AssetError: naming ``source`` and the missing or mismatched key.
    """
    if not isinstance(content, dict):
        raise AssetError(f"{source}: expected a pickled dict of FLAME arrays, found {type(content).__name__}")
    missing = [key for key in REQUIRED_MODEL_KEYS if key not in content]
    if missing:
        raise AssetError(f"{source}: FLAME-format model lacks key(s) {', '.join(repr(k) for k in missing)}")
    plain = {key: _to_plain(value, source, key) for key, value in content.items()}

    v_template = _numeric(source, "v_template", plain["v_template"], 2, np.float64)
    _expect_shape(source, "v_template", v_template, ("V", 3))
    num_vertices = v_template.shape[0]
    faces = _numeric(source, "f", plain["f"], 2, np.int64)
    _expect_shape(source, "f", faces, ("F", 3))
    if faces.size and (faces.min() < 0 or faces.max() >= num_vertices):
        raise AssetError(f"{source}: 'f' indexes vertices {faces.min()}..{faces.max()} of {num_vertices}")
    shapedirs = _numeric(source, "shapedirs", plain["shapedirs"], 3, np.float64)
    _expect_shape(source, "shapedirs", shapedirs, (num_vertices, 3, "S"))
    if shapedirs.shape[2] <= NUM_EXPRESSION_COMPONENTS:
        raise AssetError(
            f"{source}: 'shapedirs' has {shapedirs.shape[2]} columns; a FLAME-format model has identity columns "
            f"followed by {NUM_EXPRESSION_COMPONENTS} expression columns (FLAME: 300 + 100)"
        )
    posedirs = _numeric(source, "posedirs", plain["posedirs"], 3, np.float64)
    _expect_shape(source, "posedirs", posedirs, (num_vertices, 3, NUM_POSE_FEATURES))
    j_regressor = _numeric(source, "J_regressor", plain["J_regressor"], 2, np.float64)
    _expect_shape(source, "J_regressor", j_regressor, (NUM_JOINTS, num_vertices))
    weights = _numeric(source, "weights", plain["weights"], 2, np.float64)
    _expect_shape(source, "weights", weights, (num_vertices, NUM_JOINTS))
    kintree = _numeric(source, "kintree_table", plain["kintree_table"], 2, np.int64)
    _expect_shape(source, "kintree_table", kintree, (2, NUM_JOINTS))
    if not np.array_equal(kintree[1], np.arange(NUM_JOINTS)):
        raise AssetError(f"{source}: 'kintree_table' row 1 is {kintree[1].tolist()}, expected joint ids 0..4")
    parents = (-1, *(int(p) for p in kintree[0, 1:]))
    if any(not 0 <= parents[j] < j for j in range(1, NUM_JOINTS)):
        raise AssetError(f"{source}: 'kintree_table' parents {list(parents)} do not form a tree rooted at joint 0")
    extras = {key: value for key, value in plain.items() if key not in REQUIRED_MODEL_KEYS}
    return FlameModelData(
        v_template=v_template,
        faces=faces,
        shapedirs=shapedirs,
        posedirs=posedirs,
        j_regressor=j_regressor,
        parents=parents,
        weights=weights,
        source=source,
        extras=extras,
    )


def load_flame_model(path: str | Path) -> FlameModelData:
    """Load a FLAME-format model: FLAME 2020 ``generic_model.pkl``, FLAME 2023 Open, or the demo model.

    Raises:
        AssetError: the file is missing, not a pickle, names a refused global,
            or lacks/mismatches a key (the message names the file and the key).
    """
    source = str(path)
    return flame_model_from_dict(restricted_loads(_read_bytes(path, "FLAME model file"), source), source)


def write_flame_model(path: str | Path, model: FlameModelData) -> None:
    """Write ``model`` as a plain-numpy pickle in FLAME's key layout (atomically)."""
    write_bytes_atomic(path, pickle.dumps(model.to_dict(), protocol=4))


# --- landmark embeddings ------------------------------------------------------------------


def _read_npy_pickled_object(data: bytes, source: str) -> Any:
    """The object inside an ``.npy`` file holding a pickled object array, via the restricted unpickler."""
    handle = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    except ValueError as err:
        raise AssetError(f"{source}: not a .npy file: {err}") from None
    if dtype != np.dtype(object):
        raise AssetError(f"{source}: holds a {dtype} array {shape}, expected a pickled dict (DECA's layout)")
    array = restricted_loads(handle.read(), source)
    if isinstance(array, np.ndarray) and array.dtype == object and array.size == 1:
        return array.reshape(()).item()
    return array


def load_landmark_embedding(path: str | Path, num_faces: int | None = None) -> LandmarkEmbedding68:
    """Load DECA's 68-point ``landmark_embedding.npy`` (dynamic arrays may be pickled torch tensors).

    Args:
        path: the ``.npy`` file.
        num_faces: triangles of the mesh it will be used with; checked when given.
    Raises:
        AssetError: naming the file and the missing/mismatched key, or the
            triangle range when the embedding belongs to another mesh.
    """
    source = str(path)
    content = _read_npy_pickled_object(_read_bytes(path, "landmark embedding"), source)
    if not isinstance(content, dict):
        raise AssetError(f"{source}: expected a dict of landmark arrays, found {type(content).__name__}")
    missing = [key for key in LANDMARK_EMBEDDING_KEYS if key not in content]
    if missing:
        raise AssetError(f"{source}: landmark embedding lacks key(s) {', '.join(repr(k) for k in missing)}")
    arrays = {key: np.asarray(_to_plain(content[key], source, key)) for key in LANDMARK_EMBEDDING_KEYS}
    full_faces = arrays["full_lmk_faces_idx"]
    full_bary = arrays["full_lmk_bary_coords"]
    embedding = LandmarkEmbedding68(
        static_faces=arrays["static_lmk_faces_idx"],
        static_bary=arrays["static_lmk_bary_coords"],
        dynamic_faces=arrays["dynamic_lmk_faces_idx"],
        dynamic_bary=arrays["dynamic_lmk_bary_coords"],
        full_faces=full_faces.reshape(-1) if full_faces.shape == (1, 68) else full_faces,
        full_bary=full_bary.reshape(68, 3) if full_bary.shape == (1, 68, 3) else full_bary,
        source=source,
    )
    if num_faces is not None:
        embedding.check_mesh(num_faces)
    return embedding


def write_landmark_embedding(path: str | Path, embedding: LandmarkEmbedding68) -> None:
    """Write ``embedding`` exactly in DECA's layout: a pickled dict in an ``.npy``, dynamic arrays as torch tensors.

    Static arrays are int64 / float64 numpy, dynamic arrays int64 / float32
    tensors, and the full arrays (1, 68) int64 / (1, 68, 3) float32, as in
    DECA's release.
    """
    content = {
        "static_lmk_faces_idx": embedding.static_faces.astype(np.int64),
        "static_lmk_bary_coords": embedding.static_bary.astype(np.float64),
        "dynamic_lmk_faces_idx": torch.from_numpy(embedding.dynamic_faces.astype(np.int64)),
        "dynamic_lmk_bary_coords": torch.from_numpy(embedding.dynamic_bary.astype(np.float32)),
        "full_lmk_faces_idx": embedding.full_faces.astype(np.int64).reshape(1, 68),
        "full_lmk_bary_coords": embedding.full_bary.astype(np.float32).reshape(1, 68, 3),
    }
    buffer = io.BytesIO()
    np.save(buffer, np.array(content, dtype=object), allow_pickle=True)
    write_bytes_atomic(path, buffer.getvalue())


def load_mediapipe_embedding(path: str | Path, num_faces: int | None = None) -> MediapipeEmbedding:
    """Load EMOCA's ``mediapipe_landmark_embedding.npz`` (the paper's 105 landmarks).

    Args:
        path: the ``.npz`` file.
        num_faces: triangles of the mesh it will be used with; checked when given.
    Raises:
        AssetError: naming the file and the missing/mismatched key, landmark
            indices other than :data:`augane.landmarks.MEDIAPIPE_105`, or the
            triangle range when the embedding belongs to another mesh.
    """
    source = str(path)
    if not Path(path).is_file():
        raise AssetError(f"MediaPipe landmark embedding {source} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in MEDIAPIPE_EMBEDDING_KEYS if key not in archive.files]
            if missing:
                raise AssetError(
                    f"{source}: MediaPipe landmark embedding lacks key(s) {', '.join(repr(k) for k in missing)}"
                )
            arrays = {key: archive[key] for key in MEDIAPIPE_EMBEDDING_KEYS}
    except AssetError:
        raise
    except (ValueError, OSError, EOFError) as err:
        raise AssetError(f"{source}: not a readable .npz of plain arrays: {err}") from None
    embedding = MediapipeEmbedding(
        faces=arrays["lmk_face_idx"].astype(np.int64) if arrays["lmk_face_idx"].dtype.kind in "iu"
        else arrays["lmk_face_idx"],
        bary=arrays["lmk_b_coords"],
        landmark_indices=arrays["landmark_indices"],
        source=source,
    )
    if num_faces is not None:
        embedding.check_mesh(num_faces)
    return embedding


def write_mediapipe_embedding(path: str | Path, embedding: MediapipeEmbedding) -> None:
    """Write ``embedding`` in EMOCA's layout: uint32 faces, float64 barycentrics, int64 MediaPipe indices."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        lmk_face_idx=embedding.faces.astype(np.uint32),
        lmk_b_coords=embedding.bary.astype(np.float64),
        landmark_indices=embedding.landmark_indices.astype(np.int64),
    )
    write_bytes_atomic(path, buffer.getvalue())
