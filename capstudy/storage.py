"""A place in Ray Tune storage: a local folder or a URI (``s3://``, ``gs://``, ...), one API.

``--storage`` is either a path (local, or a shared mount such as NFS) or a URI that
``pyarrow.fs.FileSystem.from_uri`` opens, query parameters included
(``s3://bucket/ray?endpoint_override=127.0.0.1:9000&scheme=http``). Ray Tune parses the same
string with the same call (``ray.train._internal.storage.get_fs_and_path``) and joins paths
onto a URI the way :meth:`Place.__truediv__` does (path before the query, as Ray's own
``URI`` class), so the driver and Ray always name the same objects: pass ``str(place)`` to Ray.

What each operation costs and guarantees:

- :meth:`Place.write_text` is atomic: a local file is written through
  :func:`capstudy.util.atomic_write_text` (temporary sibling + rename); an object store (S3,
  GCS) stores an object whole when its upload completes -- a reader sees the old object or
  the new one, never a part -- so one upload is atomic without a temporary (pyarrow's S3
  writer sends a small file as a one-part multipart upload: the object appears only when
  the upload is completed; a writer killed before that leaves the old object, and the text is
  written in one call from memory, so no partial text is ever completed). Any other
  pyarrow filesystem (HDFS, ...) gets a temporary sibling and ``fs.move``.
- :meth:`Place.move` is a rename for a local folder (O(1)). An object store has no folders
  and no rename: a folder moves as one server-side copy per object plus deletes (no data
  passes through this machine, but it costs one request per object, and a reader may see
  both copies for a moment). Moving happens once per fresh launch of a study that ran
  before (archiving the old experiment), never on the trials' path.

Stdlib only at import: pyarrow is imported when a URI is first opened, so local paths never
load it.
"""

from __future__ import annotations

import posixpath
import secrets
import urllib.parse
from pathlib import Path, PurePosixPath
from typing import Any

from capstudy.errors import CapstudyError, storage_fault
from capstudy.util import atomic_write_text

_OBJECT_STORES = ("s3", "gcs")  # pyarrow type_name: uploads are visible whole


def is_uri(storage: str | Path) -> bool:
    """Whether ``storage`` is a URI (``scheme://...``) rather than a path."""
    return "://" in str(storage)


class Place:
    """A file or folder in Ray storage (see the module docstring).

    Build one with :func:`place`; join with ``/``. Two kinds: ``local`` (a :class:`Path`)
    or remote (a pyarrow filesystem and a path on it, plus the URI's scheme and query, which
    are kept so that ``str()`` gives the URI Ray accepts).
    """

    def __init__(
        self,
        local: Path | None = None,
        *,
        parsed: urllib.parse.SplitResult | None = None,
        fs: Any = None,
        fs_path: str = "",
        key: str = "",
    ) -> None:
        self.local = local
        self._parsed = parsed
        self._fs = fs
        self._fs_path = fs_path.rstrip("/")
        # The URI's netloc + path, as Ray's URI class joins it (equal to fs_path on S3/GCS;
        # "host:port/a" against "/a" on HDFS).
        self._key = key.rstrip("/")

    # --- naming ---------------------------------------------------------------------------

    @property
    def is_remote(self) -> bool:
        """True for a URI (a pyarrow filesystem), False for a local path."""
        return self.local is None

    @property
    def name(self) -> str:
        """The last path component."""
        return self.local.name if self.local is not None else PurePosixPath(self._fs_path).name

    def __truediv__(self, name: str) -> Place:
        if self.local is not None:
            return Place(self.local / name)
        return self._remote(lambda p: str(PurePosixPath(p) / name))

    @property
    def parent(self) -> Place:
        """The folder this place is in."""
        if self.local is not None:
            return Place(self.local.parent)
        return self._remote(lambda p: str(PurePosixPath(p).parent))

    def with_name(self, name: str) -> Place:
        """A sibling: this place with its last component replaced."""
        if self.local is not None:
            return Place(self.local.with_name(name))
        return self._remote(lambda p: str(PurePosixPath(p).with_name(name)))

    def _remote(self, change: Any) -> Place:
        """This place's storage with ``change`` applied to both of its paths."""
        return Place(
            parsed=self._parsed, fs=self._fs, fs_path=change(self._fs_path), key=change(self._key)
        )

    def __str__(self) -> str:
        if self.local is not None:
            return str(self.local)
        # Where Ray's URI class puts them: netloc + path as one, then the query.
        p = self._parsed
        return urllib.parse.urlunsplit((p.scheme, self._key, "", p.query, ""))

    def __repr__(self) -> str:
        return f"Place({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Place) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    # --- reading ----------------------------------------------------------------------------

    def _info(self) -> Any:
        return self._fs.get_file_info(self._fs_path)

    def exists(self) -> bool:
        """Whether a file or folder is here (an object store: an object or a key prefix)."""
        if self.local is not None:
            return self.local.exists()
        from pyarrow.fs import FileType

        return self._info().type != FileType.NotFound

    def is_file(self) -> bool:
        """Whether a file (an object) is here."""
        if self.local is not None:
            return self.local.is_file()
        from pyarrow.fs import FileType

        return self._info().type == FileType.File

    def is_dir(self) -> bool:
        """Whether a folder (an object store: a key prefix) is here."""
        if self.local is not None:
            return self.local.is_dir()
        from pyarrow.fs import FileType

        return self._info().type == FileType.Directory

    def mtime(self) -> float | None:
        """Modification time in seconds (None where the store keeps none, e.g. S3 prefixes)."""
        if self.local is not None:
            return self.local.stat().st_mtime
        stamp = self._info().mtime
        return stamp.timestamp() if stamp is not None else None

    def read_text(self, errors: str = "strict") -> str:
        """The file's text (UTF-8; ``errors`` as for :meth:`bytes.decode`).

        Raises:
            FileNotFoundError: nothing is here (both kinds; other failures are ``OSError``).
        """
        if self.local is not None:
            return self.local.read_text(encoding="utf-8", errors=errors)
        if not self.is_file():
            raise FileNotFoundError(str(self))
        with self._fs.open_input_stream(self._fs_path) as stream:
            return stream.read().decode("utf-8", errors=errors)

    def children(self) -> list[Place]:
        """The folders and files directly in this folder, sorted by name ([] if none)."""
        if self.local is not None:
            return [Place(p) for p in sorted(self.local.glob("*"))] if self.local.is_dir() else []
        from pyarrow.fs import FileSelector

        infos = self._fs.get_file_info(FileSelector(self._fs_path, allow_not_found=True))
        names = sorted(PurePosixPath(i.path).name for i in infos)
        return [self / name for name in names]

    # --- writing ----------------------------------------------------------------------------

    def mkdir(self) -> None:
        """Create this folder and its parents (an object store: a no-op or a marker)."""
        if self.local is not None:
            self.local.mkdir(parents=True, exist_ok=True)
        else:
            self._fs.create_dir(self._fs_path, recursive=True)

    def write_text(self, text: str) -> None:
        """Write ``text`` atomically: readers see the old content or the new, never a part."""
        if self.local is not None:
            atomic_write_text(self.local, text)
            return
        data = text.encode("utf-8")
        if self._fs.type_name in _OBJECT_STORES:
            with self._fs.open_output_stream(self._fs_path) as out:  # one upload, visible whole
                out.write(data)
            return
        tmp = f"{self._fs_path}.tmp-{secrets.token_hex(4)}"
        with self._fs.open_output_stream(tmp) as out:
            out.write(data)
        self._fs.move(tmp, self._fs_path)

    def refused_write(self) -> OSError | None:
        """Write and remove a small probe file in this folder: the refusal (full, read-only,
        not permitted), or None when the storage takes writes (other errors propagate)."""
        probe = self / f".capstudy-probe-{secrets.token_hex(4)}"
        try:
            probe.write_text("probe " * 700)  # a few KB: more than a nearly full disk has
            probe.delete()
        except OSError as exc:
            refused = storage_fault(exc)
            if refused is None:
                raise
            return refused
        return None

    def delete(self) -> None:
        """Remove this file or folder (nothing here: nothing to do)."""
        if self.local is not None:
            if self.local.is_dir():
                import shutil

                shutil.rmtree(self.local)
            else:
                self.local.unlink(missing_ok=True)
            return
        if self.is_dir():
            self._fs.delete_dir(self._fs_path)
        elif self.is_file():
            self._fs.delete_file(self._fs_path)

    def move(self, dest: Place) -> None:
        """Move this file or folder to ``dest`` (same storage; see the module docstring)."""
        if self.local is not None:
            assert dest.local is not None, f"cannot move {self} to {dest}"
            self.local.rename(dest.local)
            return
        if self._fs.type_name not in _OBJECT_STORES or self.is_file():
            self._fs.move(self._fs_path, dest._fs_path)
            return
        from pyarrow.fs import FileSelector, FileType

        prefix = self._fs_path + "/"
        for info in self._fs.get_file_info(FileSelector(self._fs_path, recursive=True)):
            if info.type == FileType.File:  # server-side copy (S3 CopyObject): no download
                self._fs.copy_file(info.path, dest._fs_path + "/" + info.path[len(prefix) :])
        self._fs.delete_dir(self._fs_path)


def place(storage: str | Path) -> Place:
    """The :class:`Place` for ``--storage`` (a path, ``~`` expanded, or a pyarrow URI).

    ``file://`` URIs become local paths. A URI is opened here (pyarrow parses it, nothing is
    contacted yet); an unusable one fails with the setting, the value and the fix.

    Raises:
        CapstudyError: pyarrow cannot open a filesystem for the URI.
    """
    text = str(storage)
    if not is_uri(text):
        return Place(Path(text).expanduser())
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme == "file":
        return Place(Path(urllib.parse.unquote(parsed.path)))
    try:
        from pyarrow.fs import FileSystem

        fs, fs_path = FileSystem.from_uri(text)
    except (ValueError, OSError, ImportError) as exc:
        raise CapstudyError(
            f"--storage {text}: pyarrow cannot open this filesystem ({exc}). Pass a path every "
            "node mounts, or a URI pyarrow.fs.FileSystem.from_uri accepts, e.g. "
            "s3://bucket/ray_results or gs://bucket/ray_results (S3-compatible stores: "
            "s3://bucket/path?endpoint_override=host:port&scheme=http)."
        ) from None
    key = posixpath.normpath(parsed.netloc + parsed.path)
    return Place(parsed=parsed, fs=fs, fs_path=fs_path, key=key)
