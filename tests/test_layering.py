"""The import graph of the packages (stylegan_som, metrics, torch_utils, dnnlib) read with ast, every import
counted, also those inside functions: no module takes part in an import circle, and stylegan_som never imports
metrics (metrics reads networks and datasets; training gets metrics as a snapshot callback from train.py)."""

import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ('stylegan_som', 'metrics', 'torch_utils', 'dnnlib')

def _modules():
    """{dotted module name: file} of every .py file in PACKAGES (a package is its __init__)."""
    found = {}
    for package in PACKAGES:
        for root, _dirs, files in os.walk(os.path.join(REPO, package)):
            for fname in files:
                if fname.endswith('.py'):
                    rel = os.path.relpath(os.path.join(root, fname), REPO)[:-3].split(os.sep)
                    name = '.'.join(rel[:-1] if rel[-1] == '__init__' else rel)
                    found[name] = os.path.join(root, fname)
    return found

def import_graph():
    """{module: {modules it imports}}, within PACKAGES."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        is_package = path.endswith('__init__.py')
        package = name if is_package else name.rpartition('.')[0]
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), filename=path)
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ''
                if node.level:
                    parts = package.split('.')
                    parts = parts[:len(parts) - (node.level - 1)]
                    base = '.'.join(parts + ([node.module] if node.module else []))
                # `from X import y` imports X.y where that is a module, else X.
                candidates = [f'{base}.{alias.name}' if f'{base}.{alias.name}' in modules else base for alias in node.names]
            else:
                continue
            for target in candidates:
                while target and target not in modules: # `import a.b.c` of a name inside a module
                    target = target.rpartition('.')[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph

def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out

def test_the_graph_is_read():
    graph = import_graph()
    assert 'stylegan_som.loss.regularisers.penalty' in graph['stylegan_som.loss.regularisers.r1']
    assert 'stylegan_som.legacy' in graph['metrics.metric_utils']
    assert _cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]

def test_no_import_circle():
    assert _cycles(import_graph()) == []

def test_stylegan_som_does_not_import_metrics():
    graph = import_graph()
    bad = sorted(f'{m} -> {t}' for m, targets in graph.items() if m.split('.')[0] == 'stylegan_som'
        for t in targets if t.split('.')[0] == 'metrics')
    assert bad == []
