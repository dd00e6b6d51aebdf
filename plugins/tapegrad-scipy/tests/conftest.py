"""Make the plugin's ops available whether or not the distribution is installed.

Installed (``pip install ./plugins/tapegrad-scipy``): the entry point registered it when
tapegrad was imported. Not installed: put ``src`` on the path and register the plugin
module at run time under the same name, so the tests run either way. Without SciPy the
plugin cannot load: the test modules skip (``pytest.importorskip``).
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
CHECKOUT = HERE.parents[2]  # the tapegrad checkout this plugin lives in

try:
    import tapegrad as tg
except ImportError:  # run from a checkout where tapegrad is not installed
    sys.path.insert(0, str(CHECKOUT))
    import tapegrad as tg

try:
    import scipy.special  # noqa: F401
except ImportError:
    pass
else:
    if not tg.plugin_manager().has_plugin("scipy"):
        if str(SRC) not in sys.path:
            sys.path.insert(0, str(SRC))
        import tapegrad_scipy.plugin

        tg.register_plugin(tapegrad_scipy.plugin, name="scipy")
