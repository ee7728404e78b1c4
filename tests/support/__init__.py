"""What the test modules share: constants, builders, the Node captures, plain-Python models, the facade switch.

Import from the submodules (``from tests.support.builders import unified``); nothing is re-exported here.
"""
