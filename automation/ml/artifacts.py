"""Model files: which format a file is, refused when loading it would run code from the file (pickle,
joblib), else loaded without running any: skops with an explicit list of trusted types, ONNX through
onnxruntime. Nothing here unpickles: a model file from elsewhere is data, never code.

scikit-learn, skops and onnxruntime are imported on first use: a worker that never validates a model
does not load them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from automation.ml.choices import MODEL_SUFFIXES, PICKLE_SUFFIXES, ModelFormat
from automation.ml.errors import ModelError

#: Types a skops file may hold beyond what skops trusts itself (scikit-learn's estimators, numpy arrays):
#: the tree and optimizer internals of scikit-learn's own estimators. Nothing that can call a function.
DEFAULT_TRUSTED_TYPES = (
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.tree._tree.Tree",
)
#: How pickle streams (protocol 2 to 5) and the compressed streams joblib writes begin.
_PICKLE_MAGIC = tuple(bytes([0x80, protocol]) for protocol in range(2, 6))
#: gzip, bz2, xz, lz4, raw lzma, joblib's old "ZF", and zlib at each compression level.
_COMPRESSED_MAGIC = (
    b"\x1f\x8b",
    b"BZh",
    b"\xfd7zXZ",
    b"\x04\x22\x4d\x18",
    b"]\x00\x00",
    b"ZF",
    b"x\x01",
    b"x^",
    b"x\x9c",
    b"x\xda",
)
_ZIP_MAGIC = b"PK\x03\x04"


class Predictor(Protocol):
    """A loaded model: predictions for rows of features, and class probabilities when it gives them."""

    format: str

    def predict(self, features: Any) -> np.ndarray: ...

    def probabilities(self, features: Any) -> np.ndarray | None: ...


def refuse_code_formats(path: Path, *, field: str = "model_path") -> None:
    """Refuse a file whose loading would run code: by its suffix, then by its first bytes (a pickle
    renamed `.skops` is still a pickle)."""
    advice = "save the model with skops (skops.io.dump) or export it to ONNX"
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelError(
            f"{path} is a pickle/joblib file: loading it would run code from the file, so it is refused; "
            f"{advice}",
            field=field,
        )
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except FileNotFoundError:
        raise ModelError(f"{path} does not exist", field=field) from None
    except IsADirectoryError:
        raise ModelError(f"{path} is a directory, not a model file", field=field) from None
    except OSError as exc:
        raise ModelError(f"{path} cannot be read: {exc.strerror}", field=field) from None
    if head.startswith(_PICKLE_MAGIC) or head.startswith(_COMPRESSED_MAGIC):
        raise ModelError(
            f"{path} holds a pickle stream (or a compressed joblib one): loading it would run code from "
            f"the file, so it is refused; {advice}",
            field=field,
        )


def model_format(path: Path, declared: str | None = None, *, field: str = "model_path") -> str:
    """The file's format: `declared`, else from its suffix (`.skops`, `.onnx`). Pickle is refused first."""
    refuse_code_formats(path, field=field)
    chosen = declared or MODEL_SUFFIXES.get(path.suffix.lower())
    if chosen is None:
        raise ModelError(
            f"{path}: unknown model format (suffix '{path.suffix}'); give a .skops or .onnx file, or set "
            "model_format",
            field=field,
        )
    if chosen == ModelFormat.SKOPS:
        with path.open("rb") as handle:
            if handle.read(4) != _ZIP_MAGIC:
                raise ModelError(f"{path} is not a skops file (not a zip archive)", field=field)
    return chosen


def load_model(
    path: str | Path,
    *,
    declared_format: str | None = None,
    trusted_types: tuple[str, ...] | list[str] = (),
    field: str = "model_path",
) -> Predictor:
    """Load a model file as a `Predictor`; ModelError naming `field` if it is missing, of a refused or
    unknown format, holds types that are not trusted, or does not load."""
    path = Path(path)
    chosen = model_format(path, declared_format, field=field)
    if chosen == ModelFormat.SKOPS:
        return _load_skops(path, (*DEFAULT_TRUSTED_TYPES, *trusted_types), field=field)
    return _load_onnx(path, field=field)


@dataclass
class SklearnPredictor:
    model: Any
    format: str = ModelFormat.SKOPS

    def predict(self, features: Any) -> np.ndarray:
        return np.asarray(self.model.predict(features))

    def probabilities(self, features: Any) -> np.ndarray | None:
        if not hasattr(self.model, "predict_proba"):
            return None
        return np.asarray(self.model.predict_proba(features))


def _load_skops(path: Path, trusted: tuple[str, ...], *, field: str) -> SklearnPredictor:
    import skops.io as sio

    try:
        found = sio.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001 - any fault of a foreign file is that file's
        raise ModelError(f"{path} is not a readable skops file ({type(exc).__name__})", field=field) from None
    refused = sorted(set(found) - set(trusted))
    if refused:
        raise ModelError(
            f"{path} holds types that are not trusted: {', '.join(refused)}; add them to `trusted_types` "
            "only if you trust what they do",
            field=field,
        )
    try:
        model = sio.load(path, trusted=sorted(set(trusted)))
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{path} could not be loaded ({type(exc).__name__}: {exc})", field=field) from None
    if not hasattr(model, "predict"):
        raise ModelError(f"{path} holds a {type(model).__name__}, which cannot predict", field=field)
    return SklearnPredictor(model)


#: ONNX input element types and the numpy type features are given as.
_ONNX_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}


@dataclass
class OnnxPredictor:
    session: Any
    input_name: str
    dtype: Any
    format: str = ModelFormat.ONNX

    def _run(self, features: Any) -> list[Any]:
        rows = np.asarray(features, dtype=self.dtype)
        result: list[Any] = self.session.run(None, {self.input_name: rows})
        return result

    def predict(self, features: Any) -> np.ndarray:
        return np.asarray(self._run(features)[0]).reshape(-1)

    def probabilities(self, features: Any) -> np.ndarray | None:
        outputs = self._run(features)
        if len(outputs) < 2:
            return None
        scores = outputs[1]
        if isinstance(scores, list):  # skl2onnx's ZipMap: one {class: probability} per row
            if not scores:
                return np.zeros((0, 0))
            classes = sorted(scores[0])
            return np.array([[row[c] for c in classes] for row in scores], dtype=float)
        return np.asarray(scores, dtype=float)


def _load_onnx(path: Path, *, field: str) -> OnnxPredictor:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # One thread each: a worker process runs one step at a time, on a host shared with others.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own classes for a bad file
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise ModelError(f"{path} is not a loadable ONNX model ({reason})", field=field) from None
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelError(
            f"{path} has {len(inputs)} inputs; only models taking one tensor of features are supported",
            field=field,
        )
    dtype = _ONNX_TYPES.get(inputs[0].type)
    if dtype is None:
        raise ModelError(f"{path}: input type {inputs[0].type} is not a numeric tensor", field=field)
    return OnnxPredictor(session=session, input_name=inputs[0].name, dtype=dtype)
