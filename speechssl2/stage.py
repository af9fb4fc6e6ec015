"""Stage bookkeeping: a recipe stage skips its work only when nothing it depends on changed.

Every ``speechssl2.bin`` stage that a recipe may rerun wraps its work in a
:class:`Stage`. What the stage reads is taken from its resolved config, not from a
list someone has to keep up to date: every config value (at any depth, component specs
included) that names a file or directory (a string with a ``/``) is an input, unless it
lies under one of the stage's declared outputs. A directory input stands for every file
under it; a Lhotse manifest also stands for the audio and array files its cuts point to
(labels stored beside the manifest change without the manifest changing); stamps and
``log``/``tensorboard`` folders are not part of a directory's content. An input that
does not exist is recorded as absent, so its appearance reruns the stage.

The stamp (``<stamp>``, JSON) holds the resolved config, every input file's size, mtime
and SHA-1, and every output file's. A rerun skips only when the config is equal, every
input file has the same content (size and mtime first; the hash when they differ, so a
``touch`` alone does not rerun; a ``.gz`` file is hashed decompressed) and every output still exists unchanged. The stamp is
removed before the work starts and written after it succeeds, so a stage killed half-way
is never "done". A ``.started`` record written when the work starts tells the next run
whether partial outputs come from the same config and inputs (``Stage.resumable``: keep
and resume them) or from something else (start clean). Input hashes are taken before the work starts: an input rewritten while
the stage runs makes the next run redo it.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from speechssl2.config import atomic_write_text

log = logging.getLogger(__name__)

STAMP_PREFIX = ".stage."  # stamps inside an input directory are not part of its content
MANIFEST_SUFFIXES = (".jsonl", ".jsonl.gz")
NOT_CONTENT = frozenset({"log", "tensorboard"})  # folders of a directory input that are not its content
Sig = Tuple[int, int, str]  # size, mtime_ns, sha1 ("" for an absent file)
ABSENT: Sig = (-1, 0, "")
_HASHES: Dict[Tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha1, per process


def stamp_path(directory: str | os.PathLike, name: str) -> Path:
    """Where stage ``name`` keeps its stamp inside ``directory`` (deleting the directory reruns it)."""
    return Path(directory) / f"{STAMP_PREFIX}{name}.json"


class Stage:
    """The freshness check of one stage run: ``if stage.up_to_date(): return``, work, ``stage.done(files)``."""

    def __init__(self, name: str, cfg: Any, stamp: str | os.PathLike, outputs: Sequence[str | os.PathLike],
                 force: bool = False, unused: Sequence[str] = (),
                 extra_inputs: Sequence[str | os.PathLike] = ()) -> None:
        """``outputs``: files or directories the work writes (paths under them are not inputs);
        ``unused``: dotted config fields this run does not read (e.g. ``lm_dir`` of a greedy
        decoder), left out of the comparison so that their files changing does not rerun it;
        ``extra_inputs``: files the stage reads at paths derived from the config rather than
        named in it (a previous step's output under the same ``exp_dir``)."""
        self.name, self.stamp, self.force = name, Path(stamp), force
        self.started = self.stamp.with_name(self.stamp.name.removesuffix(".json") + ".started")
        self.resumable = False  # set by up_to_date: partial outputs are from these very inputs
        self.config = _plain(cfg)
        for dotted in unused:
            *parents, key = dotted.split(".")
            node = self.config
            for part in parents:
                node = node[part]
            node[key] = None
        self.outputs = [Path(p).absolute() for p in outputs]
        self.inputs = sorted(set(config_inputs(self.config, self.outputs))
                             | {str(Path(p).absolute()) for p in extra_inputs})
        self.input_sigs: Dict[str, Dict[str, Sig]] = {}

    def up_to_date(self) -> bool:
        """True when the stamp matches; otherwise log why, drop the stamp and return False."""
        old = _read_json(self.stamp)
        reasons = ["forced (--force)"] if self.force else self._changes(old)
        if not reasons:
            log.info("[%s] up to date (config, %d input(s), %d output file(s) unchanged): skipping; "
                     "delete %s to force", self.name, len(self.inputs), len(old["outputs"]), self.stamp)
            return True
        log.info("[%s] running: %s", self.name, "; ".join(reasons[:5]) + (" ..." if len(reasons) > 5 else ""))
        self.resumable = not self.force and self._same_run(_read_json(self.started))
        if is_main_process():
            self.stamp.unlink(missing_ok=True)
            self._ensure_input_sigs()
            record = {"stage": self.name, "config": self.config, "inputs": self.input_sigs}
            atomic_write_text(self.started, json.dumps(record, sort_keys=True) + "\n")
        return False

    def done(self, outputs: Iterable[str | os.PathLike]) -> None:
        """Record the inputs as they were at the start and the ``outputs`` the work wrote."""
        if not is_main_process():
            return
        self._ensure_input_sigs()
        files = {str(f): file_sig(f) for f in expand_outputs(outputs)}
        missing = [f for f, sig in files.items() if sig == ABSENT]
        if missing:
            raise FileNotFoundError(f"[{self.name}] declared output(s) not written: {', '.join(missing)}")
        record = {"stage": self.name, "config": self.config, "inputs": self.input_sigs, "outputs": files}
        atomic_write_text(self.stamp, json.dumps(record, indent=1, sort_keys=True) + "\n")
        self.started.unlink(missing_ok=True)

    def input_digests(self) -> Dict[str, str]:
        """One SHA-1 per input path (over its files' hashes): what a checkpoint remembers."""
        self._ensure_input_sigs()
        return {p: digest(files) for p, files in self.input_sigs.items()}

    def _ensure_input_sigs(self) -> None:
        for path in self.inputs:
            if path not in self.input_sigs:
                self.input_sigs[path] = tree_sigs(Path(path))

    def _same_run(self, started: Dict[str, Any]) -> bool:
        """An unfinished run of this config on these input contents: its partial outputs may be kept."""
        if started.get("config") != self.config or set(started.get("inputs", {})) != set(self.inputs):
            return False
        return not any(self._changed_files(path, started["inputs"][path]) for path in self.inputs)

    def _changed_files(self, path: str, recorded: Dict[str, Sig]) -> List[str]:
        """Files of input ``path`` whose content differs from ``recorded`` (signatures refreshed)."""
        recorded = {f: tuple(sig) for f, sig in recorded.items()}
        self.input_sigs[path] = tree_sigs(Path(path), recorded)
        return sorted(f for f in self.input_sigs[path].keys() | recorded.keys()
                      if self.input_sigs[path].get(f, ABSENT)[2] != recorded.get(f, ABSENT)[2])

    def _changes(self, old: Dict[str, Any]) -> List[str]:
        """Why the stamp does not hold: first difference of each kind, in order of cost."""
        if not old:
            return [f"no stamp {self.stamp} (first run, or an earlier run did not finish)"]
        if old.get("config") != self.config:
            return ["config changed: " + ", ".join(dict_diff(old.get("config", {}), self.config)[:5])]
        reasons = [f"output {f} missing or changed" for f, sig in old["outputs"].items()
                   if not same_file(Path(f), tuple(sig))]
        if set(old["inputs"]) != set(self.inputs):
            return reasons + ["inputs are other paths"]
        for path in self.inputs:
            changed = self._changed_files(path, old["inputs"][path])
            if changed:
                reasons.append(f"input {path} changed ({len(changed)} file(s), e.g. {changed[0]})")
        return reasons


def _read_json(path: Path) -> Dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def is_main_process() -> bool:
    """Rank 0 (or no torchrun): the one process that writes stamps."""
    return int(os.environ.get("RANK", "0")) == 0


def config_inputs(config: Any, outputs: Sequence[Path]) -> List[str]:
    """Absolute paths of every string value with a ``/`` that is not under an output."""
    found = []
    for value in _strings(config):
        if "/" not in value or "://" in value:
            continue
        path = Path(value).absolute()
        if not any(path == out or out in path.parents for out in outputs):
            found.append(str(path))
    return sorted(set(found))


def tree_sigs(path: Path, recorded: Optional[Dict[str, Sig]] = None) -> Dict[str, Sig]:
    """Signature of every file ``path`` stands for; hashes only what ``recorded`` cannot vouch for."""
    recorded = recorded or {}
    if not path.exists():
        return {str(path): ABSENT}
    files = sorted(_walk(path)) if path.is_dir() else [path]
    sigs = {str(f): _sig(f, recorded.get(str(f))) for f in files}
    for f in files:
        if f.name.endswith(MANIFEST_SUFFIXES):
            refs = _manifest_refs(f, sigs[str(f)], recorded)
            sigs.update((r, _sig(Path(r), recorded.get(r))) for r in refs if r not in sigs)
    return sigs


def file_sig(path: Path) -> Sig:
    return _sig(path, None)


def same_file(path: Path, sig: Sig) -> bool:
    return _sig(path, sig)[2] == sig[2]


def digest(files: Dict[str, Sig]) -> str:
    h = hashlib.sha1()
    for name, (_, _, sha) in sorted(files.items()):
        h.update(f"{name}\0{sha}\n".encode())
    return h.hexdigest()


def expand_outputs(outputs: Iterable[str | os.PathLike]) -> List[Path]:
    """Output files: a file as given, a directory as every file under it (stamps aside)."""
    files: List[Path] = []
    for out in outputs:
        p = Path(out).absolute()
        files.extend(sorted(_walk(p)) if p.is_dir() else [p])
    return files


def dict_diff(old: Any, new: Any, where: str = "") -> List[str]:
    """Dotted names of the values that differ, ``a.b: old -> new``."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: List[str] = []
        for key in sorted(old.keys() | new.keys(), key=str):
            name = f"{where}.{key}" if where else str(key)
            out += dict_diff(old.get(key, "<unset>"), new.get(key, "<unset>"), name)
        return out
    return [] if old == new else [f"{where or '<root>'}: {_short(old)} -> {_short(new)}"]


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _sig(path: Path, known: Optional[Sig]) -> Sig:
    try:
        st = path.stat()
    except OSError:
        return ABSENT
    if known is not None and tuple(known[:2]) == (st.st_size, st.st_mtime_ns):
        return (st.st_size, st.st_mtime_ns, known[2])
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha1()
        # A gzip header holds the time of writing: hash what it holds, so that rewriting
        # the same manifest does not make every later stage rerun.
        with (gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")) as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return (st.st_size, st.st_mtime_ns, _HASHES[key])


def _walk(root: Path) -> Iterator[Path]:
    """Files under ``root``, without stamps and the ``log``/``tensorboard`` folders (records, not content)."""
    for dirpath, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = [d for d in dirs if d not in NOT_CONTENT]
        for name in names:
            if not name.startswith(STAMP_PREFIX):
                yield Path(dirpath, name)


def _manifest_refs(manifest: Path, sig: Sig, recorded: Dict[str, Sig]) -> List[str]:
    """Files the manifest's entries point to (audio sources, stored arrays).

    When the manifest itself is unchanged, the recorded files are its references:
    no need to read a large manifest again.
    """
    if recorded.get(str(manifest), ABSENT)[2] == sig[2]:
        return [f for f in recorded if f != str(manifest)]
    refs = set()
    opener = gzip.open if manifest.name.endswith(".gz") else open
    try:
        with opener(manifest, "rt", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    refs.update(_referenced_files(json.loads(line)))
    except (OSError, ValueError) as err:
        raise ValueError(f"{manifest}: not a readable JSONL manifest ({err})") from err
    return sorted(refs)


def _referenced_files(entry: Any) -> Iterator[str]:
    """Audio sources of type ``file`` and Lhotse array storage, anywhere in one JSON entry.

    Relative paths are relative to the working directory, as Lhotse reads them."""
    if isinstance(entry, dict):
        if entry.get("type") == "file" and isinstance(entry.get("source"), str):
            yield str(Path(entry["source"]).absolute())
        # storage_type "shar": the array lives in a Shar directory's tar, counted with the directory
        if isinstance(entry.get("storage_path"), str) and entry.get("storage_type", "shar") != "shar" \
                and isinstance(entry["storage_type"], str):
            stored = Path(entry["storage_path"])
            if entry["storage_type"].endswith("_files"):  # one file per array under storage_path
                stored = stored / entry["storage_key"]
            yield str(stored.absolute())
        for value in entry.values():
            yield from _referenced_files(value)
    elif isinstance(entry, list):
        for value in entry:
            yield from _referenced_files(value)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def _plain(cfg: Any) -> Any:
    """The config as JSON values (tuples become lists), so a stored copy compares equal."""
    data = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    return json.loads(json.dumps(data, default=str))
