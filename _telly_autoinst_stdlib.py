"""The standard library's top-level names for the finder's stand-in on Python 3.9, which has no
``sys.stdlib_module_names``.

``_telly_autoinst_bootstrap`` imports this module on Python 3.9 only: kept there, this code would
be unmarshalled at every start of every newer Python. It sits beside the bootstrap module, not in
the package, for the same reason the bootstrap module does: a start must not import the package.
"""

import os
import sys

_names = None
# Every platform's standard library, as Python 3.10 lists it in sys.stdlib_module_names: the
# directories below hold only this platform's and this build's, yet the standard library tries
# imports of other platforms' modules (ntpath of nt, mimetypes of winreg) that must not wake the
# stand-in, least of all in the middle of importing pathlib.
_EVERY_PLATFORM = """
__future__ _abc _aix_support _ast _asyncio _bisect _blake2 _bootsubprocess _bz2 _codecs _codecs_cn
_codecs_hk _codecs_iso2022 _codecs_jp _codecs_kr _codecs_tw _collections _collections_abc
_compat_pickle _compression _contextvars _crypt _csv _ctypes _curses _curses_panel _datetime _dbm
_decimal _elementtree _frozen_importlib _frozen_importlib_external _functools _gdbm _hashlib _heapq
_imp _io _json _locale _lsprof _lzma _markupbase _md5 _msi _multibytecodec _multiprocessing _opcode
_operator _osx_support _overlapped _pickle _posixshmem _posixsubprocess _py_abc _pydecimal _pyio
_queue _random _scproxy _sha1 _sha256 _sha3 _sha512 _signal _sitebuiltins _socket _sqlite3 _sre _ssl
_stat _statistics _string _strptime _struct _symtable _thread _threading_local _tkinter _tracemalloc
_uuid _warnings _weakref _weakrefset _winapi _zoneinfo abc aifc antigravity argparse array ast
asynchat asyncio asyncore atexit audioop base64 bdb binascii binhex bisect builtins bz2 cProfile
calendar cgi cgitb chunk cmath cmd code codecs codeop collections colorsys compileall concurrent
configparser contextlib contextvars copy copyreg crypt csv ctypes curses dataclasses datetime dbm
decimal difflib dis distutils doctest email encodings ensurepip enum errno faulthandler fcntl
filecmp fileinput fnmatch fractions ftplib functools gc genericpath getopt getpass gettext glob
graphlib grp gzip hashlib heapq hmac html http idlelib imaplib imghdr imp importlib inspect io
ipaddress itertools json keyword lib2to3 linecache locale logging lzma mailbox mailcap marshal math
mimetypes mmap modulefinder msilib msvcrt multiprocessing netrc nis nntplib nt ntpath nturl2path
numbers opcode operator optparse os ossaudiodev pathlib pdb pickle pickletools pipes pkgutil
platform plistlib poplib posix posixpath pprint profile pstats pty pwd py_compile pyclbr pydoc
pydoc_data pyexpat queue quopri random re readline reprlib resource rlcompleter runpy sched secrets
select selectors shelve shlex shutil signal site smtpd smtplib sndhdr socket socketserver spwd
sqlite3 sre_compile sre_constants sre_parse ssl stat statistics string stringprep struct subprocess
sunau symtable sys sysconfig syslog tabnanny tarfile telnetlib tempfile termios textwrap this
threading time timeit tkinter token tokenize trace traceback tracemalloc tty turtle turtledemo types
typing unicodedata unittest urllib uu uuid venv warnings wave weakref webbrowser winreg winsound
wsgiref xdrlib xml xmlrpc zipapp zipfile zipimport zlib zoneinfo
"""  # one string: split only where the names are read


def names():
    """The standard library's top-level names: every platform's, and what the directories of
    ``os`` and ``lib-dynload`` hold (read once)."""
    global _names
    if _names is None:
        home = os.path.dirname(os.__file__)
        found = set(sys.builtin_module_names)
        found.update(_EVERY_PLATFORM.split())
        for folder in (home, os.path.join(home, "lib-dynload")):
            try:
                entries = os.listdir(folder)
            except OSError:
                continue
            found.update(e.partition(".")[0] for e in entries if e not in ("site-packages", "dist-packages"))
        _names = frozenset(found)
    return _names


def loaded_from_elsewhere(candidates):
    """The names among ``candidates`` (modules already imported) whose module came from outside the
    standard library. Listing the standard library at start would cost as much as the rest of
    start-up, so a module already loaded is judged by where it came from instead."""
    home = os.path.dirname(os.__file__) + os.sep
    return [name for name in candidates if not _from_stdlib(sys.modules.get(name), home)]


def _from_stdlib(module, home):
    try:
        path = vars(module).get("__file__")  # vars(): a module __getattr__ must not run here
    except TypeError:  # gone, or not a module: something put there by hand
        return False
    if not isinstance(path, str):
        return True  # built in or frozen
    return path.startswith(home) and "site-packages" not in path and "dist-packages" not in path
