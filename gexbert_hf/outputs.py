"""Output ownership: a gexbert command replaces only what an earlier run of the same command wrote.

Every output folder carries `.gexbert-output.json` (command, time, version, the files that run wrote). Without
`--overwrite` an existing non-empty output is refused. With it, the files that list names are removed and nothing
else: a folder without the list, one written by another command, and one that is or contains an input (or the
source model) are refused with an `OutputExistsError` saying which and why. Notes, logs and subfolders the list
does not name stay where they are.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .errors import OutputExistsError, preview

OUTPUT_MARKER = ".gexbert-output.json"
InputPaths = Mapping[str, "str | Path | None"]  # label (`--model`, `--expression`...) -> a path the command reads


# ----------------------------------------------------------------------------------------------------------------------
# the marker
# ----------------------------------------------------------------------------------------------------------------------
def _is_marker(name: str) -> bool:
    """The marker and the temporary files it is written through (another rank may be writing it right now)."""
    return name == OUTPUT_MARKER or name.startswith(f".{OUTPUT_MARKER}.")


def read_marker(folder: str | Path) -> dict | None:
    """The marker of `folder`, None when there is none; an unreadable one is refused, never guessed at."""
    path = Path(folder) / OUTPUT_MARKER
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise OutputExistsError(f"{path}: unreadable ({error}); remove the folder yourself or choose another one"
                                ) from None
    if not isinstance(marker, dict) or not isinstance(marker.get("command"), str):
        raise OutputExistsError(f"{path}: not a gexbert output marker (no command); choose another folder")
    return marker


def write_marker(folder: Path, command: str, files: list[str] | None, complete: bool = True) -> None:
    """Atomically (re)write the marker; `files=None` means a training run folder whose command knows its files."""
    from . import __version__

    marker = {"command": command, "gexbert_version": __version__,
              "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "complete": complete, "files": files}
    with tempfile.NamedTemporaryFile("w", dir=folder, prefix=f".{OUTPUT_MARKER}.", delete=False) as handle:
        json.dump(marker, handle, indent=1)
    replace_with_umask(Path(handle.name), folder / OUTPUT_MARKER)


# ----------------------------------------------------------------------------------------------------------------------
# permissions: temporary files and folders are private (0600 / 0700); what is published gets the user's umask
# ----------------------------------------------------------------------------------------------------------------------
def current_umask() -> int:
    """The process umask (reading it means setting it: it is put straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def replace_with_umask(temporary: Path, path: Path) -> None:
    """Move a finished temporary file or folder onto `path` with the mode a plain `open` / `mkdir` would have given
    it: `tempfile` creates them private, which left every output readable by its owner only."""
    os.chmod(temporary, (0o777 if temporary.is_dir() else 0o666) & ~current_umask())
    os.replace(temporary, path)


@contextmanager
def file_beside(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary file beside `path` for a writer to fill. When the block ends without an error it is moved onto
    `path` with the user's umask (`replace_with_umask`), so a crash or a failed check never leaves half a file under
    the name; it is removed either way."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=suffix, delete=False) as handle:
        temporary = Path(handle.name)
    try:
        yield temporary
        replace_with_umask(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------------------------------
# checks shared by folder and file outputs
# ----------------------------------------------------------------------------------------------------------------------
def _refuse_file_in_the_way(path: Path, argument: str, folder: bool) -> None:
    """A folder output that is a file, or any output below a file: refused before anything is written."""
    if folder and path.exists() and not path.is_dir():
        raise OutputExistsError(f"{path}: is a file, and {argument} names a folder here; choose a folder")
    if not folder and path.is_dir():
        raise OutputExistsError(f"{path}: is a folder, and {argument} names a file here; choose a file name")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputExistsError(f"{path}: {parent} is a file, not a folder; choose another {argument}")
            return


def _same_or_inside(inner: Path, outer: Path) -> bool:
    """`inner` is `outer` or lies below it, compared as given (absolute) and with symlinks resolved."""
    pairs = ((Path(os.path.abspath(inner)), Path(os.path.abspath(outer))), (inner.resolve(), outer.resolve()))
    return any(a == b or b in a.parents for a, b in pairs)


def refuse_overlap(path: Path, inputs: InputPaths) -> None:
    """An output is never an input, nor a folder holding one (or the source model): overwriting would destroy it."""
    for label, given in inputs.items():
        if given is None or not Path(given).exists():
            continue
        if _same_or_inside(Path(given), path):
            what = "is" if Path(given).resolve() == path.resolve() else "contains"
            raise OutputExistsError(f"{path}: {what} {label} {given}; an output never holds an input, choose "
                                    "another output")


def check_output_file(path: str | Path, inputs: InputPaths, overwrite: bool, argument: str = "--output") -> None:
    """A file output: not a folder, not an input, replaced only with `overwrite` (then atomically, by the writer)."""
    path = Path(path)
    _refuse_file_in_the_way(path, argument, folder=False)
    for label, given in inputs.items():
        if given is not None and Path(given).exists() and path.exists() and path.resolve() == Path(given).resolve():
            raise OutputExistsError(f"{path}: is the {label}; the input is never modified, choose another output")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: already exists; pass --overwrite to replace it")


# ----------------------------------------------------------------------------------------------------------------------
# folder outputs
# ----------------------------------------------------------------------------------------------------------------------
def _files_below(folder: Path) -> list[str]:
    """Every file (and symlink) below `folder` as a relative POSIX path, the marker left out; symlinks not followed."""
    found = []
    for root, directories, files in os.walk(folder):
        base = Path(root).relative_to(folder)
        entries = files + [name for name in directories if (Path(root) / name).is_symlink()]
        found += [(base / name).as_posix() for name in entries if not (base == Path(".") and _is_marker(name))]
    return sorted(found)


def _listed_files(folder: Path, marker: dict) -> tuple[str, ...]:
    """The marker's files, each checked to lie inside `folder`: a tampered list never reaches outside it."""
    listed = marker.get("files") or []
    if not isinstance(listed, list):
        raise OutputExistsError(f"{folder / OUTPUT_MARKER}: `files` is not a list; choose another folder")
    root = folder.resolve()
    for name in listed:
        relative = Path(str(name))
        inside = (folder / relative).parent.resolve()
        if relative.is_absolute() or ".." in relative.parts or not (inside == root or root in inside.parents):
            raise OutputExistsError(f"{folder / OUTPUT_MARKER}: lists {name}, outside the folder; choose another "
                                    "folder")
    return tuple(str(name) for name in listed)


@dataclass
class OutputFolder:
    """A folder a command may write: `previous` are the files an earlier run listed, removed before writing anew."""

    path: Path
    command: str
    previous: tuple[str, ...] = ()
    owned: bool = True  # fresh, or marked by gexbert: only then is a marker written
    _snapshot: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    def _remove_previous(self) -> None:
        """Delete exactly the listed files (never a folder), then the folders that deletion left empty."""
        emptied = set()
        for name in self.previous:
            target = self.path / name
            if target.is_symlink() or target.is_file():
                target.unlink()
                emptied.update(parent for parent in target.parents if self.path in parent.parents)
        (self.path / OUTPUT_MARKER).unlink(missing_ok=True)
        for directory in sorted(emptied, key=lambda p: len(p.parts), reverse=True):
            try:
                directory.rmdir()
            except OSError:  # not empty: something the list does not name lives there
                pass

    def _state(self) -> dict[str, tuple[int, int]]:
        state = {}
        for name in _files_below(self.path):
            stat = (self.path / name).lstat()
            state[name] = (stat.st_mtime_ns, stat.st_size)
        return state

    def begin(self) -> None:
        """Before a command writes file by file: clear the previous run's files, remember what else is there."""
        self._remove_previous()
        self.path.mkdir(parents=True, exist_ok=True)
        self._snapshot = self._state()
        write_marker(self.path, self.command, [], complete=False)

    def finish(self, complete: bool = True) -> list[str]:
        """List every file this run created or changed since `begin`, so the next `--overwrite` removes just those."""
        written = [name for name, state in self._state().items() if self._snapshot.get(name) != state]
        write_marker(self.path, self.command, written, complete)
        return written

    @contextmanager
    def writing(self) -> Iterator[Path]:
        """`begin`, the command's writes, then `finish` (also after a crash: its partial files stay listed)."""
        self.begin()
        try:
            yield self.path
        except BaseException:
            self.finish(complete=False)
            raise
        self.finish()

    def mark(self) -> None:
        """A training run folder: the marker only (the command knows its own files); never on a folder not ours."""
        if self.owned:
            self.path.mkdir(parents=True, exist_ok=True)
            write_marker(self.path, self.command, None)

    def publish(self, staged: Path) -> None:
        """Move a finished staging folder into place: the previous run's files go, nothing else is touched."""
        names = {entry.name for entry in staged.iterdir()}
        current = set(_files_below(self.path)) if self.path.exists() else set()
        blocking = sorted(name for name in current - set(self.previous) if name.split("/")[0] in names)
        if blocking:
            raise OutputExistsError(f"{self.path}: holds {preview(blocking)}, not written by gexbert {self.command}; "
                                    "move it away or choose another folder")
        write_marker(staged, self.command, _files_below(staged))
        if self.path.exists():
            self._remove_previous()
            if not self.path.is_symlink() and not any(self.path.iterdir()):
                self.path.rmdir()  # then the staged folder replaces it in one rename
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            replace_with_umask(staged, self.path)
            return
        for entry in sorted(staged.iterdir(), key=lambda entry: entry.name == OUTPUT_MARKER):  # the marker last
            os.replace(entry, self.path / entry.name)


def claim_output_dir(path: str | Path, command: str, inputs: InputPaths | None = None, overwrite: bool = False, *,
                     resume: bool = False, flag: str = "--overwrite", argument: str = "--output") -> OutputFolder:
    """Check that `command` may write the folder `path`; nothing is changed yet. Refusals name the folder and why.

    `inputs` maps a label (`--model`, `--expression`...) to a path the command reads; `resume` continues an existing
    run folder instead of replacing it.
    """
    path = Path(path)
    _refuse_file_in_the_way(path, argument, folder=True)
    refuse_overlap(path, inputs or {})
    if not path.exists() or all(_is_marker(entry.name) for entry in path.iterdir()):
        return OutputFolder(path, command)
    marker = read_marker(path)
    if marker is not None and marker["command"] != command:
        raise OutputExistsError(f"{path}: written by gexbert {marker['command']}, not {command}; choose another "
                                "folder")
    if resume and not overwrite:
        return OutputFolder(path, command, owned=marker is not None)
    if not overwrite:
        raise OutputExistsError(f"{path}: already exists; pass {flag} to replace it")
    if marker is None:
        raise OutputExistsError(f"{path}: not written by gexbert (no {OUTPUT_MARKER} listing its files); "
                                f"{flag} only replaces a gexbert output: remove it yourself or choose another folder")
    return OutputFolder(path, command, previous=_listed_files(path, marker))


def take_deprecated_overwrite(arguments) -> None:
    """`--overwrite_output_dir`, the old spelling: still honoured, with a FutureWarning naming the new one."""
    if arguments.overwrite_output_dir:
        warnings.warn("--overwrite_output_dir is deprecated; use --overwrite", FutureWarning, stacklevel=4)
        arguments.overwrite, arguments.overwrite_output_dir = True, False


__all__ = ["OUTPUT_MARKER", "OutputFolder", "check_output_file", "claim_output_dir", "current_umask", "file_beside",
           "read_marker",
           "refuse_overlap", "replace_with_umask", "take_deprecated_overwrite", "write_marker"]
