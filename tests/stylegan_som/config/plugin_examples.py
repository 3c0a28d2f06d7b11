"""The toy loss, head and block of docs/plugins.md, read from that page (so the page's example is the one the
contract test runs): each a file, registered by one line."""

import os
import re

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'docs', 'plugins.md')

def _read_plugins(path=DOC):
    """(registry, name, module file under stylegan_som/, class name, source) of every `<!-- plugin: ... -->` block."""
    text = open(path, encoding='utf-8').read()
    pattern = r'<!-- plugin: (\w+) (\S+) (\S+) (\S+) -->\n```python\n(.*?)```'
    return [(reg, name, path, cls, src) for reg, name, path, cls, src in re.findall(pattern, text, flags=re.S)]

PLUGINS = _read_plugins()

def register_lines():
    return ''.join(f"{registry}.register('{name}', '{class_name}')\n" for registry, name, _, class_name, _ in PLUGINS)
