"""Model families, one file each; importing this package registers every variant.

Every module here except :mod:`.spec` is a family and is imported in name order, so adding a
family means adding its file and nothing else.
"""

import importlib
import pkgutil

FAMILY_MODULES = tuple(sorted(info.name for info in pkgutil.iter_modules(__path__) if info.name != "spec"))

for _module in FAMILY_MODULES:
    importlib.import_module(f"{__name__}.{_module}")
