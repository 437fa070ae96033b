"""Every global name the local cloud's and the e2e tests' code uses is defined or imported.

Python finds a missing import only when the line runs: a helper that a long e2e scenario calls at
its end (chaos.py's `history`, once) fails the whole module after minutes. This reads each
function's bytecode for the globals it loads and checks them against its module, in a second."""

import builtins
import dis
import importlib
import os
import sys
import types

import pytest

HERE = os.path.dirname(__file__)
LOCALCLOUD = os.path.dirname(HERE)
E2E = os.path.join(os.path.dirname(LOCALCLOUD), "e2e")
# test/ on the path: `localcloud` and `e2e` import as packages wherever pytest was started
if os.path.dirname(LOCALCLOUD) not in sys.path:
    sys.path.insert(0, os.path.dirname(LOCALCLOUD))


def modules() -> list[str]:
    names = [f"localcloud.{f[:-3]}" for f in sorted(os.listdir(LOCALCLOUD)) if f.endswith(".py") and f != "__init__.py"]
    names += [f"e2e.{f[:-3]}" for f in sorted(os.listdir(E2E)) if f.endswith(".py") and f != "__init__.py"]
    return names


def code_objects(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from code_objects(const)


def loaded_globals(module: types.ModuleType, op: str = "LOAD_GLOBAL") -> set[tuple[str, str]]:
    """(function, name) for every global a function (or a method, a lambda, a comprehension)
    defined in the module loads (`op`: or stores, STORE_GLOBAL)."""
    out = set()
    for value in list(vars(module).values()):
        functions = [value] if isinstance(value, types.FunctionType) else []
        if isinstance(value, type):
            functions += [v for v in vars(value).values() if isinstance(v, types.FunctionType)]
            functions += [v.fget for v in vars(value).values() if isinstance(v, property) and v.fget]
        for fn in functions:
            # the module's own code (not imported functions, nor a dataclass's generated methods)
            if fn.__module__ != module.__name__ or fn.__code__.co_filename != module.__file__:
                continue
            for code in code_objects(fn.__code__):
                for ins in dis.get_instructions(code):
                    if ins.opname == op:
                        out.add((fn.__qualname__, ins.argval))
    return out


@pytest.mark.parametrize("name", modules())
def test_every_global_a_function_loads_is_defined(name):
    module = importlib.import_module(name)
    # a global that one of the module's functions assigns (`global x`: patches.py keeps moto's
    # originals so) exists once that function ran
    assigned = {g for _, g in loaded_globals(module, "STORE_GLOBAL")}
    missing = sorted((fn, g) for fn, g in loaded_globals(module)
                     if g not in vars(module) and g not in assigned and not hasattr(builtins, g))
    assert missing == [], f"{name}: undefined names (function, name): {missing}"


def test_the_check_finds_a_missing_import():
    source = "import os\ndef f():\n    return history(os.sep)\n"
    module = types.ModuleType("probe")
    module.__file__ = "probe.py"
    exec(compile(source, "probe.py", "exec"), vars(module))
    vars(module)["f"].__module__ = "probe"
    assert loaded_globals(module) == {("f", "history"), ("f", "os")}
